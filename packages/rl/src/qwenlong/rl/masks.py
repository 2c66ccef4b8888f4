"""Negative-gradient clipping (paper Eq.8-9): drop the push-down on uncertain tokens.

A negative advantage lowers the probability of every token of a wrong response. Where the
policy was uncertain (high entropy) those tokens are often the exploratory forks a later
correct answer needs, and pushing them down collapses entropy. Eq.8-9 multiply each token's
loss term by an indicator I(i, t) that is 0 when the response's advantage is negative and the
entropy is past a threshold tau, 1 otherwise:

- sequence mode (Eq.8): I = 0 on every token of response i when A_i < 0 and the mean of
  H(t | i) over its response tokens > tau_seq;
- token mode (Eq.9):    I = 0 where A_i < 0 and H(t | i) > tau_token.

Both keep Eq.4's 1 / sum_j |y_j| over every response token: a masked token stops contributing
gradient, not counting (`loss.denominator_tokens: response`, qwenlong.rl.losses).

H(t | i) = -sum_v pi(v) log pi(v) is the full-vocabulary entropy of the policy at that token
(`qwenlong.rl.entropy`). The entropy side "low" flips the comparison (drop negative gradients
on CONFIDENT tokens instead), the ablation of the paper's Table 4. Positive and zero advantages
are never masked here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor

from qwenlong.core.config import ConfigModel
from qwenlong.core.registry import Registry

Side = Literal["high", "low"]

NegativeClipFn = Callable[[Tensor, Tensor, Tensor, Tensor, Side, "NegativeClipConfig"], Tensor]
"""(advantages_tok[N], entropy[N], seq_index[N], loss_mask[N], side, config) -> keep[N] bool."""

NEGATIVE_CLIP_MODES: Registry[NegativeClipFn] = Registry("negative-gradient clipping mode")


class NegativeClipConfig(ConfigModel):
    """Negative-gradient clipping, Eq.8-9. The thresholds are not published."""

    mode: str = "none"
    """NEGATIVE_CLIP_MODES name: "none" (off), "sequence" (Eq.8) or "token" (Eq.9). Off by
    default: the paper's final recipe controls entropy with AEPO (Eq.11); these modes are its
    ablation alternatives."""
    side: Side = "high"
    """Which negative-advantage tokens lose their gradient: "high" entropy (above tau, the
    paper's method) or "low" entropy (below tau, the Table 4 ablation)."""
    tau_token: float = Field(default=1.0, ge=0)
    """Token-entropy threshold of token mode, in nats. Not published; our choice: 1.0 nats is
    well above the 0.10-0.30 batch-mean entropy of the paper's run, so only the rare forking
    tokens of a peaked policy are spared. Tiny models with near-uniform outputs need it raised."""
    tau_seq: float = Field(default=0.3, ge=0)
    """Mean-token-entropy threshold of sequence mode, in nats. Not published; our choice: the
    top of the 0.10-0.30 batch-entropy band of the paper's run, so a wrong response is spared
    only when it is more uncertain than a typical batch."""

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in NEGATIVE_CLIP_MODES:
            raise ValueError(
                f"unknown negative-gradient clipping mode {value!r}; "
                f"known: {NEGATIVE_CLIP_MODES.names()}"
            )
        return value


def negative_gradient_mask(
    advantages_tok: Tensor,
    entropy: Tensor,
    seq_index: Tensor,
    loss_mask: Tensor,
    config: NegativeClipConfig,
) -> Tensor:
    """[N] bool: the tokens of `loss_mask` that keep their loss term under `config`.

    `advantages_tok` holds each token's sequence advantage, `entropy` the policy's token
    entropy, `seq_index` each token's sequence (as `PackedBatch.sequence_index()`), `loss_mask`
    the response tokens. The result is already AND-ed with `loss_mask`.
    """
    for name, tensor in (("entropy", entropy), ("seq_index", seq_index), ("loss_mask", loss_mask)):
        if tensor.shape != advantages_tok.shape:
            raise ValueError(
                f"{name} shape {tuple(tensor.shape)} differs from advantages "
                f"{tuple(advantages_tok.shape)}"
            )
    mode = NEGATIVE_CLIP_MODES.get(config.mode)
    keep = mode(advantages_tok, entropy, seq_index, loss_mask.bool(), config.side, config)
    return keep & loss_mask.bool()


@NEGATIVE_CLIP_MODES.register("none")
def no_clipping(
    advantages_tok: Tensor,
    entropy: Tensor,
    seq_index: Tensor,
    loss_mask: Tensor,
    side: Side,
    config: NegativeClipConfig,
) -> Tensor:
    """Every response token keeps its gradient."""
    return loss_mask.clone()


@NEGATIVE_CLIP_MODES.register("token")
def token_clipping(
    advantages_tok: Tensor,
    entropy: Tensor,
    seq_index: Tensor,
    loss_mask: Tensor,
    side: Side,
    config: NegativeClipConfig,
) -> Tensor:
    """Eq.9: drop tokens with A < 0 whose own entropy is past tau_token."""
    past = _past(entropy, config.tau_token, side)
    return loss_mask & ~((advantages_tok < 0) & past)


@NEGATIVE_CLIP_MODES.register("sequence")
def sequence_clipping(
    advantages_tok: Tensor,
    entropy: Tensor,
    seq_index: Tensor,
    loss_mask: Tensor,
    side: Side,
    config: NegativeClipConfig,
) -> Tensor:
    """Eq.8: drop every token of a response with A < 0 whose mean response-token entropy is
    past tau_seq. A sequence without response tokens has no mean and is left alone."""
    mean = sequence_mean(entropy, seq_index, loss_mask)
    dense = torch.unique(seq_index, return_inverse=True)[1]
    past = _past(mean, config.tau_seq, side) & ~mean.isnan()
    return loss_mask & ~((advantages_tok < 0) & past[dense])


def sequence_mean(values: Tensor, seq_index: Tensor, loss_mask: Tensor) -> Tensor:
    """[S'] mean of `values` over the `loss_mask` tokens of each distinct sequence id (sorted
    order); NaN for a sequence with no such token."""
    dense = torch.unique(seq_index, return_inverse=True)[1]
    size = int(dense.max()) + 1 if dense.numel() else 0
    loss_mask = loss_mask.bool()
    kept = torch.where(loss_mask, values.to(torch.float64), 0.0)
    counts = torch.bincount(dense, weights=loss_mask.to(torch.float64), minlength=size)
    sums = torch.bincount(dense, weights=kept, minlength=size)
    return (sums / counts).float()


def _past(entropy: Tensor, tau: float, side: Side) -> Tensor:
    return entropy > tau if side == "high" else entropy < tau
