"""Advantage estimators on hand-computed batches."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from qwenlong.core.errors import ConfigError
from qwenlong.rl.advantages import ADVANTAGES, AdvantageConfig, compute_advantages

torch.set_num_threads(1)


def _adv(estimator: str, rewards: list[float], groups: list[int], tasks: list[int]) -> list[float]:
    result = compute_advantages(
        torch.tensor(rewards),
        torch.tensor(groups),
        torch.tensor(tasks),
        AdvantageConfig(estimator=estimator),
    )
    assert result.dtype == torch.float32
    return result.tolist()


def test_grpo_divides_by_the_unbiased_group_std() -> None:
    # Group 0: rewards 1,0,0,1: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735.
    # Group 1: all equal: advantage 0 (not 0/0).
    got = _adv("grpo", [1, 0, 0, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1, 1, 1], [0] * 8)
    a = 0.5 / (math.sqrt(1 / 3) + 1e-6)
    assert got == pytest.approx([a, -a, -a, a, 0, 0, 0, 0], rel=1e-6)


def test_grpo_accepts_arbitrary_group_ids() -> None:
    # Group 7: 1,0 (std sqrt(.5)); group -3: .2,.4 (std sqrt(.02)): both give +-1/sqrt(2).
    got = _adv("grpo", [1, 0, 0.2, 0.4], [7, 7, -3, -3], [0, 0, 0, 0])
    assert got == pytest.approx([0.70711, -0.70711, -0.70711, 0.70711], rel=1e-4)


def test_task_std_uses_the_spread_of_the_whole_task() -> None:
    rewards = [1, 0, 1, 1, 0.2, 0.4, 0.6, 0.8, 0.7]
    groups = [0, 0, 1, 1, 2, 2, 3, 3, 4]
    tasks = [0, 0, 0, 0, 1, 1, 1, 1, 2]
    got = _adv("grpo_task_std", rewards, groups, tasks)
    # Task 0 (binary): rewards 1,0,1,1: mean 0.75, squares .0625+.5625+.0625+.0625 = .75,
    # unbiased variance .25, std 0.5. Group means 0.5 and 1.
    t0 = 0.5 / (0.5 + 1e-6)
    # Task 1 (dense): .2,.4,.6,.8: mean .5, squares .09+.01+.01+.09 = .2, variance .2/3.
    # Group means .3 and .7, so every deviation is +-0.1.
    t1 = 0.1 / (math.sqrt(0.2 / 3) + 1e-6)
    # Task 2 holds one response: std 0 by definition, deviation from its group 0.
    assert got == pytest.approx([t0, -t0, 0, 0, -t1, t1, -t1, t1, 0], rel=1e-5, abs=1e-7)


def test_task_std_differs_from_group_std_on_dense_rewards() -> None:
    # A dense group whose answers differ by 0.2: Eq.3 blows it up to +-0.707 of unit scale;
    # Eq.7 keeps it small relative to the task's full 0..1 spread.
    rewards = [0.4, 0.6, 0.0, 1.0]
    groups, tasks = [0, 0, 1, 1], [0, 0, 0, 0]
    group_std = _adv("grpo", rewards, groups, tasks)
    task_std = _adv("grpo_task_std", rewards, groups, tasks)
    assert group_std[:2] == pytest.approx([-0.7071, 0.7071], abs=1e-4)
    assert group_std[2:] == pytest.approx([-0.7071, 0.7071], abs=1e-4)
    # Task: mean .5, squares .01+.01+.25+.25 = .52, variance .52/3, std 0.41633.
    spread = math.sqrt(0.52 / 3)
    assert task_std == pytest.approx(
        [-0.1 / spread, 0.1 / spread, -0.5 / spread, 0.5 / spread], rel=1e-5
    )


def test_batch_std_divides_by_the_std_of_every_reward() -> None:
    # Batch 1,0,.5,.5: mean .5, squares .25+.25 = .5, variance 1/6.
    got = _adv("grpo_batch_std", [1, 0, 0.5, 0.5], [0, 0, 1, 1], [0, 0, 1, 1])
    a = 0.5 / (math.sqrt(1 / 6) + 1e-6)
    assert got == pytest.approx([a, -a, 0, 0], rel=1e-6)


@pytest.mark.parametrize("estimator", ["grpo", "grpo_batch_std", "grpo_task_std"])
def test_every_group_sums_to_zero_and_a_lone_response_gets_zero(estimator: str) -> None:
    generator = torch.Generator().manual_seed(0)
    rewards = torch.rand(25, generator=generator)
    groups = torch.arange(25) // 4  # six groups of 4 and a last group of one
    tasks = groups % 3
    got = compute_advantages(rewards, groups, tasks, AdvantageConfig(estimator=estimator))
    for group in groups.unique():
        assert float(got[groups == group].sum()) == pytest.approx(0.0, abs=1e-5)
    assert float(got[-1]) == 0.0


def test_task_std_is_invariant_to_the_reward_scale_of_a_task() -> None:
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.3, 0.1, 0.9, 0.4])
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    tasks = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    config = AdvantageConfig()
    base = compute_advantages(rewards, groups, tasks, config)
    scaled = rewards.clone()
    scaled[tasks == 1] *= 10
    assert torch.allclose(compute_advantages(scaled, groups, tasks, config), base, atol=1e-5)


def test_paper_defaults() -> None:
    config = AdvantageConfig()
    assert config.estimator == "grpo_task_std"
    assert config.eps == 1e-6
    assert set(ADVANTAGES.names()) == {"grpo", "grpo_batch_std", "grpo_task_std"}


def test_unknown_estimator_is_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"known: .*grpo_task_std"):
        AdvantageConfig(estimator="grpo_task")
    with pytest.raises(ConfigError, match="did you mean 'grpo_task_std'"):
        ADVANTAGES.get("grpo_task")


def test_bad_inputs_are_rejected_before_computing() -> None:
    config = AdvantageConfig()
    ids = torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match="reward 1 is nan"):
        compute_advantages(torch.tensor([1.0, float("nan"), 0.0]), ids, ids, config)
    with pytest.raises(ValueError, match="group_ids shape"):
        compute_advantages(torch.tensor([1.0, 0.0]), ids, ids[:2], config)
    with pytest.raises(ValueError, match="task_ids must be integer"):
        compute_advantages(torch.ones(3), ids, ids.float(), config)
