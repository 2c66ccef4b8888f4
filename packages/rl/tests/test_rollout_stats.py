"""The hf engine's log-probs and entropies stand in for the policy's no-grad pass: the same
numbers, hence the same AEPO decision, masks, loss and gradients; only where that holds; and
the training forward's log-probs come back for the mismatch metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Conversation, TaskSample
from qwenlong.rl.aepo import AepoController, batch_entropy
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate, TokenStats
from qwenlong.rl.masks import NegativeClipConfig
from qwenlong.rl.rollout.batch import RolloutBatch, StepSequence
from qwenlong.rl.rollout.hf_engine import HFRolloutEngine
from qwenlong.rl.rollout_stats import rollout_token_stats
from qwenlong.rl.torch_rank import start_torch_policy
from qwenlong.rl.updates import policy_update

torch.set_num_threads(1)
BASE: dict[str, Any] = {
    "model": "m",
    "data": {"train": ["d.parquet"]},
    "steps": 1,
    "ray": {"enabled": False},
}


@pytest.fixture(scope="module")
def rollout(tiny_model_dir: Path) -> RolloutBatch:
    """Two prompts x G = 3 responses of the tiny model through the hf engine, with log-probs."""
    engine = HFRolloutEngine(tiny_model_dir)
    questions = ("Where is the red door?", "Name the river that runs past the old mill.")
    conversations: list[Conversation] = [[{"role": "user", "content": q}] for q in questions]
    sampling = SamplingParams(
        max_new_tokens=8, temperature=0.7, top_p=0.95, n=3, seed=5, logprobs=True
    )
    groups = engine.generate(conversations, sampling)
    prompts = engine.prompt_ids(conversations)
    engine.close()
    samples = [
        TaskSample(id=f"q{i}", task_type="qa", question=q, answers=["x"])
        for i, q in enumerate(questions)
    ]
    trajectories = [
        [[StepSequence(prompts[b], completion)] for completion in group]
        for b, group in enumerate(groups)
    ]
    return RolloutBatch.from_trajectories(samples, trajectories)


def _threshold_between(values: torch.Tensor) -> float:
    """A threshold half-way across the widest gap near the middle of `values`, so float
    rounding cannot move a value across it."""
    ordered = values.sort().values
    middle = range(len(ordered) // 4, 3 * len(ordered) // 4)
    gap = max(middle, key=lambda i: float(ordered[i + 1] - ordered[i]))
    assert float(ordered[gap + 1] - ordered[gap]) > 1e-4
    return float(ordered[gap] + ordered[gap + 1]) / 2


def test_rollout_stats_give_the_passs_numbers_masks_and_update(
    rollout: RolloutBatch, tiny_model_dir: Path
) -> None:
    packed = rollout.packed
    response = packed.loss_mask.bool()
    assert rollout.rollout_entropy is not None
    tau = _threshold_between(rollout.rollout_entropy[response])
    clip = NegativeClipConfig(mode="token", tau_token=tau)
    config = TrainConfig(**BASE, negative_clip=clip)
    ours = rollout_token_stats(rollout, config)
    policy = start_torch_policy(config, str(tiny_model_dir), None, None)
    theirs = policy.forward_logprobs(packed, packed.loss_mask)
    assert ours is not None
    torch.testing.assert_close(ours.logprobs, theirs.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.entropy, theirs.entropy, atol=1e-5, rtol=1e-5)  # ~7.6 nats
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5, 0.25, -0.25])
    negative = packed.to_tokens(advantages) < 0
    # AEPO active (the tiny model's near-uniform entropy is above 2 nats): negative sequences
    # dropped; inactive: the token-entropy clip drops some negative tokens and keeps others.
    for low, high, active in ((1.0, 2.0, True), (8.0, 9.0, False)):
        aepo = {"entropy_low": low, "entropy_high": high}
        config = TrainConfig(**BASE, aepo=aepo, negative_clip=clip)
        h_ours, on, a = _update(packed, advantages, ours, config)
        h_theirs, on_too, b = _update(packed, advantages, theirs, config)
        assert h_ours == pytest.approx(h_theirs, abs=1e-5) and on is on_too is active
        # The same tokens train with the same advantages and normaliser: the same loss and
        # gradients, since nothing else of the stats reaches an on-policy update.
        assert torch.equal(a.token_mask, b.token_mask) and torch.equal(a.advantages, b.advantages)
        assert a.global_tokens == b.global_tokens
        assert a.old_logprobs is None and b.old_logprobs is None and a.is_weights is None
        kept_negative = a.token_mask & negative
        assert not kept_negative.any() if active else 0 < kept_negative.sum() < negative.sum()
    # The training forward hands back pi_old on the tokens it trained, for the mismatch metrics.
    trained = policy.train_step(packed, a).logprobs
    policy.close()
    assert trained is not None and trained[~a.token_mask].isnan().all()
    torch.testing.assert_close(
        trained[a.token_mask], theirs.logprobs[a.token_mask], atol=1e-5, rtol=0
    )


def _update(
    packed: PackedBatch, advantages: torch.Tensor, stats: TokenStats, config: TrainConfig
) -> tuple[float, bool, PolicyUpdate]:
    """H(B), AEPO's decision and the update, from `stats`."""
    aepo = AepoController(config.aepo)
    entropy = batch_entropy(stats.entropy, packed.sequence_index(), packed.loss_mask)
    active = aepo.update(entropy)
    return entropy, active, policy_update(packed, advantages, stats, aepo, config)


@pytest.mark.parametrize(
    "override",
    [
        {"updates_per_batch": 2},
        {"rollout_correction": {"tis_cap": 2.0}},
        {"rollout": {"hf": {"dtype": "bfloat16"}}},
        {"rollout": {"backend": "vllm"}},
    ],
)
def test_the_pass_runs_where_the_rollout_numbers_are_not_the_policys(
    rollout: RolloutBatch, override: dict[str, Any]
) -> None:
    assert rollout_token_stats(rollout, TrainConfig(**BASE)) is not None
    assert rollout_token_stats(rollout, TrainConfig(**BASE, **override)) is None


def test_the_pass_runs_without_the_engines_entropies(rollout: RolloutBatch) -> None:
    first = rollout.completions[0]
    saved, first.entropies = first.entropies, None  # an engine that reports none (vLLM)
    try:
        trajectories = [
            [[StepSequence(rollout.packed.input_ids[:1].tolist(), c)] for c in rollout.completions]
        ]
        batch = RolloutBatch.from_trajectories(rollout.samples[:1], trajectories)
        assert batch.rollout_logprobs is not None and batch.rollout_entropy is None
        assert rollout_token_stats(batch, TrainConfig(**BASE)) is None
    finally:
        first.entropies = saved
