"""AEPO, adaptive entropy-controlled policy optimisation (paper Eq.11): a hysteresis switch.

Negative-advantage samples push probability away from what the policy sampled, which spreads
it out and raises entropy; positive ones sharpen it. AEPO watches the batch entropy

    H(B) = mean over the batch's responses of (mean over the response's tokens of H(t | i))

and, once H(B) rises above `entropy_high`, trains on positive-advantage samples only, until
H(B) falls below `entropy_low`; then negative gradients come back.

Where the paper and its authors' code differ, both are offered (`AepoConfig`): which samples an
active controller drops (the paper: negative advantages; the code: all but A > 0 with reward
> 0), and H(B) as the paper's mean over sequences or the code's token mean. Two thresholds instead of
one give hysteresis: an entropy hovering near a single threshold would flip the update rule
every step. Between the thresholds the controller keeps its previous state.

The trainer calls, every step: `update(batch_entropy(...))`, then `mask(seq_advantages)`, and
logs `log_fields()`; `state_dict()` goes into checkpoints so a resumed run continues in the
same state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from qwenlong.core.config import ConfigModel
from qwenlong.rl.masks import sequence_mean


class AepoConfig(ConfigModel):
    """Adaptive entropy control (Eq.11): hysteresis on the batch entropy H(B)."""

    enabled: bool = True
    """Run the controller. Off, every sample keeps its gradient (plain GRPO)."""
    entropy_high: float = Field(default=0.25, ge=0)
    """Above this H(B) (nats), drop every negative-advantage sample. Not published; our choice
    inside the 0.10-0.30 band the paper's 30B run stayed in, chosen for the sequence mean
    (`entropy_mean: sequence`)."""
    entropy_low: float = Field(default=0.15, ge=0)
    """Below this H(B) (nats), restore negative gradients. Not published; our choice inside
    the same band, for the sequence mean. Must not exceed entropy_high."""
    drop: Literal["negative", "unrewarded"] = "negative"
    """What an active controller drops. "negative" (the paper, Eq.11): samples with A < 0;
    A = 0 samples stay (no policy gradient, but they count in the token normaliser).
    "unrewarded" (the authors' released code): every sample but those with A > 0 and reward
    > 0, so A = 0 samples go too."""
    entropy_mean: Literal["sequence", "token"] = "sequence"
    """H(B): "sequence" (the paper, Eq.11): the mean over responses of each response's mean
    token entropy, every response counting once; "token" (the authors' code, verl's
    aggregated entropy): the mean over all response tokens of the batch, so long responses
    weigh more."""

    @model_validator(mode="after")
    def _ordered(self) -> AepoConfig:
        if self.entropy_low > self.entropy_high:
            raise ValueError(
                f"entropy_low {self.entropy_low} exceeds entropy_high {self.entropy_high}"
            )
        return self


def batch_entropy(
    entropy: Tensor,
    seq_index: Tensor,
    loss_mask: Tensor,
    mean: Literal["sequence", "token"] = "sequence",
) -> float:
    """Eq.11's H(B). "sequence": the mean over sequences of each sequence's mean
    response-token entropy, every response counting once whatever its length; "token": the mean
    over all response tokens (the authors' code). Sequences without response tokens are
    skipped; a batch with none returns 0.0.
    """
    if not entropy.shape == seq_index.shape == loss_mask.shape:
        raise ValueError(
            f"entropy {tuple(entropy.shape)}, seq_index {tuple(seq_index.shape)} and loss_mask "
            f"{tuple(loss_mask.shape)} must have the same shape"
        )
    if mean == "token":
        tokens = entropy[loss_mask.bool()]
        return float(tokens.double().mean()) if tokens.numel() else 0.0
    means = sequence_mean(entropy, seq_index, loss_mask)
    means = means[~means.isnan()]
    return float(means.double().mean()) if means.numel() else 0.0


class AepoController:
    """The Eq.11 switch: active (negatives dropped) from H(B) > high until H(B) < low."""

    def __init__(self, config: AepoConfig) -> None:
        self.config = config
        self._active = False
        self._entropy: float | None = None
        self._steps = 0
        self._active_steps = 0
        self._activations = 0
        self._kept = 0
        self._dropped = 0

    @property
    def active(self) -> bool:
        """True while negative-advantage samples are being dropped."""
        return self._active

    def update(self, batch_entropy: float) -> bool:
        """Feed this step's H(B); return whether negatives are dropped for this step."""
        if not math.isfinite(batch_entropy):
            raise ValueError(f"AEPO got a non-finite batch entropy {batch_entropy}")
        self._entropy = float(batch_entropy)
        self._steps += 1
        if not self.config.enabled:
            self._active = False
        elif not self._active and batch_entropy > self.config.entropy_high:
            self._active = True
            self._activations += 1
        elif self._active and batch_entropy < self.config.entropy_low:
            self._active = False
        self._active_steps += int(self._active)
        return self._active

    def mask(self, seq_advantages: Tensor, seq_rewards: Tensor | None = None) -> Tensor:
        """[S] bool: the sequences that keep their gradient this step.

        Inactive: all. Active, `drop: negative`: those with A >= 0 (zero-advantage sequences
        are kept because Eq.11 drops negative samples only; under the policy loss they carry no
        gradient anyway, only a KL term when one is on). Active, `drop: unrewarded`: those with
        A > 0 and reward > 0 (`seq_rewards` needed).
        """
        if seq_advantages.dim() != 1:
            raise ValueError(
                f"seq_advantages must be 1-D [S], got shape {tuple(seq_advantages.shape)}"
            )
        if self._active and self.config.drop == "unrewarded":
            if seq_rewards is None or seq_rewards.shape != seq_advantages.shape:
                raise ValueError("AEPO drop 'unrewarded' needs each sequence's reward [S]")
            keep = (seq_advantages > 0) & (seq_rewards > 0)
        elif self._active:
            keep = seq_advantages >= 0
        else:
            keep = torch.ones_like(seq_advantages, dtype=torch.bool)
        self._kept = int(keep.sum())
        self._dropped = int(keep.numel() - self._kept)
        return keep

    def log_fields(self) -> dict[str, float]:
        """Per-step metrics: state, last H(B), last mask's kept/dropped counts, and totals."""
        return {
            "aepo_active": float(self._active),
            "aepo_entropy": float("nan") if self._entropy is None else self._entropy,
            "aepo_kept": float(self._kept),
            "aepo_dropped": float(self._dropped),
            "aepo_active_steps": float(self._active_steps),
            "aepo_activations": float(self._activations),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue in the same state (JSON-serialisable)."""
        return {
            "active": self._active,
            "entropy": self._entropy,
            "steps": self._steps,
            "active_steps": self._active_steps,
            "activations": self._activations,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict()`; a missing or unexpected key is an error, not a default."""
        expected = set(self.state_dict())
        if set(state) != expected:
            missing = sorted(expected - set(state))
            extra = sorted(set(state) - expected)
            raise ValueError(f"AEPO state has missing keys {missing} and unexpected keys {extra}")
        self._active = bool(state["active"])
        self._entropy = None if state["entropy"] is None else float(state["entropy"])
        self._steps = int(state["steps"])
        self._active_steps = int(state["active_steps"])
        self._activations = int(state["activations"])
