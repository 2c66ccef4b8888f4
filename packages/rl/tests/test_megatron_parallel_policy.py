"""The Megatron policy on gloo ranks (Ray actors) takes the step of the torch policy on one.

Two ranks, every run:
tensor parallel 2 with expert parallel 2 and sequence parallel (vocabulary-parallel log-probs
and entropy, the all-to-all dispatcher), and expert parallel 2 over data parallel 2 with the
all-gather dispatcher (a rank with fewer micro-batches still takes part in every dispatch),
context parallel 2 (each rank runs two chunks of every packed row; keys and values are
gathered by the CPU stand-in for Transformer Engine's attention), and pipeline parallel 2 (one
layer per stage, activations and their gradients sent between the stages in the 1F1B order).
Four ranks (slow): context or pipeline parallel 2, each with tensor parallel 2, sequence
parallel and expert parallel 2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from qwenlong.rl.config import RayConfig
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate
from qwenlong.rl.losses import LossConfig
from qwenlong.rl.megatron.config import MegatronPolicyConfig
from qwenlong.rl.megatron.policy import MegatronPolicyRank
from qwenlong.rl.micro_batches import MicroBatchPlanner
from qwenlong.rl.policy_group import PolicyGroup
from qwenlong.rl.ray_session import ray_session as local_ray
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig

LR, EPS, T = 1e-3, 1e-3, 0.7

LAYOUTS = {
    "tp2-ep2-sp-alltoall": {
        "parallel": {"tensor": 2, "expert": 2, "expert_tensor": 1, "sequence_parallel": True},
        "moe": {"token_dispatcher": "alltoall"},
    },
    "cp2": {
        "parallel": {"context": 2},
        "moe": {"token_dispatcher": "alltoall"},
    },
    "pp2": {
        "parallel": {"pipeline": 2},
        "moe": {"token_dispatcher": "alltoall"},
    },
    "ep2-dp2-allgather": {
        "parallel": {"expert": 2},
        "moe": {"token_dispatcher": "allgather"},
    },
}


FOUR_RANK_LAYOUTS = {
    "cp2-tp2-ep2-sp": {
        "parallel": {
            "context": 2, "tensor": 2, "expert": 2, "expert_tensor": 1, "sequence_parallel": True
        },
    },
    "pp2-tp2-ep2-sp": {
        "parallel": {
            "pipeline": 2, "tensor": 2, "expert": 2, "expert_tensor": 1, "sequence_parallel": True
        },
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """A local Ray of 4 logical CPUs (one per rank of the largest layout) whose workers start
    from this environment (the run's own)."""
    with local_ray(RayConfig(num_cpus=4)):
        yield


def _batch() -> tuple[PackedBatch, PolicyUpdate]:
    generator = torch.Generator().manual_seed(7)
    lengths = [(6, 5), (3, 9), (10, 2), (4, 4), (7, 6)]
    prompts = [torch.randint(5, 2000, (p,), generator=generator).tolist() for p, _ in lengths]
    responses = [torch.randint(5, 2000, (r,), generator=generator).tolist() for _, r in lengths]
    batch = PackedBatch.from_sequences(prompts, responses)
    per_sequence = torch.tensor([1.0, -0.5, 0.25, -1.0, 2.0])
    advantages = per_sequence[batch.sequence_index()] * batch.loss_mask
    mask = batch.loss_mask.clone()
    return batch, PolicyUpdate(advantages, mask, None, None, int(mask.sum()))


def _group(model: Path, layout: dict[str, Any], world: int = 2) -> PolicyGroup:
    config = MegatronPolicyConfig(
        lr=LR, eps=EPS, temperature=T, micro_batch_tokens=24, torch_threads=1, **layout
    )
    ranks = [
        (MegatronPolicyRank, (str(model), config, LossConfig(), r, world)) for r in range(world)
    ]
    planner = MicroBatchPlanner(24, None, packed=True)
    return PolicyGroup(ranks, planner, name="megatron policy")


SLOW_LAYOUTS = {"ep2-dp2-allgather"}
"""Run with -m slow only: the default suite's time budget keeps one expert-parallel layout
(tp2-ep2-sp-alltoall); this one adds data parallelism beside experts and the allgather
dispatcher."""


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name in SLOW_LAYOUTS else name
        for name in sorted(LAYOUTS)
    ],
)
def test_two_ranks_take_the_step_of_the_torch_policy(
    ray_session: None, tiny_model_dir: Path, name: str
) -> None:
    _check_step(tiny_model_dir, LAYOUTS[name], world=2)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FOUR_RANK_LAYOUTS))
def test_four_ranks_combine_context_or_pipeline_with_tensor_and_expert_parallel(
    ray_session: None, tiny_model_dir: Path, name: str
) -> None:
    _check_step(tiny_model_dir, FOUR_RANK_LAYOUTS[name], world=4)


def _check_step(model: Path, layout: dict[str, Any], world: int) -> None:
    """Log-probs, entropy, loss, gradient norm, expert load and the trained weights of `world`
    Megatron ranks in `layout` against the torch policy on one process."""
    torch.set_num_threads(1)
    batch, update = _batch()
    reference = TorchPolicy(model, TorchPolicyConfig(lr=LR, eps=EPS, temperature=T))
    group = _group(model, layout, world)
    try:
        got, want = group.forward_logprobs(batch), reference.forward_logprobs(batch)
        torch.testing.assert_close(got.logprobs, want.logprobs, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got.entropy, want.entropy, atol=1e-5, rtol=1e-5)
        one, two = group.train_step(batch, update), reference.train_step(batch, update)
        assert one.loss == pytest.approx(two.loss, abs=1e-6)
        assert one.grad_norm == pytest.approx(two.grad_norm, rel=1e-4)
        for layer in (0, 1):  # under PP2 each on its own stage
            high, low = (
                one.extra[f"moe_load_max/layer_{layer}"],
                one.extra[f"moe_load_min/layer_{layer}"],
            )
            assert high >= 1.0 >= low
        trained = dict(group.export_weights())
        reference_weights = dict(reference.export_weights())
        assert set(trained) == set(reference_weights)  # HF's on-disk names, from any layout
        for tensor_name, tensor in reference_weights.items():
            assert trained[tensor_name].dtype == tensor.dtype
            torch.testing.assert_close(trained[tensor_name], tensor, atol=1e-5, rtol=0)
    finally:
        group.close()
