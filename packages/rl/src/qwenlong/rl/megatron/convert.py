"""HF Qwen3(-MoE) weights into a Megatron `GPTModel` and back out, under HF's on-disk names.

Loading: every rank reads only the slices of HF tensors its own parameters are made of (its
pipeline stage's layers, its experts, its tensor-parallel rows or columns), straight from the
safetensors files through `get_slice`, so no process ever holds the whole model. A stream of
whole HF tensors (another policy's export) works too: each rank keeps its slices of each.

Exporting: all ranks call `export_megatron_to_hf` and drain it. For each parameter, in HF's
order, one replica of each shard (data-parallel rank 0) is sent to global rank 0, which
reassembles the HF tensors and yields them, one Megatron parameter at a time; other ranks
yield nothing. Point-to-point sends reach rank 0 from any pipeline stage, tensor-parallel or
expert rank alike, and both sides walk the same order, so no collective is needed beyond one
exchange of who holds what.

The layouts themselves (fused QKV by query group, [gate; up] per rank) are in `weight_layout`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from megatron.core import parallel_state
from torch import Tensor, nn

from qwenlong.core.errors import CheckpointError
from qwenlong.core.safetensors_io import weight_files
from qwenlong.rl.megatron.weight_layout import Dims, Layout, global_names, layout, local_spec_name


@dataclass(frozen=True)
class ParallelInfo:
    """This rank's coordinates that decide which slices it holds and whether it sends them."""

    tp_rank: int
    tp: int
    etp_rank: int
    etp: int
    dense_replica: int
    """Rank among the data- (and context-) parallel copies of the dense layers."""
    expert_replica: int
    """Rank among the expert-data-parallel copies of this rank's experts."""

    @classmethod
    def current(cls) -> ParallelInfo:
        """From Megatron's `parallel_state` (after `init_parallel`)."""
        ps = parallel_state
        return cls(
            tp_rank=ps.get_tensor_model_parallel_rank(),
            tp=ps.get_tensor_model_parallel_world_size(),
            etp_rank=ps.get_expert_tensor_parallel_rank(),
            etp=ps.get_expert_tensor_parallel_world_size(),
            dense_replica=ps.get_data_parallel_rank(with_context_parallel=True),
            expert_replica=ps.get_expert_data_parallel_rank(),
        )

    def shard(self, param: Layout) -> tuple[int, int]:
        """(this rank's shard, number of shards) of a parameter."""
        if param.group == "tp":
            return self.tp_rank, self.tp
        if param.group == "etp":
            return self.etp_rank, self.etp
        return 0, 1

    def sends(self, param: Layout) -> bool:
        """Whether this rank's copy is the one exported (replica 0 of its shard)."""
        if param.group == "etp":
            return self.expert_replica == 0
        return self.dense_replica == 0 and (param.group == "tp" or self.tp_rank == 0)


def dims_of(model: Any) -> Dims:
    """The sizes of a Megatron `GPTModel` built by `model.build_model`."""
    config = model.config
    return Dims(
        layers=config.num_layers,
        hidden=config.hidden_size,
        heads=config.num_attention_heads,
        groups=config.num_query_groups,
        head_dim=config.kv_channels,
        ffn=config.ffn_hidden_size,
        moe_ffn=config.moe_ffn_hidden_size or 0,
        experts=config.num_moe_experts or 0,
        vocab=model.vocab_size,
        tied=model.share_embeddings_and_output_weights,
    )


def global_parameters(model: Any) -> dict[str, nn.Parameter]:
    """{global name: parameter} of this rank's model: Megatron's names with the stage-local
    layer index and rank-local expert index replaced by the global ones."""
    return {_global_name(model, name): param for name, param in model.named_parameters()}


def _global_name(model: Any, name: str) -> str:
    layer = re.fullmatch(r"decoder\.layers\.(\d+)\.(.+)", name)
    if layer is None:
        return name
    block = model.decoder.layers[int(layer.group(1))]
    rest = local_spec_name(layer.group(2))
    expert = re.fullmatch(r"mlp\.experts\.local_experts\.(\d+)\.(.+)", rest)
    if expert is not None:
        index = block.mlp.local_expert_indices[int(expert.group(1))]
        rest = f"mlp.experts.local_experts.{index}.{expert.group(2)}"
    return f"decoder.layers.{block.layer_number - 1}.{rest}"


@dataclass
class _Placement:
    """Where one HF slice goes: `target` is a view of a parameter."""

    target: Tensor
    dim: int
    start: int
    stop: int


def _placements(
    model: Any, dims: Dims, parallel: ParallelInfo
) -> tuple[dict[str, list[_Placement]], dict[str, tuple[int, ...]]]:
    """({HF name: slices this rank needs from it}, {every HF name of the model: full shape})."""
    shapes = {hf: shape for name in global_names(dims) for hf, shape in layout(name, dims).hf}
    needed: dict[str, list[_Placement]] = {}
    for name, param in global_parameters(model).items():
        try:
            param_layout = layout(name, dims)
        except KeyError:
            raise CheckpointError(f"Megatron parameter {name} has no HF source") from None
        shard, shards = parallel.shard(param_layout)
        offset, dim = 0, param_layout.dim
        for part in param_layout.parts(shard, shards):
            length = part.stop - part.start
            view = param.data.narrow(dim, offset, length)
            needed.setdefault(part.name, []).append(_Placement(view, dim, part.start, part.stop))
            offset += length
        if offset != param.shape[dim]:
            raise CheckpointError(
                f"{name}: its HF slices add up to {offset} along dim {dim}, the shard has "
                f"{tuple(param.shape)}"
            )
    return needed, shapes


class MegatronWeightReceiver:
    """Copies a stream of whole HF on-disk tensors into this rank's part of a Megatron model,
    keeping only this rank's slices of each; `finish` checks nothing this rank needs is missing.

    Strict, like `qwenlong.core.hf_weights.HFWeightReceiver`: a tensor the model does not have,
    a wrong shape or a tensor sent twice is a CheckpointError, so a partial load can never pass
    for the new weights. An error midway leaves the model half-loaded: treat it as unusable.
    """

    def __init__(self, model: Any, parallel: ParallelInfo | None = None) -> None:
        parallel = parallel or ParallelInfo.current()
        self.needed, self.shapes = _placements(model, dims_of(model), parallel)
        self.received: set[str] = set()

    def receive(self, name: str, tensor: Tensor) -> None:
        """Copy this rank's slices of one whole HF tensor into place."""
        self._place(name, tuple(tensor.shape), _narrower(tensor))

    def finish(self) -> int:
        """Check every tensor this rank needs arrived; how many this rank took slices of."""
        missing = sorted(set(self.needed) - self.received)
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise CheckpointError(f"HF weights lack {', '.join(missing[:3])}{more}")
        return len(self.needed)

    def _place(self, name: str, shape: tuple[int, ...], read: Any) -> None:
        """Check tensor `name` of `shape`, then copy `read(placement)` into each of its
        placements on this rank (none for another rank's tensor: then nothing is read)."""
        if name not in self.shapes:
            raise CheckpointError(f"HF tensor {name!r} is not part of this model")
        if shape != self.shapes[name]:
            raise CheckpointError(f"HF tensor {name!r} has shape {shape}, not {self.shapes[name]}")
        if name in self.received:
            raise CheckpointError(f"HF tensor {name!r} arrived twice")
        with torch.no_grad():
            for spot in self.needed.get(name, ()):
                spot.target.copy_(read(spot))
        self.received.add(name)


def load_hf_into_megatron(
    model: Any,
    source: Path | str | Iterable[tuple[str, Tensor]],
    parallel: ParallelInfo | None = None,
) -> int:
    """Fill every parameter of this rank's `model` from an HF checkpoint folder (reading only
    this rank's slices from disk) or a stream of whole HF on-disk tensors; returns how many HF
    tensors this rank took slices of. Strict: see `MegatronWeightReceiver`.
    """
    receiver = MegatronWeightReceiver(model, parallel)
    if isinstance(source, (str, Path)):
        _read_folder(Path(source), receiver)
    else:
        for name, tensor in source:
            receiver.receive(name, tensor)
    return receiver.finish()


def _narrower(tensor: Tensor) -> Any:
    def read(spot: _Placement) -> Tensor:
        return tensor.narrow(spot.dim, spot.start, spot.stop - spot.start)

    return read


def _read_folder(folder: Path, receiver: MegatronWeightReceiver) -> None:
    """Every tensor of the folder's safetensors files to `receiver`, as lazy slices: only the
    rows (or columns) this rank keeps are read."""
    from safetensors import safe_open

    files = weight_files(folder)
    if not files:
        raise CheckpointError(f"no safetensors weights in {folder}")
    for path in files:
        # pread: a slice is read when asked for, and no shard is mapped whole.
        with safe_open(path, framework="pt", backend="pread") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                piece = handle.get_slice(name)

                def read(spot: _Placement, piece: Any = piece) -> Tensor:
                    rows = slice(spot.start, spot.stop)
                    return piece[rows] if spot.dim == 0 else piece[:, rows]

                receiver._place(name, tuple(piece.get_shape()), read)


def export_megatron_to_hf(
    model: Any, parallel: ParallelInfo | None = None, *, everywhere: bool = False
) -> Iterator[tuple[str, Tensor]]:
    """(HF on-disk name, tensor) for the whole model, on global rank 0, one Megatron parameter
    at a time; every rank must call it and drain it (other ranks yield nothing). Tensors on
    rank 0 may be views of its live parameters: consume or copy them before the model changes.

    `everywhere`: every rank yields every tensor (rank 0 broadcasts each once assembled), for a
    consumer that needs the whole model on each rank (vLLM's CUDA IPC transfer: each rank hands
    the engine on its own GPU a copy).
    """
    parallel = parallel or ParallelInfo.current()
    dims = dims_of(model)
    held = global_parameters(model)
    senders = _senders(held, dims, parallel)
    rank = dist.get_rank() if dist.is_initialized() else 0
    spread = everywhere and dist.is_initialized() and dist.get_world_size() > 1
    with torch.no_grad():
        for name in global_names(dims):
            if rank != 0:
                if any(owner == rank for owner, _, _ in senders[name]):
                    dist.send(held[name].detach().contiguous(), dst=0)
                if spread:
                    dtype = senders[name][0][2]
                    for hf, shape in layout(name, dims).hf:
                        tensor = torch.empty(shape, dtype=dtype, device=_device(held))
                        dist.broadcast(tensor, src=0)
                        yield hf, tensor
                continue
            pieces = []
            for owner, shape, dtype in senders[name]:
                if owner == 0:
                    pieces.append(held[name].detach())
                else:
                    pieces.append(torch.empty(shape, dtype=dtype, device=_device(held)))
                    dist.recv(pieces[-1], src=owner)
            for hf, tensor in _assemble(layout(name, dims), pieces):
                if spread:
                    tensor = tensor.contiguous()
                    dist.broadcast(tensor, src=0)
                yield hf, tensor


def export_order(model: Any) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """(HF name, full shape, dtype) of every tensor `export_megatron_to_hf` yields, in its
    order, without exporting: the same on every rank."""
    dims = dims_of(model)
    dtype = model.config.params_dtype
    order = []
    for name in global_names(dims):
        param_layout = layout(name, dims)
        if param_layout.exported:
            order += [(hf, tuple(shape), dtype) for hf, shape in param_layout.hf]
    return order


def _senders(
    held: dict[str, nn.Parameter], dims: Dims, parallel: ParallelInfo
) -> dict[str, list[tuple[int, tuple[int, ...], torch.dtype]]]:
    """{global name: [(rank, shape, dtype) sending shard i, for each shard i]}, the same on
    every rank (one all-gather of who holds what); a CheckpointError on every rank when a shard
    has no sender, before anything is sent."""
    mine = {}
    for name, param in held.items():
        param_layout = layout(name, dims)
        if param_layout.exported and parallel.sends(param_layout):
            mine[name] = (parallel.shard(param_layout)[0], tuple(param.shape), param.dtype)
    tables: list[Any] = [mine]
    if dist.is_initialized() and dist.get_world_size() > 1:
        tables = [None] * dist.get_world_size()
        dist.all_gather_object(tables, mine)
    senders: dict[str, list[tuple[int, tuple[int, ...], torch.dtype]]] = {}
    for name in global_names(dims):
        shards = parallel.shard(layout(name, dims))[1]
        found = {table[name][0]: (rank, *table[name][1:]) for rank, table in _ranked(tables, name)}
        if sorted(found) != list(range(shards)):
            raise CheckpointError(f"{name}: ranks hold shards {sorted(found)} of {shards}")
        senders[name] = [found[shard] for shard in range(shards)]
    return senders


def _ranked(tables: list[Any], name: str) -> Iterator[tuple[int, Any]]:
    return ((rank, table) for rank, table in enumerate(tables) if name in table)


def _device(held: dict[str, nn.Parameter]) -> torch.device:
    return next(iter(held.values())).device


def _assemble(param: Layout, pieces: list[Tensor]) -> Iterator[tuple[str, Tensor]]:
    """The HF tensors of one Megatron parameter from all its shards, in shard order."""
    if param.kind == "whole" or (len(pieces) == 1 and len(param.hf) == 1):
        yield param.hf[0][0], pieces[0]
        return
    dim = param.dim
    first = pieces[0]
    full = {
        name: torch.empty(shape, dtype=first.dtype, device=first.device) for name, shape in param.hf
    }
    for shard, piece in enumerate(pieces):
        offset = 0
        for part in param.parts(shard, len(pieces)):
            length = part.stop - part.start
            full[part.name].narrow(dim, part.start, length).copy_(piece.narrow(dim, offset, length))
            offset += length
    yield from full.items()
