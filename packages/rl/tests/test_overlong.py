"""DAPO's overlong handling (qwenlong.rl.overlong) on hand-made cases: the soft punishment's
ramp, rewards shaped only when configured, and truncated responses filtered out of the loss
and of its token count."""

from __future__ import annotations

import pytest
import torch

from qwenlong.rl.aepo import AepoConfig, AepoController
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import PackedBatch, TokenStats
from qwenlong.rl.overlong import OverlongConfig, shaped_rewards, soft_overlong_penalty
from qwenlong.rl.updates import policy_update


def test_the_soft_penalty_ramps_over_the_buffer_to_minus_the_penalty_at_the_limit() -> None:
    lengths = torch.tensor([10, 16, 17, 18, 20])
    # Limit 20, buffer 4: free up to 16 tokens, then -1/4 per token, -1 at the limit.
    assert soft_overlong_penalty(lengths, 20, 4).tolist() == [0.0, 0.0, -0.25, -0.5, -1.0]
    assert soft_overlong_penalty(lengths, 20, 4, penalty=0.5).tolist()[-1] == -0.5
    assert soft_overlong_penalty(torch.tensor([0, 5]), 10, 50).tolist() == [0.0, -0.5]


def test_rewards_are_shaped_only_with_a_buffer() -> None:
    rewards, lengths = torch.tensor([1.0, 1.0]), torch.tensor([4, 8])
    assert torch.equal(shaped_rewards(rewards, lengths, 8, OverlongConfig()), rewards)
    shaped = shaped_rewards(rewards, lengths, 8, OverlongConfig(soft_buffer=2))
    assert shaped.tolist() == pytest.approx([1.0, 0.0])


def test_filtered_truncated_responses_neither_train_nor_count() -> None:
    packed = PackedBatch.from_sequences([[1], [1], [1]], [[5, 6], [7, 8, 9], [10]])
    stats = TokenStats(torch.zeros(packed.num_tokens), torch.zeros(packed.num_tokens))
    advantages = torch.tensor([1.0, -1.0, 0.5])
    truncated = torch.tensor([False, True, False])
    aepo = AepoController(AepoConfig(enabled=False))
    base = {"model": "m", "data": {"train": ["d.parquet"]}, "steps": 1}
    kept = policy_update(packed, advantages, stats, aepo, TrainConfig(**base), truncated=truncated)
    assert kept.global_tokens == 6 and int(kept.token_mask.sum()) == 6
    config = TrainConfig(**base, overlong={"filter_truncated": True})
    filtered = policy_update(packed, advantages, stats, aepo, config, truncated=truncated)
    assert not filtered.token_mask[packed.token_positions([1])].any()
    assert filtered.global_tokens == 3  # 2 + 1: the truncated answer's 3 tokens do not count
