"""Difficulty balancing: equal counts per pass-rate bin, per task type, reproducibly."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError

from qwenlong.core.records import TaskSample
from qwenlong.synth.difficulty import bin_index
from qwenlong.synth.filter import BalanceConfig, balance_by_difficulty


def sample(sid: str, rate: float | None, task: str = "multihop") -> TaskSample:
    meta = {} if rate is None else {"pass_rate": repr(rate)}
    return TaskSample(id=sid, task_type=task, question="q", answers=["a"], meta=meta)


def test_bins_are_right_closed_and_the_first_holds_zero() -> None:
    edges = [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [bin_index(r, edges) for r in (0.0, 0.125, 0.25, 0.375, 0.5, 0.875, 1.0)] == [
        0,
        0,
        0,
        1,
        1,
        3,
        3,
    ]


def test_every_bin_keeps_the_smallest_bins_count() -> None:
    # bins (0,.25]: 6, (.25,.5]: 3, (.5,.75]: 2, (.75,1]: 5  -> quota 2 per bin
    rates = [0.125] * 6 + [0.5] * 3 + [0.625] * 2 + [1.0] * 5
    samples = [sample(f"s{i}", r) for i, r in enumerate(rates)]
    result = balance_by_difficulty(samples, BalanceConfig(), random.Random(0))
    assert result.bins_before == {"multihop": [6, 3, 2, 5]}
    assert result.bins_after == {"multihop": [2, 2, 2, 2]}
    kept_bins = Counter(
        bin_index(float(s.meta["pass_rate"]), [0, 0.25, 0.5, 0.75, 1]) for s in result.kept
    )
    assert kept_bins == {0: 2, 1: 2, 2: 2, 3: 2}
    assert len(result.drops) == 8 and {d.reason for d in result.drops} == {"unbalanced"}
    ids = [s.id for s in result.kept]
    assert ids == sorted(ids, key=lambda s: int(s[1:]))  # input order kept


def test_empty_bins_do_not_empty_the_task_and_per_bin_caps() -> None:
    samples = [sample(f"a{i}", 1.0) for i in range(5)] + [sample(f"b{i}", 0.25) for i in range(2)]
    smallest = balance_by_difficulty(samples, BalanceConfig(), random.Random(0))
    assert smallest.bins_after == {"multihop": [2, 0, 0, 2]}
    capped = balance_by_difficulty(samples, BalanceConfig(per_bin=3), random.Random(0))
    assert capped.bins_after == {"multihop": [2, 0, 0, 3]}


def test_task_types_balance_separately_unless_overall() -> None:
    samples = [sample(f"m{i}", 0.25, "mc") for i in range(4)]
    samples += [sample(f"n{i}", 1.0, "numerical") for i in range(3)]
    samples += [sample("n_low", 0.25, "numerical")]
    per_task = balance_by_difficulty(samples, BalanceConfig(), random.Random(0))
    assert per_task.bins_after == {"mc": [4, 0, 0, 0], "numerical": [1, 0, 0, 1]}
    overall = balance_by_difficulty(samples, BalanceConfig(group_by="overall"), random.Random(0))
    assert overall.bins_after == {"all": [3, 0, 0, 3]}


def test_unverified_samples_pass_through() -> None:
    samples = [sample("u", None), sample("a", 0.5), sample("b", 0.5), sample("c", 1.0)]
    result = balance_by_difficulty(samples, BalanceConfig(num_bins=2), random.Random(1))
    assert "u" in [s.id for s in result.kept] and len(result.kept) == 3
    only_unverified = balance_by_difficulty([sample("u", None)], BalanceConfig(), random.Random(0))
    assert only_unverified.mode == "skipped (no verified pass rates)"


def test_same_seed_same_choice_other_seed_other_choice() -> None:
    samples = [sample(f"s{i}", 0.25) for i in range(20)] + [sample("top", 1.0)]

    def kept(seed: int) -> list[str]:
        return [
            s.id for s in balance_by_difficulty(samples, BalanceConfig(), random.Random(seed)).kept
        ]

    assert kept(3) == kept(3)
    assert len({tuple(kept(seed)) for seed in range(5)}) > 1


def test_bin_edges_must_span_zero_to_one_increasing() -> None:
    assert BalanceConfig(bin_edges=[0, 0.5, 1]).edges() == [0, 0.5, 1]
    assert BalanceConfig(num_bins=5).edges() == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    with pytest.raises(ValidationError, match="run from 0 to 1"):
        BalanceConfig(bin_edges=[0.1, 1])
    with pytest.raises(ValidationError, match="increase strictly"):
        BalanceConfig(bin_edges=[0, 0.6, 0.5, 1])
