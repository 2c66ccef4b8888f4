"""A live transformers model's weights under HF's on-disk names, out and in, one tensor at a time.

transformers 5 fuses some checkpoints' tensors when it loads them (Qwen3-MoE: the per-expert
`mlp.experts.{e}.gate_proj / up_proj / down_proj` become `mlp.experts.gate_up_proj [E, 2I, H]`
and `mlp.experts.down_proj [E, H, I]`) and splits them back in `save_pretrained`. Everything
else in the project speaks the on-disk layout: checkpoints, the weight stream from a policy to
rollout engines, vLLM's loader and the Megatron converter all read one tensor per expert. So a
live HF model is exported and loaded only through this module, which asks transformers' own
conversion tables (`revert_weight_conversion`, what `save_pretrained` applies) for the mapping,
rather than re-deriving each architecture's layout by hand.

Both directions stream: export yields each on-disk tensor as it is split off its in-memory
parent, and `HFWeightReceiver` copies each arriving tensor into place, so neither side ever
builds a second copy of the model. The receive side is strict, because a silent partial load
would make rollouts come from a model that is neither the old nor the new policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import torch
from torch import Tensor, nn

from qwenlong.core.errors import BackendError


def _on_disk(model: nn.Module, name: str, tensor: Tensor) -> dict[str, Tensor]:
    """The on-disk tensors that in-memory tensor `name` is saved as (itself, renamed or split)."""
    from transformers.core_model_loading import revert_weight_conversion

    return revert_weight_conversion(model, {name: tensor})


def _unique_state(model: nn.Module) -> Iterator[tuple[str, Tensor]]:
    """The model's state-dict entries with tied duplicates dropped (the first name is kept, as
    `save_pretrained` keeps it): a tied output head is the embedding, sent once."""
    seen: set[int] = set()
    for name, value in model.state_dict(keep_vars=True).items():
        if id(value) in seen:
            continue
        seen.add(id(value))
        yield name, value


def export_hf_weights(model: nn.Module) -> Iterator[tuple[str, Tensor]]:
    """(on-disk name, tensor) for every weight of `model`, one at a time, in state-dict order.

    Names, shapes and dtypes are exactly those `model.save_pretrained` writes. The tensors are
    detached views of the live parameters: consume or copy them before the model changes.
    """
    with torch.no_grad():
        for name, value in _unique_state(model):
            yield from _on_disk(model, name, value.detach()).items()


def hf_weight_names(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """{on-disk name: shape} of every tensor `export_hf_weights` yields, computed on meta
    tensors (no memory, no copy)."""
    names: dict[str, tuple[int, ...]] = {}
    for name, value in _unique_state(model):
        meta = torch.empty(value.shape, dtype=value.dtype, device="meta")
        names.update({k: tuple(v.shape) for k, v in _on_disk(model, name, meta).items()})
    return names


class StreamCheck:
    """What makes a weight stream strict, for any receiver: every tensor is one the model
    expects (`expected`: {on-disk name: shape}), with its shape, arrives once, and all of
    them arrive. Errors are one line naming `where` and the tensor."""

    def __init__(self, expected: dict[str, tuple[int, ...]], where: str) -> None:
        self.expected, self.where = expected, where
        self.received: set[str] = set()

    def check(self, name: str, tensor: Tensor) -> None:
        """Raise BackendError unless `name` may arrive now with `tensor`'s shape."""
        if name not in self.expected:
            raise BackendError(f"{self.where}: load_weights got unknown tensor {name!r}")
        if tuple(tensor.shape) != self.expected[name]:
            raise BackendError(
                f"{self.where}: load_weights tensor {name!r} has shape {tuple(tensor.shape)}, "
                f"the model's is {self.expected[name]}"
            )
        if name in self.received:
            raise BackendError(f"{self.where}: load_weights got tensor {name!r} twice")
        self.received.add(name)

    def finish(self) -> int:
        """Check that every expected tensor arrived; the number received."""
        missing = sorted(set(self.expected) - self.received)
        if missing:
            shown = ", ".join(repr(name) for name in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise BackendError(f"{self.where}: load_weights never received {shown}{more}")
        return len(self.received)


class HFWeightReceiver:
    """Copies a stream of on-disk named tensors into `model` in place, strictly.

    An on-disk tensor that is its in-memory parent renamed is copied straight in. Pieces of a
    fused parameter (one expert's projection) are scattered into it through an index map: the
    parent's element indices sent through the same conversion as its values, so each piece
    carries the positions its elements came from. The map exists only while a fused parameter
    is partly received. Dtype and device are converted by the copy (a float32 policy can feed a
    bfloat16 engine). An error midway leaves the tensors already copied in place: treat the
    model as unusable then.
    """

    def __init__(self, model: nn.Module, where: str) -> None:
        self.model, self.where = model, where
        self.parents: dict[str, Tensor] = dict(_unique_state(model))
        self.parent_of: dict[str, str] = {}
        self.shape_of: dict[str, tuple[int, ...]] = {}
        self.pieces_of: dict[str, set[str]] = {}
        for parent, value in self.parents.items():
            meta = torch.empty(value.shape, dtype=value.dtype, device="meta")
            pieces = {k: tuple(v.shape) for k, v in _on_disk(model, parent, meta).items()}
            self.pieces_of[parent] = set(pieces)
            for piece, shape in pieces.items():
                self.parent_of[piece] = parent
                self.shape_of[piece] = shape
        self.check = StreamCheck(self.shape_of, where)
        self._index_maps: dict[str, dict[str, Tensor]] = {}

    def receive(self, name: str, tensor: Tensor) -> None:
        """Copy one on-disk tensor into its place."""
        self.check.check(name, tensor)
        parent = self.parent_of[name]
        target = self.parents[parent]
        with torch.no_grad():
            if self.pieces_of[parent] == {name} and tuple(target.shape) == tuple(tensor.shape):
                target.copy_(tensor)
            else:
                index = self._index_map(parent)[name].reshape(-1).to(target.device)
                flat = target.view(-1)
                flat[index] = tensor.reshape(-1).to(target.device, target.dtype, copy=True)
        if self.pieces_of[parent] <= self.check.received:
            self._index_maps.pop(parent, None)

    def receive_all(self, weights: Iterable[tuple[str, Tensor]]) -> int:
        """`receive` each pair, then `finish`; the number of tensors received."""
        for name, tensor in weights:
            self.receive(name, tensor)
        return self.finish()

    def finish(self) -> int:
        """Check that every on-disk tensor arrived; the number received."""
        return self.check.finish()

    def _index_map(self, parent: str) -> dict[str, Tensor]:
        if parent not in self._index_maps:
            target = self.parents[parent]
            positions = torch.arange(target.numel()).view(target.shape)
            self._index_maps[parent] = _on_disk(self.model, parent, positions)
        return self._index_maps[parent]


class WeightReceiver(Protocol):
    """Takes one weight stream tensor by tensor, then checks it was complete."""

    def receive(self, name: str, tensor: Tensor) -> None: ...

    def finish(self) -> int: ...


class ChunkedStream:
    """One weight stream that arrives over several calls (a Ray worker gets it chunk by
    chunk): the receiver opens with the first chunk and is checked and dropped with the last,
    or dropped on any error, so the next stream starts clean."""

    def __init__(self, open_receiver: Callable[[], WeightReceiver]) -> None:
        self.open_receiver = open_receiver
        self.receiver: WeightReceiver | None = None

    def receive(self, chunk: Sequence[tuple[str, Tensor]], last: bool) -> None:
        if self.receiver is None:
            self.receiver = self.open_receiver()
        try:
            for name, tensor in chunk:
                self.receiver.receive(name, tensor)
            if last:
                self.receiver.finish()
        except BaseException:
            self.receiver = None
            raise
        if last:
            self.receiver = None


def load_hf_weights(model: nn.Module, weights: Iterable[tuple[str, Tensor]], where: str) -> int:
    """Copy a complete stream of on-disk named tensors into `model` (strict); how many."""
    return HFWeightReceiver(model, where).receive_all(weights)
