"""Splitting a packed batch across data-parallel ranks, summing rank stats, and the bucketed
gradient all-reduce (over a one-rank gloo group: the sum of one rank is itself)."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist

from qwenlong.core.errors import ConfigError
from qwenlong.rl.data_parallel import all_reduce_gradients, split_for_ranks
from qwenlong.rl.interfaces import PackedBatch, StepStats


def _batch(lengths: list[int]) -> PackedBatch:
    """Sequences of the given lengths: a one-token prompt and the rest response."""
    return PackedBatch.from_sequences(
        [[1]] * len(lengths), [[2] * (length - 1) for length in lengths]
    )


def test_split_balances_tokens_by_longest_first() -> None:
    # Lengths 8,7,6,5,4: 8 -> r0, 7 -> r1, 6 -> r1 (7 < 8), 5 -> r0 (8 < 13), 4 -> r0 (13 = 13,
    # the lowest rank wins the tie): r0 = {0, 3, 4} = 17 tokens, r1 = {1, 2} = 13 tokens.
    parts = split_for_ranks(_batch([8, 7, 6, 5, 4]), 2)
    assert parts == [[0, 3, 4], [1, 2]]


def test_split_uses_every_sequence_once_and_keeps_batch_order() -> None:
    lengths = [3, 11, 2, 9, 9, 4, 17, 5, 6, 2]
    for world in (1, 2, 3, 4):
        parts = split_for_ranks(_batch(lengths), world)
        assert len(parts) == world
        assert sorted(s for part in parts for s in part) == list(range(len(lengths)))
        assert all(part == sorted(part) for part in parts)
        loads = [sum(lengths[s] for s in part) for part in parts]
        # LPT bound: no rank exceeds the mean load plus the longest sequence.
        assert max(loads) <= sum(lengths) / world + max(lengths)


def test_split_with_more_ranks_than_sequences_leaves_ranks_empty() -> None:
    assert split_for_ranks(_batch([4, 6]), 3) == [[1], [0], []]


def test_split_rejects_zero_ranks() -> None:
    with pytest.raises(ConfigError, match="world_size must be >= 1"):
        split_for_ranks(_batch([3]), 0)


def test_merge_step_stats_sums_contributions_and_takes_rank0_norm() -> None:
    merged = StepStats.sum_over_ranks(
        [
            StepStats(0.25, 1.5, 10, 4, {"pg_loss": 0.25, "ratio_mean": 0.4}),
            StepStats(-0.5, 1.5, 7, 6, {"pg_loss": -0.5, "ratio_mean": 0.6, "kl": 0.1}),
        ]
    )
    assert merged.loss == pytest.approx(-0.25)
    assert merged.grad_norm == 1.5
    assert (merged.tokens, merged.loss_tokens) == (17, 10)
    assert merged.extra == pytest.approx({"pg_loss": -0.25, "ratio_mean": 1.0, "kl": 0.1})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_all_reduce_gradients_buckets_mixed_dtypes_and_restores_shapes() -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    try:
        grads = [
            torch.arange(6.0).view(2, 3),
            torch.ones(4, dtype=torch.float64),
            torch.full((5,), 2.0),
        ]
        expected = [grad.clone() for grad in grads]
        # A 16-byte bucket forces a flush between every tensor.
        all_reduce_gradients(grads, None, bucket_bytes=16)
        for grad, want in zip(grads, expected, strict=True):
            assert grad.shape == want.shape and grad.dtype == want.dtype
            assert torch.equal(grad, want)
    finally:
        dist.destroy_process_group()
