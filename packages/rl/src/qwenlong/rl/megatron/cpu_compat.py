"""Megatron-Core on a CPU over gloo: every redirection it needs, in one place.

Megatron-Core's local (non-Transformer-Engine) path is plain torch, but it still asks CUDA for
a device, a causal mask, RNG states and side streams in a handful of spots, and hands gloo
split sizes in a form only NCCL accepts. `enable_cpu_megatron` swaps exactly those attributes
(listed in `PATCHES`) for CPU equivalents. It is for `device: cpu` only (tests, the CPU demo):
a GPU run never calls it, so its numerics and kernels are Megatron's own.

The swap is process-wide and permanent (a policy rank is a process of its own); calling it
again is a no-op. `test_megatron_cpu_compat` checks that every patched attribute still exists
upstream, so a megatron-core upgrade that renames one fails a test instead of silently running
the CUDA path.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

import torch


class Patch(NamedTuple):
    """One attribute `enable_cpu_megatron` replaces, and why."""

    module: str
    """Dotted path of the module or class owning the attribute."""
    attribute: str
    why: str
    """What upstream does there that fails or goes wrong on a CPU."""
    replacement: Callable[[Any], Any]
    """Given the upstream value, returns the CPU value."""
    reader: str | None = None
    """For a module global that upstream defines only when Transformer Engine imports: the
    dotted path of the function that reads it (checked instead of the attribute)."""


def _cpu_device() -> str:
    return "cpu"


def _default_causal_mask(sq: int) -> torch.Tensor:
    return torch.triu(torch.ones(sq, sq, dtype=torch.bool), diagonal=1)


def _get_rng_state(*_args: Any, **_kwargs: Any) -> torch.Tensor:
    return torch.get_rng_state()


def _set_rng_state(new_state: torch.Tensor, *_args: Any, **_kwargs: Any) -> None:
    torch.set_rng_state(new_state)


def _tracker_add(self: Any, name: str, seed: int) -> None:
    """`CudaRNGStatesTracker.add` with a CPU generator's state (upstream seeds the CUDA one)."""
    self._is_initialized = True
    if seed in self.seeds_:
        raise Exception(f"seed {seed} already exists")
    self.seeds_.add(seed)
    if name in self.states_:
        raise Exception(f"rng state {name} already exists")
    self.states_[name] = torch.Generator().manual_seed(seed).get_state()


def _dtoh_and_synchronize(
    self: Any, point: str, tokens_per_expert: torch.Tensor | None = None
) -> torch.Tensor | None:
    """The all-to-all dispatcher's device-to-host step without CUDA streams: everything is on
    the CPU already, and gloo's all_to_all wants the split sizes as a sequence of ints (upstream
    turns them into numpy only when they come off a GPU)."""
    if not self.drop_and_pad and point == self.cuda_dtoh_point:
        for name in ("input_splits", "output_splits", "output_splits_tp"):
            value = getattr(self, name)
            if torch.is_tensor(value):
                setattr(self, name, value.numpy())
    return tokens_per_expert


def _pos_emb_on_this_cp_rank(pos_emb: torch.Tensor, seq_dim: int, cp_group: Any) -> torch.Tensor:
    # Upstream's selection (rope_utils): rank r keeps chunks r and 2CP-1-r of 2CP; built on CPU.
    cp_size, cp_rank = cp_group.size(), cp_group.rank()
    index = torch.tensor([cp_rank, 2 * cp_size - cp_rank - 1])
    shape = pos_emb.shape
    chunks = pos_emb.view(*shape[:seq_dim], 2 * cp_size, -1, *shape[seq_dim + 1 :])
    chosen = chunks.index_select(seq_dim, index)
    return chosen.view(*shape[:seq_dim], -1, *shape[seq_dim + 1 :])


def _norm_new(original: Any) -> Callable[..., torch.nn.Module]:
    def new(cls: type, config: Any, hidden_size: int, eps: float = 1e-5, **kwargs: Any) -> Any:
        """Upstream refuses sequence parallel outright; the norm itself is per token, so it only
        needs its weight marked, as Megatron's own norms do, for the gradient all-reduce over
        the tensor-parallel group."""
        if not config.sequence_parallel:
            return original(cls, config, hidden_size, eps, **kwargs)
        config.sequence_parallel = False
        try:
            norm = original(cls, config, hidden_size, eps, **kwargs)
        finally:
            config.sequence_parallel = True
        for param in norm.parameters():
            param.sequence_parallel = True
        return norm

    return staticmethod(new)  # type: ignore[return-value]


_DISPATCHER = "megatron.core.transformer.moe.token_dispatcher.MoEAlltoAllTokenDispatcher"
_RANDOM = "megatron.core.tensor_parallel.random"

PATCHES: list[Patch] = [
    Patch(
        "torch.cuda",
        "current_device",
        "Megatron allocates buffers, RoPE frequencies and router weights on the current CUDA "
        "device; on CPU that device is the CPU.",
        lambda _: _cpu_device,
    ),
    Patch(
        "megatron.core.fusions.fused_softmax",
        "get_default_causal_mask",
        "The unfused softmax builds its causal mask on 'cuda'.",
        lambda _: _default_causal_mask,
    ),
    Patch(
        _RANDOM,
        "_get_cuda_rng_state",
        "The model-parallel RNG tracker forks the CUDA generator's state around dropout; on "
        "CPU it is the CPU generator's.",
        lambda _: _get_rng_state,
    ),
    Patch(
        _RANDOM,
        "_set_cuda_rng_state",
        "Upstream queues a lazy CUDA call that never runs without CUDA: the fork would not "
        "switch streams, silently.",
        lambda _: _set_rng_state,
    ),
    Patch(
        f"{_RANDOM}.CudaRNGStatesTracker",
        "add",
        "Seeding a tracked state reads and seeds the CUDA generator.",
        lambda _: _tracker_add,
    ),
    Patch(
        _DISPATCHER,
        "cuda_dtoh_stream",
        "Its constructor creates a CUDA side stream unless this class attribute is set.",
        lambda _: object(),
    ),
    Patch(
        _DISPATCHER,
        "_maybe_dtoh_and_synchronize",
        "Copies split sizes to the host on the side stream; gloo needs them as numpy.",
        lambda _: _dtoh_and_synchronize,
    ),
    Patch(
        "megatron.core.transformer.moe.moe_utils",
        "te_general_gemm",
        "Imported only with Transformer Engine, yet the router's gating reads it: None selects "
        "torch.mm (and a TE GEMM would need CUDA anyway).",
        lambda _: None,
        reader="megatron.core.transformer.moe.moe_utils.RouterGatingLinearFunction.forward",
    ),
    Patch(
        "megatron.core.models.common.embeddings.rotary_pos_embedding",
        "get_pos_emb_on_this_cp_rank",
        "Under context parallel, each rank's RoPE slice is chosen with pinned memory and "
        "`.cuda()`.",
        lambda _: _pos_emb_on_this_cp_rank,
    ),
    Patch(
        "megatron.core.transformer.torch_norm.WrappedTorchNorm",
        "__new__",
        "The torch norm asserts sequence_parallel is off; with it on, mark the weight instead.",
        _norm_new,
    ),
]
"""Every attribute replaced on CPU, in the order applied."""

_ORIGINALS: dict[tuple[str, str], Any] = {}
"""The upstream value of each applied patch: the record that it is in place, so a second
`enable_cpu_megatron` changes nothing."""

MISSING = object()
"""The upstream value of an attribute upstream does not define."""


def resolve(path: str) -> Any:
    """The module, class or function at dotted `path`."""
    with contextlib.suppress(ModuleNotFoundError):
        return importlib.import_module(path)
    parent, _, name = path.rpartition(".")
    return getattr(resolve(parent), name)


def upstream(patch: Patch) -> Any:
    """The value upstream gives `patch`'s attribute (`MISSING` when it has none), whether or
    not the patch is applied."""
    key = (patch.module, patch.attribute)
    if key in _ORIGINALS:
        return _ORIGINALS[key]
    owner = resolve(patch.module)
    value = owner.__dict__.get(patch.attribute, MISSING) if isinstance(owner, type) else MISSING
    if value is MISSING:
        value = getattr(owner, patch.attribute, MISSING)
    return value.__func__ if isinstance(value, staticmethod) else value


def still_upstream(patch: Patch) -> bool:
    """Whether upstream still has what `patch` replaces: the attribute, or for a TE-only
    global, a reader that still refers to it by that name."""
    if upstream(patch) is not MISSING:
        return True
    return patch.reader is not None and patch.attribute in resolve(patch.reader).__code__.co_names


def enable_cpu_megatron() -> None:
    """Apply every patch in `PATCHES`, once per process (later calls do nothing).

    Raises RuntimeError when megatron-core no longer has an attribute a patch replaces: the
    CUDA path it stood in for would otherwise run unnoticed.
    """
    for patch in PATCHES:
        key = (patch.module, patch.attribute)
        if key in _ORIGINALS:
            continue
        if not still_upstream(patch):
            raise RuntimeError(
                f"megatron-core has no {patch.module}.{patch.attribute} any more; "
                "qwenlong.rl.megatron.cpu_compat needs updating for this version"
            )
        original = upstream(patch)
        setattr(resolve(patch.module), patch.attribute, patch.replacement(original))
        _ORIGINALS[key] = original
