"""Micro-batch planning: the padded token budget, row limits, the wanted-sequence filter, and
equal micro-batch counts across ranks."""

from __future__ import annotations

import torch

from qwenlong.rl.interfaces import PackedBatch
from qwenlong.rl.micro_batches import MicroBatchPlanner, equal_counts, plan_padded


def test_micro_batches_respect_the_padded_token_budget() -> None:
    # Longest first: 6 alone would pad 6x2 = 12 > 10 with 5, so [6]; [5, 4] = 2x5 = 10 fits,
    # adding 3 would be 3x5 = 15 > 10; [3, 2, 1] = 3x3 = 9.
    assert plan_padded([1, 5, 3, 6, 2, 4], max_tokens=10, max_sequences=None) == [
        [3],
        [1, 5],
        [2, 4, 0],
    ]


def test_micro_batches_row_limit_and_oversized_sequence() -> None:
    assert plan_padded([2, 2, 2, 2, 2], max_tokens=None, max_sequences=2) == [
        [0, 1],
        [2, 3],
        [4],
    ]
    # A sequence longer than the budget runs alone instead of failing.
    assert plan_padded([50, 3, 3], max_tokens=8, max_sequences=None) == [[0], [1, 2]]
    assert plan_padded([], max_tokens=8, max_sequences=None) == []


def test_micro_batches_without_limits_is_one_batch() -> None:
    assert plan_padded([3, 1, 2], max_tokens=None, max_sequences=None) == [[0, 2, 1]]


def test_the_planner_skips_sequences_without_a_wanted_token() -> None:
    batch = PackedBatch.from_sequences([[1], [1], [1]], [[2, 2], [2, 2, 2, 2], [2]])
    wanted = batch.loss_mask.clone()
    wanted[batch.token_positions([1])] = False
    planner = MicroBatchPlanner(max_tokens=6, max_sequences=None)
    assert planner.plan(batch) == [[1], [0, 2]]
    assert planner.plan(batch, wanted) == [[0, 2]]
    assert planner.plan(batch, torch.zeros(batch.num_tokens, dtype=torch.bool)) == []


def test_equal_counts_pads_every_rank_to_the_longest_plan() -> None:
    assert equal_counts([[[0], [1, 2]], [], [[3]]]) == [[[0], [1, 2]], [[], []], [[3], []]]
    assert equal_counts([[], []]) == [[[]], [[]]]
