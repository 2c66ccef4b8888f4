"""Per-step metrics on a hand-made batch, the timing split, and the learning-curve plots."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

from qwenlong.core.records import Completion, TaskSample
from qwenlong.rl.interfaces import StepStats
from qwenlong.rl.metrics import PhaseTimer, plot_learning_curves, step_metrics, timing_metrics
from qwenlong.rl.rollout.batch import RolloutBatch, StepSequence


def _batch() -> RolloutBatch:
    samples = [
        TaskSample(id="r", task_type="reading", question="q", answers=["a"]),
        TaskSample(id="m", task_type="mc", question="q", answers=["A"]),
    ]
    groups = [
        [Completion("x", [1, 2]), Completion("y", [3], finish_reason="length")],
        [Completion("z", [4, 5, 6]), Completion("w", [7, 8, 9, 10])],
    ]
    prompts = [[50], [60, 61]]
    trajectories = [[[StepSequence(prompts[b], c)] for c in g] for b, g in enumerate(groups)]
    return RolloutBatch.from_trajectories(samples, trajectories)


def test_step_metrics_by_hand() -> None:
    batch = _batch()
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5])
    correct = torch.tensor([True, False, False, False])
    advantages = torch.tensor([1.0, -1.0, 0.0, 0.0])
    token_mask = batch.packed.loss_mask.clone()
    token_mask[3:5] = False  # sequence 1 (prompt 50, response [3]) dropped
    train = StepStats(loss=0.25, grad_norm=3.0, tokens=15, loss_tokens=9, extra={"kl": 0.1})
    record = step_metrics(batch, rewards, correct, advantages, token_mask, 0.2, train)
    assert record["reward_mean"] == 0.5
    assert record["reward/reading"] == 0.5 and record["reward/mc"] == 0.5
    assert record["accuracy"] == 0.25
    assert record["accuracy/reading"] == 0.5 and record["accuracy/mc"] == 0.0
    assert record["kept_samples"] == 3 and record["sequences"] == 4
    assert record["loss_tokens"] == 9 and record["response_tokens"] == 10
    assert record["response_length"] == 2.5 and record["response_length_max"] == 4
    assert record["truncated_frac"] == 0.25
    assert record["zero_variance_groups"] == 0.5
    assert record["advantage_abs_mean"] == 0.5 and record["negative_frac"] == 0.25
    assert record["entropy"] == 0.2
    assert (record["loss"], record["grad_norm"], record["train/kl"]) == (0.25, 3.0, 0.1)
    assert record["tokens"] == batch.packed.num_tokens == 3 + 2 + 5 + 6
    assert record["reward_std"] == pytest.approx(torch.tensor([1.0, 0.0, 0.5, 0.5]).std().item())


def test_untrained_step_reports_no_loss() -> None:
    batch = _batch()
    zeros = torch.zeros(4)
    record = step_metrics(
        batch, zeros, zeros.bool(), zeros, torch.zeros_like(batch.packed.loss_mask), 0.0, None
    )
    assert record["loss"] is None and record["grad_norm"] is None
    assert record["kept_samples"] == 0 and record["zero_variance_groups"] == 1.0


def test_timer_splits_phases_and_tokens_per_second() -> None:
    timer = PhaseTimer()
    with timer.phase("generate"):
        time.sleep(0.02)
    with timer.phase("train"):
        time.sleep(0.01)
    with timer.phase("train"):
        time.sleep(0.01)
    record = timing_metrics(timer, tokens=1000)
    assert record["time_generate"] >= 0.02 and record["time_train"] >= 0.02
    assert record["time_score"] == 0.0 and record["time_sync"] == 0.0
    assert record["time_step"] >= record["time_generate"] + record["time_train"]
    assert record["tokens_per_s"] == pytest.approx(1000 / record["time_step"])
    assert record["train_tokens_per_s"] == pytest.approx(1000 / record["time_train"])


def test_plots_cover_the_metrics_present(tmp_path: Path) -> None:
    records = [
        {"step": 0, "heldout_reward": 0.2, "heldout_reward_stderr": 0.05},
        {"step": 1, "reward_mean": 0.1, "reward/mc": 0.2, "entropy": 1.0, "aepo_active": True},
        {"step": 2, "reward_mean": 0.3, "reward/mc": None, "entropy": math.nan},
        {"step": 2, "heldout_reward": 0.4, "heldout_reward_stderr": 0.05},
    ]
    written = plot_learning_curves(records, tmp_path / "plots")
    names = sorted(p.stem for p in written)
    assert names == ["entropy", "heldout_reward", "reward"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert plot_learning_curves([], tmp_path / "empty") == []


def test_the_reward_rules_decisions_are_shares_of_the_responses() -> None:
    from qwenlong.rl.interfaces import RewardResult
    from qwenlong.rl.metrics import decision_metrics

    decided = ["rule", "judge", "rule", "overlong", "no_think", "pending", "rule", "judge"]
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0])
    scored = RewardResult(rewards, rewards > 0, [{"decided_by": d} for d in decided])
    truncated = torch.tensor([True, False, True, False, False, False, False, False])
    figures = decision_metrics(scored, truncated, torch.zeros(8))
    assert figures == {
        "decision/paid_by_rule": 2 / 8,
        "decision/paid_by_judge": 1 / 8,
        "decision/refused_overlong": 1 / 8,
        "decision/refused_no_think": 1 / 8,
        "decision/judge_pending": 1 / 8,
        "decision/truncated": 2 / 8,
        "decision/truncated_paid": 1 / 8,  # the first: cut at the limit and still paid
    }
    penalised = decision_metrics(scored, truncated, torch.tensor([-0.5] + [0.0] * 7))
    assert penalised["overlong_penalty_mean"] == pytest.approx(-0.5 / 8)
