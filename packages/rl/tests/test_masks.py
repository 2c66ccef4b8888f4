"""Negative-gradient clipping (Eq.8-9) on hand-built batches."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from qwenlong.rl.masks import (
    NEGATIVE_CLIP_MODES,
    NegativeClipConfig,
    negative_gradient_mask,
    sequence_mean,
)

torch.set_num_threads(1)

# Token mode batch: one sequence per token so only the token rule matters.
ADV = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 0.0])
ENT = torch.tensor([0.5, 1.5, 2.0, 3.0, 0.1, 5.0])
SEQ = torch.arange(6)
ALL = torch.ones(6, dtype=torch.bool)


def _keep(config: NegativeClipConfig, adv=ADV, ent=ENT, seq=SEQ, mask=ALL) -> list[bool]:
    return negative_gradient_mask(adv, ent, seq, mask, config).tolist()


def test_token_mode_drops_high_entropy_negative_tokens() -> None:
    # A < 0 and H > 1.0: tokens 1 and 2. Positive or zero advantages are never touched.
    config = NegativeClipConfig(mode="token", tau_token=1.0)
    assert _keep(config) == [True, False, False, True, True, True]


def test_token_mode_low_side_drops_confident_negative_tokens() -> None:
    config = NegativeClipConfig(mode="token", side="low", tau_token=1.0)
    assert _keep(config) == [False, True, True, True, True, True]


def test_token_mode_threshold_is_strict() -> None:
    config = NegativeClipConfig(mode="token", tau_token=1.5)
    assert _keep(config) == [True, True, False, True, True, True]


def test_prompt_tokens_stay_out() -> None:
    mask = torch.tensor([False, True, True, True, False, True])
    config = NegativeClipConfig(mode="token", tau_token=1.0)
    assert _keep(config, mask=mask) == [False, False, False, True, False, True]
    assert _keep(NegativeClipConfig(), mask=mask) == mask.tolist()


# Sequence mode batch: three sequences, each starting with one prompt token.
S_SEQ = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
S_MASK = torch.tensor([False, True, True] * 3)
S_ADV = torch.tensor([-1.0] * 3 + [-1.0] * 3 + [1.0] * 3)
# Response means: seq 0 (0.2 + 0.6) / 2 = 0.4; seq 1 (0.1 + 0.3) / 2 = 0.2 (its prompt token's
# 9.0 must not count, or the mean would be 3.13); seq 2 mean 1.0 but A > 0.
S_ENT = torch.tensor([0.0, 0.2, 0.6, 9.0, 0.1, 0.3, 0.0, 1.0, 1.0])


def test_sequence_mode_drops_whole_uncertain_negative_sequences() -> None:
    config = NegativeClipConfig(mode="sequence", tau_seq=0.3)
    got = _keep(config, S_ADV, S_ENT, S_SEQ, S_MASK)
    assert got == [False, False, False, False, True, True, False, True, True]


def test_sequence_mode_low_side() -> None:
    config = NegativeClipConfig(mode="sequence", side="low", tau_seq=0.3)
    got = _keep(config, S_ADV, S_ENT, S_SEQ, S_MASK)
    assert got == [False, True, True, False, False, False, False, True, True]


def test_sequence_mean_over_response_tokens_only() -> None:
    means = sequence_mean(S_ENT, S_SEQ, S_MASK)
    assert means.tolist() == pytest.approx([0.4, 0.2, 1.0])


def test_sequence_without_response_tokens_is_left_alone() -> None:
    seq = torch.tensor([0, 0, 1, 1])
    mask = torch.tensor([False, False, True, True])
    adv = torch.tensor([-1.0, -1.0, -1.0, -1.0])
    ent = torch.tensor([5.0, 5.0, 0.5, 0.7])
    config = NegativeClipConfig(mode="sequence", tau_seq=0.3)
    assert sequence_mean(ent, seq, mask)[0].isnan()
    assert _keep(config, adv, ent, seq, mask) == [False, False, False, False]
    low = NegativeClipConfig(mode="sequence", side="low", tau_seq=0.3)
    assert _keep(low, adv, ent, seq, mask) == [False, False, True, True]


def test_registry_defaults_and_validation() -> None:
    assert NEGATIVE_CLIP_MODES.names() == ["none", "sequence", "token"]
    config = NegativeClipConfig()
    assert (config.mode, config.side) == ("none", "high")
    with pytest.raises(ValidationError, match="known"):
        NegativeClipConfig(mode="tokens")
    with pytest.raises(ValidationError, match="side"):
        NegativeClipConfig(side="middle")
    with pytest.raises(ValueError, match="entropy shape"):
        negative_gradient_mask(ADV, ENT[:3], SEQ, ALL, config)
