"""The training-inference mismatch: measured on hand-computed log-probs, carried from the
engine's completions into the packed batch, and corrected by truncated importance sampling."""

from __future__ import annotations

import math

import pytest
import torch

from qwenlong.core.records import Completion, TaskSample
from qwenlong.rl.aepo import AepoConfig, AepoController
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import PackedBatch, TokenStats
from qwenlong.rl.losses import LossConfig, compute_loss
from qwenlong.rl.rollout.batch import RolloutBatch, StepSequence
from qwenlong.rl.rollout_correction import mismatch_metrics, truncated_is_weights
from qwenlong.rl.updates import policy_update

NAN = float("nan")


def test_mismatch_on_hand_computed_log_probs() -> None:
    policy = torch.tensor([NAN, -1.0, -2.0, -0.5])
    engine = torch.tensor([NAN, -1.5, -2.0, -0.1])
    mask = torch.tensor([False, True, True, True])
    got = mismatch_metrics(policy, engine, mask)
    d = [0.5, 0.0, -0.4]  # log pi - log mu
    assert got["mismatch/logprob_abs_diff"] == pytest.approx(0.9 / 3)
    assert got["mismatch/kl"] == pytest.approx(sum(math.exp(x) - 1 - x for x in d) / 3)
    assert got["mismatch/tokens"] == 3
    assert mismatch_metrics(policy, engine, torch.zeros(4, dtype=torch.bool)) == {}


def test_truncated_weights_cap_the_ratio_and_leave_other_tokens_at_one() -> None:
    policy = torch.tensor([math.log(0.5), math.log(3.0), 0.0, -1.0, -1.0])
    engine = torch.tensor([0.0, 0.0, 0.0, NAN, -50.0])
    mask = torch.tensor([True, True, True, True, False])
    weights = truncated_is_weights(policy, engine, mask, cap=2.0)
    assert weights.tolist() == pytest.approx([0.5, 2.0, 1.0, 1.0, 1.0])


def test_weights_scale_each_tokens_policy_gradient_not_the_kl() -> None:
    logprobs = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    advantages = torch.tensor([1.0, -1.0, 2.0])
    weights = torch.tensor([0.5, 2.0, 1.0])
    mask = torch.ones(3, dtype=torch.bool)
    loss, stats = compute_loss(
        logprobs, None, None, advantages, mask, 3, LossConfig(), is_weights=weights
    )
    loss.backward()
    # on-policy: d loss / d logp = -A w / global_tokens
    assert logprobs.grad.tolist() == pytest.approx([-0.5 / 3, 2.0 / 3, -2.0 / 3])
    assert stats["is_weight_mean"] == pytest.approx(3.5 / 3)
    reference = torch.tensor([-1.0, -2.0, -0.5])
    with_kl = LossConfig(kl_beta=1.0)
    kl_only, _ = compute_loss(
        logprobs, None, reference, torch.zeros(3), mask, 3, with_kl, is_weights=weights
    )
    assert float(kl_only.detach()) == pytest.approx(0.0)  # KL(pi || pi) = 0, whatever the weights


def _completion(ids: list[int], logprobs: list[float] | None) -> Completion:
    return Completion(text="x", token_ids=ids, logprobs=logprobs)


def _sample(i: int) -> TaskSample:
    return TaskSample(
        id=f"s{i}", task_type="mc", question="q", answers=["A"], answer_kind="choice", context="c"
    )


def test_the_engines_log_probs_land_on_their_response_tokens() -> None:
    trajectories = [
        [[StepSequence([1, 2], _completion([5, 6, 7], [-0.1, -0.2, -0.3]))]],
        [[StepSequence([3], _completion([8], [-0.4]))]],
    ]
    batch = RolloutBatch.from_trajectories([_sample(0), _sample(1)], trajectories)
    values = batch.rollout_logprobs
    assert values is not None
    assert values[batch.packed.loss_mask.bool()].tolist() == pytest.approx([-0.1, -0.2, -0.3, -0.4])
    assert values[~batch.packed.loss_mask.bool()].isnan().all()
    trajectories[1][0][0].completion.logprobs = None  # one engine answer without log-probs
    assert (
        RolloutBatch.from_trajectories([_sample(0), _sample(1)], trajectories).rollout_logprobs
        is None
    )


def test_policy_update_weights_tokens_only_when_the_cap_is_set() -> None:
    packed = PackedBatch.from_sequences([[1, 2], [3]], [[5, 6], [7]])
    mask = packed.loss_mask.bool()
    stats = TokenStats(
        logprobs=torch.tensor([0, 0, math.log(4.0), 0, 0, 0.0]), entropy=torch.ones(6)
    )
    engine = torch.where(mask, torch.zeros(6), torch.full((6,), NAN))
    advantages = torch.tensor([1.0, -1.0])
    aepo = AepoController(AepoConfig(enabled=False))
    base = {"model": "m", "data": {"train": ["d.parquet"]}, "steps": 1}
    off = policy_update(packed, advantages, stats, aepo, TrainConfig(**base), None, engine)
    assert off.is_weights is None
    on_config = TrainConfig(**base, rollout_correction={"tis_cap": 2.0})
    on = policy_update(packed, advantages, stats, aepo, on_config, None, engine)
    assert on.is_weights is not None
    assert on.is_weights[mask].tolist() == pytest.approx([2.0, 1.0, 1.0])  # exp(log 4) capped
    assert on.select(torch.tensor([3, 4, 5])).is_weights.tolist() == pytest.approx([1.0] * 3)
