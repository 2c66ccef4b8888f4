"""The CPU redirections for Megatron-Core: each still has an upstream target, applying them twice
changes nothing, and each CPU stand-in does what the CUDA original did."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from qwenlong.rl.megatron import cpu_compat
from qwenlong.rl.megatron.cpu_compat import (
    MISSING,
    PATCHES,
    Patch,
    enable_cpu_megatron,
    resolve,
    still_upstream,
    upstream,
)


def _current(patch: Patch) -> object:
    """The attribute as it is now (a class's own entry, so `__new__` is not re-bound)."""
    owner = resolve(patch.module)
    if isinstance(owner, type):
        return owner.__dict__.get(patch.attribute)
    return getattr(owner, patch.attribute)


def test_every_patched_attribute_still_exists_upstream() -> None:
    enable_cpu_megatron()
    gone = [f"{p.module}.{p.attribute}" for p in PATCHES if not still_upstream(p)]
    assert gone == []
    # Only the Transformer-Engine-only global may be absent, and only without TE.
    absent = [p.attribute for p in PATCHES if upstream(p) is MISSING]
    assert absent in ([], ["te_general_gemm"])


def test_a_renamed_upstream_attribute_stops_the_cpu_path(monkeypatch: pytest.MonkeyPatch) -> None:
    renamed = Patch("megatron.core.fusions.fused_softmax", "causal_mask_v2", "", lambda _: None)
    assert not still_upstream(renamed)
    monkeypatch.setattr(cpu_compat, "PATCHES", [*PATCHES, renamed])
    with pytest.raises(RuntimeError, match=r"fused_softmax\.causal_mask_v2"):
        enable_cpu_megatron()


def test_enabling_twice_changes_nothing() -> None:
    enable_cpu_megatron()
    first = [_current(p) for p in PATCHES]
    originals = [upstream(p) for p in PATCHES]
    enable_cpu_megatron()
    assert all(a is b for a, b in zip(first, [_current(p) for p in PATCHES], strict=True))
    assert all(a is b for a, b in zip(originals, [upstream(p) for p in PATCHES], strict=True))
    assert torch.cuda.current_device() == "cpu"


def test_causal_mask_is_built_on_cpu() -> None:
    enable_cpu_megatron()
    from megatron.core.fusions import fused_softmax

    mask = fused_softmax.get_default_causal_mask(3)
    expected = [[False, True, True], [False, False, True], [False, False, False]]
    assert mask.device.type == "cpu" and mask.tolist() == expected


def test_rng_tracker_forks_the_cpu_generator() -> None:
    enable_cpu_megatron()
    from megatron.core.tensor_parallel.random import CudaRNGStatesTracker

    tracker = CudaRNGStatesTracker()
    tracker.add("model-parallel", 7)
    torch.manual_seed(0)
    reference = torch.rand(4)
    torch.manual_seed(0)
    before = torch.rand(2)
    with tracker.fork("model-parallel"):
        forked = torch.rand(3)
    after = torch.rand(2)
    # The fork draws from its own seeded stream and leaves the default stream where it was.
    assert torch.equal(forked, torch.rand(3, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(torch.cat([before, after]), reference)


def test_dispatcher_hands_gloo_numpy_split_sizes() -> None:
    enable_cpu_megatron()
    from megatron.core.transformer.moe.token_dispatcher import MoEAlltoAllTokenDispatcher

    dispatcher = SimpleNamespace(
        drop_and_pad=False,
        cuda_dtoh_point="before_ep_alltoall",
        input_splits=torch.tensor([3, 1]),
        output_splits=torch.tensor([2, 2]),
        output_splits_tp=None,
    )
    tokens = torch.tensor([4, 0])
    step = MoEAlltoAllTokenDispatcher._maybe_dtoh_and_synchronize
    assert step(dispatcher, "before_permutation_1", tokens) is tokens
    assert torch.is_tensor(dispatcher.input_splits)  # not yet: another point
    assert step(dispatcher, "before_ep_alltoall", tokens) is tokens
    assert isinstance(dispatcher.input_splits, np.ndarray)
    assert dispatcher.input_splits.tolist() == [3, 1]
    assert dispatcher.output_splits.tolist() == [2, 2]
    assert dispatcher.output_splits_tp is None


def test_torch_norm_accepts_sequence_parallel() -> None:
    enable_cpu_megatron()
    from megatron.core.transformer.torch_norm import WrappedTorchNorm

    config = SimpleNamespace(
        layernorm_zero_centered_gamma=False,
        persist_layer_norm=False,
        sequence_parallel=True,
        memory_efficient_layer_norm=False,
        normalization="RMSNorm",
    )
    norm = WrappedTorchNorm(config, 8, eps=1e-6)
    assert isinstance(norm, torch.nn.RMSNorm) and norm.eps == 1e-6
    assert norm.weight.sequence_parallel is True
    assert config.sequence_parallel is True  # restored
    config.sequence_parallel = False
    assert not hasattr(WrappedTorchNorm(config, 8).weight, "sequence_parallel")
