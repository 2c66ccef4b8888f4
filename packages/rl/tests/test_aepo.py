"""AEPO (Eq.11): batch entropy, the hysteresis switch, masks, logging and resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from pydantic import ValidationError

from qwenlong.rl.aepo import AepoConfig, AepoController, batch_entropy

torch.set_num_threads(1)


def test_batch_entropy_is_a_mean_of_sequence_means() -> None:
    # Seq 0: prompt token (entropy 100, ignored), responses 1 and 3 -> mean 2.
    # Seq 1: one response token 0.5. H(B) = (2 + 0.5) / 2 = 1.25; a token mean would be 1.5.
    entropy = torch.tensor([100.0, 1.0, 3.0, 100.0, 0.5])
    seq = torch.tensor([0, 0, 0, 1, 1])
    mask = torch.tensor([False, True, True, False, True])
    assert batch_entropy(entropy, seq, mask) == pytest.approx(1.25)


def test_batch_entropy_skips_sequences_without_response_and_empty_is_zero() -> None:
    entropy = torch.tensor([7.0, 0.4])
    seq = torch.tensor([0, 1])
    assert batch_entropy(entropy, seq, torch.tensor([False, True])) == pytest.approx(0.4)
    assert batch_entropy(entropy, seq, torch.tensor([False, False])) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        batch_entropy(entropy, seq[:1], torch.tensor([True, True]))


ENTROPIES = [0.20, 0.25, 0.26, 0.20, 0.16, 0.15, 0.14, 0.20, 0.30, 0.10]
EXPECTED = [False, False, True, True, True, True, False, False, True, False]
"""With high 0.25 / low 0.15: on strictly above 0.25, off strictly below 0.15, unchanged in
between (0.20 and 0.16 after switching on, 0.20 after switching off)."""


def test_hysteresis_holds_between_the_thresholds() -> None:
    controller = AepoController(AepoConfig(entropy_high=0.25, entropy_low=0.15))
    assert [controller.update(h) for h in ENTROPIES] == EXPECTED
    fields = controller.log_fields()
    assert fields["aepo_activations"] == 2
    assert fields["aepo_active_steps"] == sum(EXPECTED)
    assert fields["aepo_entropy"] == pytest.approx(0.10)


def test_mask_keeps_all_when_inactive_and_non_negative_when_active() -> None:
    controller = AepoController(AepoConfig())
    advantages = torch.tensor([-1.0, 0.0, 0.5, -0.1])
    assert controller.mask(advantages).tolist() == [True] * 4
    controller.update(0.5)
    assert controller.active
    assert controller.mask(advantages).tolist() == [False, True, True, False]
    fields = controller.log_fields()
    assert (fields["aepo_active"], fields["aepo_kept"], fields["aepo_dropped"]) == (1.0, 2.0, 2.0)


def test_disabled_controller_never_drops() -> None:
    controller = AepoController(AepoConfig(enabled=False))
    assert not any(controller.update(h) for h in [0.9, 5.0])
    assert controller.mask(torch.tensor([-1.0, 1.0])).tolist() == [True, True]
    assert controller.log_fields()["aepo_entropy"] == 5.0


def test_resumed_controller_continues_like_the_uninterrupted_one() -> None:
    config = AepoConfig(entropy_high=0.25, entropy_low=0.15)
    first = AepoController(config)
    for h in ENTROPIES[:4]:  # stop while active, between the thresholds
        first.update(h)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = AepoController(config)
    resumed.load_state_dict(state)
    assert resumed.active
    assert [resumed.update(h) for h in ENTROPIES[4:]] == EXPECTED[4:]
    uninterrupted = AepoController(config)
    for h in ENTROPIES:
        uninterrupted.update(h)
    assert resumed.state_dict() == uninterrupted.state_dict()


def test_fresh_controller_state() -> None:
    fields = AepoController(AepoConfig()).log_fields()
    assert fields["aepo_active"] == 0.0 and math.isnan(fields["aepo_entropy"])


def test_bad_state_config_and_entropy_are_rejected() -> None:
    controller = AepoController(AepoConfig())
    with pytest.raises(ValueError, match=r"missing keys \['activations'"):
        controller.load_state_dict({"active": True, "entropy": 0.2, "steps": 1, "active_steps": 1})
    with pytest.raises(ValidationError, match=r"entropy_low 0\.3 exceeds entropy_high 0\.2"):
        AepoConfig(entropy_high=0.2, entropy_low=0.3)
    with pytest.raises(ValueError, match="non-finite"):
        controller.update(float("nan"))


def test_defaults_lie_inside_the_papers_entropy_band() -> None:
    config = AepoConfig()
    assert config.enabled
    assert 0.10 <= config.entropy_low < config.entropy_high <= 0.30
