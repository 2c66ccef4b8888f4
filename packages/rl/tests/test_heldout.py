"""The held-out split is fixed by ids alone; its evaluation is the training reward's mean and
standard error."""

from __future__ import annotations

import math
import random

import pytest

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.core.testing import EchoChatModel
from qwenlong.rl.heldout import (
    evaluate_heldout,
    hash_unit,
    heldout_sampling,
    heldout_subset,
    remove_ids,
    split_heldout,
)
from qwenlong.rl.rewards import RewardConfig, RewardFn
from qwenlong.rl.stages import StageConfig


def samples(n: int) -> list[TaskSample]:
    return [
        TaskSample(id=f"id-{i}", task_type="reading", question="q", answers=[f"k{i}"])
        for i in range(n)
    ]


def test_split_depends_on_ids_not_order() -> None:
    pool = samples(1000)
    train, held = split_heldout(pool, 0.2)
    assert len(train) + len(held) == 1000 and 150 < len(held) < 250
    assert all(hash_unit(s.id) < 0.2 for s in held)
    shuffled = pool[:]
    random.Random(0).shuffle(shuffled)
    assert {s.id for s in split_heldout(shuffled, 0.2)[1]} == {s.id for s in held}
    grown = split_heldout(pool + samples(1200)[1000:], 0.2)[1]
    assert {s.id for s in held} <= {s.id for s in grown}  # new data never moves old samples
    assert split_heldout(pool, 0.0)[1] == []


def test_subset_is_the_first_ids_in_hash_order() -> None:
    pool = samples(50)
    first = heldout_subset(pool, 10)
    assert len(first) == 10
    assert heldout_subset(list(reversed(pool)), 10) == first
    assert max(hash_unit(s.id) for s in first) < min(
        hash_unit(s.id) for s in pool if s not in first
    )
    assert len(heldout_subset(pool, 80)) == 50


def test_remove_ids_keeps_training_away_from_a_separate_heldout_file() -> None:
    pool = samples(5)
    assert [s.id for s in remove_ids(pool, pool[1:3])] == ["id-0", "id-3", "id-4"]


def test_evaluation_reports_mean_and_standard_error() -> None:
    held = samples(3)
    replies = ["Therefore, the answer is k0.", "Therefore, the answer is k1.", "It is zz."]
    conversations = [[{"role": "user", "content": text}] for text in replies]
    sampling = SamplingParams(max_new_tokens=100, temperature=0.0, stop=("#",))
    result = evaluate_heldout(
        EchoChatModel(), RewardFn(RewardConfig()), held, conversations, sampling
    )
    assert result.mean == pytest.approx(2 / 3)
    assert result.stderr == pytest.approx(math.sqrt(1 / 3) / math.sqrt(3))
    assert (result.count, result.accuracy) == (3, pytest.approx(2 / 3))
    assert result.by_task == {"reading": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="one response per prompt"):
        evaluate_heldout(
            EchoChatModel(), RewardFn(RewardConfig()), held, conversations, SamplingParams(n=2)
        )


def test_heldout_sampling_is_greedy_at_zero_temperature() -> None:
    stage = StageConfig(name="s", steps=1, max_input_tokens=100, max_output_tokens=7)
    greedy = heldout_sampling(0.0, 0.95, stage, seed=5)
    assert (greedy.temperature, greedy.top_p, greedy.n, greedy.max_new_tokens) == (0.0, 1.0, 1, 7)
    assert heldout_sampling(0.7, 0.95, stage, seed=5).top_p == 0.95
