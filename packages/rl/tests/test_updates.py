"""Which tokens train and what the loss divides by (qwenlong.rl.updates), on hand-made batches:
masked tokens stop contributing but keep counting (Eq.8-9's 1 / sum_j |y_j|), the earlier
"kept" count as a named option, AEPO's two ways of choosing samples, H(B) as a sequence or a
token mean, and the per-group normaliser of Eq.4 through the mini-batch path."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from qwenlong.rl.aepo import AepoConfig, AepoController, batch_entropy
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate, StepStats, TokenStats
from qwenlong.rl.updates import policy_update, update_policy

BASE: dict[str, Any] = {"model": "m", "data": {"train": ["d.parquet"]}, "steps": 1}


def _batch() -> tuple[PackedBatch, TokenStats]:
    """Four answers (1, 2, 3 and 2 response tokens) of two prompts; answer 1's second token is
    uncertain (entropy 2.0), every other token is confident (0.1)."""
    packed = PackedBatch.from_sequences([[1], [1], [2], [2]], [[5], [6, 7], [8, 9, 10], [11, 12]])
    entropy = torch.full((packed.num_tokens,), 0.1)
    entropy[4] = 2.0  # sequence 1's second response token (positions: 0 1 | 2 3 4 | 5 ...)
    return packed, TokenStats(torch.zeros(packed.num_tokens), entropy)


def _config(**overrides: Any) -> TrainConfig:
    return TrainConfig(**BASE, **overrides)


def _aepo(active: bool, **config: Any) -> AepoController:
    controller = AepoController(AepoConfig(entropy_low=0.5, entropy_high=1.0, **config))
    controller.update(2.0 if active else 0.0)
    return controller


ADVANTAGES = torch.tensor([1.0, -1.0, 0.0, -0.5])


def test_clipped_tokens_stop_training_but_keep_counting_by_default() -> None:
    packed, stats = _batch()
    clip = {"negative_clip": {"mode": "token", "tau_token": 1.0}}
    paper = policy_update(packed, ADVANTAGES, stats, _aepo(False), _config(**clip))
    assert int(paper.token_mask.sum()) == 7  # the uncertain negative token is dropped
    assert paper.global_tokens == 8  # ... but every response token counts (Eq.8-9)
    kept = policy_update(
        packed,
        ADVANTAGES,
        stats,
        _aepo(False),
        _config(**clip, loss={"denominator_tokens": "kept"}),
    )
    assert torch.equal(kept.token_mask, paper.token_mask) and kept.global_tokens == 7


def test_aepo_drops_negative_samples_by_the_paper_and_unrewarded_ones_by_the_code() -> None:
    packed, stats = _batch()
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0])
    response = packed.loss_mask.bool()

    def trained(update: PolicyUpdate) -> list[int]:
        sequences = packed.sequence_index()[update.token_mask & response]
        return sorted(set(sequences.tolist()))

    paper = policy_update(packed, ADVANTAGES, stats, _aepo(True), _config())
    assert trained(paper) == [0, 2]  # A = 1 and A = 0 stay
    assert paper.global_tokens == 8  # dropped samples still count
    code = policy_update(
        packed, ADVANTAGES, stats, _aepo(True, drop="unrewarded"), _config(), rewards=rewards
    )
    assert trained(code) == [0]  # A = 0 goes too
    with pytest.raises(ValueError, match="needs each sequence's reward"):
        policy_update(packed, ADVANTAGES, stats, _aepo(True, drop="unrewarded"), _config())
    inactive = _aepo(False, drop="unrewarded")
    assert policy_update(packed, ADVANTAGES, stats, inactive, _config()).token_mask.sum() == 8


def test_batch_entropy_as_sequence_mean_or_token_mean() -> None:
    packed, stats = _batch()
    index, mask = packed.sequence_index(), packed.loss_mask
    stats.entropy[packed.token_positions([2])] = 0.4  # the three-token answer
    # Sequence means 0.1, (0.1 + 2.0) / 2, 0.4, 0.1: 1.65 / 4; token mean (0.1 + 2.1 + 1.2 +
    # 0.2) / 8: the long answer weighs more.
    assert batch_entropy(stats.entropy, index, mask) == pytest.approx(1.65 / 4)
    assert batch_entropy(stats.entropy, index, mask, "token") == pytest.approx(3.6 / 8)


class _Recorder:
    """A policy that records the updates it is given."""

    def __init__(self) -> None:
        self.updates: list[tuple[PackedBatch, PolicyUpdate]] = []

    def train_step(self, batch: PackedBatch, update: PolicyUpdate) -> StepStats:
        self.updates.append((batch, update))
        return StepStats(0.0, 0.0, batch.num_tokens, int(update.token_mask.sum()))


def test_group_weights_are_per_group_token_means_in_every_mini_batch() -> None:
    packed, stats = _batch()
    groups = torch.tensor([0, 0, 1, 1])
    config = _config(loss={"aggregation": "token_group"})
    update = policy_update(packed, ADVANTAGES, stats, _aepo(False), config, groups=groups)
    assert update.token_weights is not None
    response = packed.loss_mask.bool()
    # Group 0: 3 response tokens, group 1: 5; two groups.
    expected = [1 / 6] * 3 + [1 / 10] * 5
    assert update.token_weights[response].tolist() == pytest.approx(expected)
    assert float(update.token_weights.sum()) == pytest.approx(1.0)

    recorder = _Recorder()
    split = _config(loss={"aggregation": "token_group"}, updates_per_batch=2)
    update_policy(recorder, packed, update, split, step=1, groups=groups)  # type: ignore[arg-type]
    for batch, part in recorder.updates:
        assert part.token_weights is not None
        assert float(part.token_weights.sum()) == pytest.approx(1.0)  # its own normaliser
        assert part.global_tokens == int(batch.loss_mask.sum())
