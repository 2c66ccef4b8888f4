"""Task-balanced sampler: shares, rotation, per-task epochs, exact resume, bad datasets."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.records import TASK_TYPES, TaskSample
from qwenlong.rl.sampler import SamplerConfig, TaskBalancedSampler


def make(counts: dict[str, int]) -> list[TaskSample]:
    return [
        TaskSample(id=f"{task}-{i}", task_type=task, question="q", answers=["a"])
        for task, n in counts.items()
        for i in range(n)
    ]


FIVE = {"mc": 7, "multihop": 11, "reading": 40, "dialogue_memory": 3, "numerical": 5}


def ids(batch: list[TaskSample]) -> list[str]:
    return [s.id for s in batch]


def test_remainder_rotates_so_every_task_gets_equal_totals() -> None:
    sampler = TaskBalancedSampler(make(FIVE), SamplerConfig(batch_size=12), seed=0)
    # 12 = 5 * 2 + 2: batch k gives the two extra slots to tasks (2k) mod 5 and (2k + 1) mod 5,
    # counting in config order mc, multihop, reading, dialogue_memory, numerical.
    assert [sampler.shares(k)["mc"] for k in range(5)] == [3, 2, 3, 2, 2]
    assert [sampler.shares(k)["reading"] for k in range(5)] == [2, 3, 2, 3, 2]
    assert [sampler.shares(k)["numerical"] for k in range(5)] == [2, 2, 3, 2, 3]
    totals: Counter[str] = Counter()
    for _ in range(5):
        batch = sampler.next_batch()
        assert len(batch) == 12
        totals.update(s.task_type for s in batch)
    assert totals == {task: 12 for task in TASK_TYPES}


def test_even_batch_has_exact_shares() -> None:
    sampler = TaskBalancedSampler(make(FIVE), SamplerConfig(batch_size=10), seed=3)
    for _ in range(4):
        assert Counter(s.task_type for s in sampler.next_batch()) == {t: 2 for t in TASK_TYPES}


def test_each_task_stream_covers_its_samples_once_per_epoch() -> None:
    # One prompt per task per batch, so each task's draws keep their stream order.
    sampler = TaskBalancedSampler(make(FIVE), SamplerConfig(batch_size=5), seed=1)
    drawn: dict[str, list[str]] = {t: [] for t in TASK_TYPES}
    for _ in range(42):
        for sample in sampler.next_batch():
            drawn[sample.task_type].append(sample.id)
    for task, n in FIVE.items():
        epochs = [drawn[task][e * n : (e + 1) * n] for e in range(42 // n)]
        for epoch in epochs:
            assert sorted(epoch) == sorted(f"{task}-{i}" for i in range(n))
        if len(epochs) > 1:
            assert len({tuple(e) for e in epochs}) > 1  # reshuffled, not replayed
    assert sampler.epochs()["dialogue_memory"] == 14.0
    assert sampler.epochs()["reading"] == pytest.approx(42 / 40)


def test_batch_order_is_shuffled_across_tasks() -> None:
    sampler = TaskBalancedSampler(make(FIVE), SamplerConfig(batch_size=10), seed=0)
    orders = [[s.task_type for s in sampler.next_batch()] for _ in range(5)]
    grouped = [t for t in TASK_TYPES for _ in range(2)]
    assert any(order != grouped for order in orders)
    assert len({tuple(o) for o in orders}) > 1


def test_resume_yields_the_uninterrupted_batches() -> None:
    data = make(FIVE)
    config = SamplerConfig(batch_size=12)
    straight = TaskBalancedSampler(data, config, seed=7)
    expected = [ids(straight.next_batch()) for _ in range(9)]

    first = TaskBalancedSampler(data, config, seed=7)
    head = [ids(first.next_batch()) for _ in range(4)]
    state = json.loads(json.dumps(first.state_dict()))
    resumed = TaskBalancedSampler(data, config, seed=7)
    resumed.load_state_dict(state)
    tail = [ids(resumed.next_batch()) for _ in range(5)]
    assert head + tail == expected


def test_seed_changes_the_sequence_and_is_reproducible() -> None:
    data = make(FIVE)
    config = SamplerConfig(batch_size=10)
    a = [ids(TaskBalancedSampler(data, config, seed=1).next_batch()) for _ in range(2)]
    b = ids(TaskBalancedSampler(data, config, seed=2).next_batch())
    assert a[0] == a[1]
    assert a[0] != b


def test_unbalanced_is_a_plain_shuffle_over_all_samples() -> None:
    data = make({"mc": 4, "reading": 16})
    config = SamplerConfig(batch_size=5, tasks=("mc", "reading"), balanced=False)
    sampler = TaskBalancedSampler(data, config, seed=0)
    epoch = [s.id for _ in range(4) for s in sampler.next_batch()]
    assert sorted(epoch) == sorted(s.id for s in data)  # 20 draws: every sample exactly once
    assert Counter(i.split("-")[0] for i in epoch) == {"mc": 4, "reading": 16}
    assert sampler.epochs() == {"__all__": 1.0}


def test_missing_task_is_named_with_the_counts_per_task() -> None:
    data = make({"mc": 3, "reading": 5, "multihop": 2, "numerical": 1})
    with pytest.raises(DatasetError) as err:
        TaskBalancedSampler(data, SamplerConfig(batch_size=8), seed=0, source="train.parquet")
    message = str(err.value)
    assert "train.parquet" in message and "dialogue_memory" in message
    assert "mc=3, multihop=2, numerical=1, reading=5" in message
    assert "\n" not in message


def test_missing_task_can_be_skipped() -> None:
    data = make({"mc": 3, "reading": 5})
    config = SamplerConfig(batch_size=4, missing_tasks="skip")
    sampler = TaskBalancedSampler(data, config, seed=0)
    assert sampler.tasks == ["mc", "reading"]
    assert Counter(s.task_type for s in sampler.next_batch()) == {"mc": 2, "reading": 2}


def test_unlisted_tasks_are_an_error_or_dropped() -> None:
    data = make({"mc": 2, "reading": 2, "mystery": 3})
    config = SamplerConfig(batch_size=4, tasks=("mc", "reading"))
    with pytest.raises(DatasetError, match="mystery"):
        TaskBalancedSampler(data, config, seed=0)
    dropping = config.model_copy(update={"unlisted_tasks": "drop"})
    batch = TaskBalancedSampler(data, dropping, seed=0).next_batch()
    assert {s.task_type for s in batch} == {"mc", "reading"}


def test_empty_dataset_is_an_error() -> None:
    with pytest.raises(DatasetError, match="empty"):
        TaskBalancedSampler([], SamplerConfig(), seed=0, source="d.parquet")


def test_batch_smaller_than_task_count_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="batch_size 3 is smaller than the 5 tasks"):
        load_config_dict({"batch_size": 3}, SamplerConfig, "exp.yaml")
    plain = load_config_dict({"batch_size": 3, "balanced": False}, SamplerConfig, "exp.yaml")
    assert plain.batch_size == 3


def test_state_from_another_dataset_or_setup_is_refused() -> None:
    config = SamplerConfig(batch_size=10)
    state = TaskBalancedSampler(make(FIVE), config, seed=0).state_dict()
    other = TaskBalancedSampler(make({**FIVE, "mc": 8}), config, seed=0)
    with pytest.raises(DatasetError, match="different dataset"):
        other.load_state_dict(state)
    bigger = TaskBalancedSampler(make(FIVE), SamplerConfig(batch_size=15), seed=0)
    with pytest.raises(ConfigError, match="batch_size was 10, now 15"):
        bigger.load_state_dict(state)
