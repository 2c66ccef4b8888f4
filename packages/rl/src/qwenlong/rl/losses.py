"""The policy-gradient loss: per-token terms (POLICY_LOSSES), a KL penalty (KL_ESTIMATORS) and
the reduction to one scalar (LOSS_AGGREGATIONS).

`compute_loss` returns the contribution of ONE micro-batch on ONE data-parallel rank to the loss
of the whole global batch: every reduction divides by a count of the global batch (tokens or
sequences), never by a count of the micro-batch. Summing the contributions of all micro-batches
on all ranks (gradient accumulation followed by an all-reduce SUM) therefore gives exactly the
loss, and the gradient, of the whole batch processed at once.

Why this matters (Eq.4, the paper's token-level loss after DAPO): J = sum_i sum_t A_i rho_{i,t} /
sum_j |y_j| weighs every token of the batch by the same 1 / (global token count). Dividing by the token
count of the micro-batch instead weighs a token by the size of the micro-batch it happened to
land in: a token sharing a micro-batch with one short response counts many times more than one
sharing it with long ones, and the gradient then depends on how the batch was split across
micro-batches and ranks. This is the most common loss-normalisation bug in RL trainers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor

from qwenlong.core.config import ConfigModel
from qwenlong.core.registry import Registry

LOG_RATIO_BOUND = 20.0
"""Log-ratios are clamped to +-20 before exponentiating, so a token whose probability collapsed
cannot overflow the ratio to inf (and its gradient to NaN); the clip bounds are far inside."""


@dataclass
class PolicyTerms:
    """Per-token output of a policy loss, before masking and aggregation."""

    loss: Tensor
    """[n] the term to minimise for each token."""
    ratio: Tensor
    """[n] importance ratio pi / pi_old (detached)."""
    clipped_low: Tensor
    """[n] bool: A < 0 and the ratio fell below 1 - clip_low, so the token gets no gradient."""
    clipped_high: Tensor
    """[n] bool: A > 0 and the ratio rose above 1 + clip_high, so the token gets no gradient."""
    clipped_dual: Tensor
    """[n] bool: A < 0 and the ratio exceeded dual_clip, so the term is capped at -A * c."""


PolicyLossFn = Callable[[Tensor, Tensor | None, Tensor, "LossConfig"], PolicyTerms]
"""(logprobs[n], old_logprobs[n] or None, advantages[n], config) -> PolicyTerms."""
AggregationFn = Callable[[Tensor, int, Tensor | None, int | None, Tensor | None], Tensor]
"""(per_token[m], global_tokens, seq_index[m] or None, global_sequences or None, token_weights[m]
or None) -> this micro-batch's scalar contribution; m = the micro-batch's contributing tokens
only."""
KlFn = Callable[[Tensor, Tensor], Tensor]
"""(logprobs[n], ref_logprobs[n]) -> per-token estimate of KL(pi || pi_ref)."""

POLICY_LOSSES: Registry[PolicyLossFn] = Registry("policy loss")
LOSS_AGGREGATIONS: Registry[AggregationFn] = Registry("loss aggregation")
KL_ESTIMATORS: Registry[KlFn] = Registry("KL estimator")


class LossConfig(ConfigModel):
    """The GRPO/DAPO policy loss. Defaults are the paper's (RECIPE.md section 2) unless noted."""

    policy_loss: str = "ppo_clip"
    """POLICY_LOSSES name. "ppo_clip": the clipped surrogate of Eq.2, -min(rho A, clip(rho) A)."""
    clip_low: float = Field(default=0.2, ge=0, lt=1)
    """Lower clip: a negative-advantage token stops pushing once rho < 1 - clip_low. PPO's 0.2.
    Inert in the paper's strictly on-policy setting (rho = 1); matters with old_logprobs."""
    clip_high: float = Field(default=0.28, ge=0)
    """Upper clip: a positive-advantage token stops pushing once rho > 1 + clip_high. DAPO's
    clip-higher (0.28 > 0.2) leaves low-probability tokens more room to grow, which keeps
    entropy from collapsing. The paper does not state its value; DAPO's default."""
    dual_clip: float | None = Field(default=None, gt=1)
    """Dual-clip constant c > 1 (Ye et al. 2020): for A < 0 the term is capped at -A * c, so a
    token whose ratio exploded cannot dominate the update. None disables it (the paper's run)."""
    kl_beta: float = Field(default=0.0, ge=0)
    """Weight of the per-token KL(pi || pi_ref) penalty. The paper uses no KL (0)."""
    kl_estimator: str = "k3"
    """KL_ESTIMATORS name: "k1" (log-ratio), "k2" (half squared log-ratio) or "k3" (Schulman's
    unbiased, always non-negative estimator, the GRPO paper's choice)."""
    aggregation: str = "token_global"
    """LOSS_AGGREGATIONS name. "token_global": Eq.4 as DAPO and verl compute it, sum over tokens
    / the global batch's token count (the default, RECIPE.md section 2). "token_group": Eq.4 as
    the paper's text words it, each token / the token count of its group (the prompt's G
    responses), then the mean over groups: a group of long answers weighs as much as one of
    short answers. "seq_mean_token_mean" (GRPO's original per-sequence mean, then mean over
    sequences) and "seq_mean_token_sum" (sum per sequence, mean over sequences) for ablations."""
    denominator_tokens: Literal["response", "kept"] = "response"
    """Which tokens the token counts of "token_global" / "token_group" count. "response" (the
    paper, Eq.8-9: 1 / sum_j |y_j| over every response token): a token masked by
    negative-gradient clipping or AEPO stops contributing gradient but still counts, so the step
    does not grow when the masks bite. "kept": only the tokens the masks keep count (this
    project's earlier behaviour, as a masked mean computes it)."""

    @field_validator("policy_loss")
    @classmethod
    def _known_policy_loss(cls, value: str) -> str:
        return _known(POLICY_LOSSES, value)

    @field_validator("kl_estimator")
    @classmethod
    def _known_kl(cls, value: str) -> str:
        return _known(KL_ESTIMATORS, value)

    @field_validator("aggregation")
    @classmethod
    def _known_aggregation(cls, value: str) -> str:
        return _known(LOSS_AGGREGATIONS, value)


def compute_loss(
    logprobs: Tensor,
    old_logprobs: Tensor | None,
    ref_logprobs: Tensor | None,
    advantages: Tensor,
    token_mask: Tensor,
    global_tokens: int,
    config: LossConfig,
    *,
    seq_index: Tensor | None = None,
    global_sequences: int | None = None,
    is_weights: Tensor | None = None,
    token_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """This micro-batch's contribution to the global-batch loss, and its statistics.

    All per-token tensors are [n] and aligned; `logprobs` carries the gradient; `token_mask`
    marks the tokens that contribute (response tokens kept by the AEPO and negative-gradient
    masks). `global_tokens` counts those tokens over the WHOLE global batch (every micro-batch
    on every rank). The sequence-level aggregations also need `seq_index` (each token's sequence,
    never split across micro-batches) and `global_sequences` (sequences of the global batch with
    at least one contributing token). `is_weights` (per token, detached) scales the
    policy-gradient term: truncated importance sampling for the engine/trainer mismatch
    (qwenlong.rl.rollout_correction); the KL term is not weighted. `token_weights` (per token)
    are the "token_group" aggregation's normalisers 1 / (group tokens x groups).

    Every statistic is, like the loss, a contribution: summed over all micro-batches and ranks
    it gives the figure of the global batch. `loss` and `pg_loss` (the policy term alone, no
    KL) follow the aggregation; `ratio_mean`, `clip_frac_low`, `clip_frac_high`,
    `clip_frac_dual` and, when `ref_logprobs` is given, `kl` (the per-token KL estimate) are
    token means over `global_tokens`.
    """
    _check_shapes(
        logprobs,
        old_logprobs,
        ref_logprobs,
        advantages,
        token_mask,
        seq_index,
        is_weights,
        token_weights,
    )
    mask = token_mask.bool()
    local = int(mask.sum())
    if local > global_tokens:
        raise ValueError(
            f"micro-batch has {local} loss tokens but global_tokens is {global_tokens}; "
            "global_tokens must count the whole global batch"
        )
    if config.kl_beta > 0 and ref_logprobs is None:
        raise ValueError(f"kl_beta is {config.kl_beta} but no ref_logprobs were given")

    # Only the contributing tokens enter the computation: whatever sits outside the mask
    # (placeholder log-probs, a NaN advantage) can reach neither the loss nor its gradient.
    rows = mask.nonzero().view(-1)
    logprobs, advantages = logprobs[rows], advantages[rows]
    old_logprobs = None if old_logprobs is None else old_logprobs[rows]
    ref_logprobs = None if ref_logprobs is None else ref_logprobs[rows]
    seq_index = None if seq_index is None else seq_index[rows]
    token_weights = None if token_weights is None else token_weights[rows]

    terms = POLICY_LOSSES.get(config.policy_loss)(logprobs, old_logprobs, advantages, config)
    if is_weights is not None:
        terms = replace(terms, loss=terms.loss * is_weights[rows].detach().to(terms.loss.dtype))
    per_token = terms.loss
    kl = None
    if ref_logprobs is not None:
        kl = KL_ESTIMATORS.get(config.kl_estimator)(logprobs, ref_logprobs)
        if config.kl_beta > 0:
            per_token = per_token + config.kl_beta * kl
    aggregate = LOSS_AGGREGATIONS.get(config.aggregation)
    loss = aggregate(per_token, global_tokens, seq_index, global_sequences, token_weights)

    denominator = max(global_tokens, 1)

    def token_mean(values: Tensor) -> float:
        return float(values.detach().double().sum()) / denominator

    pg_loss = aggregate(
        terms.loss.detach(), global_tokens, seq_index, global_sequences, token_weights
    )
    stats = {
        "loss": float(loss.detach()),
        "pg_loss": float(pg_loss),
        "ratio_mean": token_mean(terms.ratio),
        "clip_frac_low": token_mean(terms.clipped_low),
        "clip_frac_high": token_mean(terms.clipped_high),
        "clip_frac_dual": token_mean(terms.clipped_dual),
    }
    if kl is not None:
        stats["kl"] = token_mean(kl)
    if is_weights is not None:
        stats["is_weight_mean"] = token_mean(is_weights[rows])
    return loss, stats


@POLICY_LOSSES.register("ppo_clip")
def ppo_clip_loss(
    logprobs: Tensor, old_logprobs: Tensor | None, advantages: Tensor, config: LossConfig
) -> PolicyTerms:
    """Eq.2's clipped surrogate per token: max(-A rho, -A clip(rho, 1 - eps_low, 1 + eps_high)),
    then, with dual clip and A < 0, min(that, -A c).

    With `old_logprobs` None (strictly on-policy) the ratio is exp(logp - stop_grad(logp)) = 1,
    whose gradient is grad(logp): the term's gradient is then -A * grad(logp), plain REINFORCE
    with the group baseline, and no clip bound can bind.
    """
    reference = logprobs.detach() if old_logprobs is None else old_logprobs
    log_ratio = (logprobs - reference).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - config.clip_low, 1 + config.clip_high)
    # where, not maximum/minimum: on a tie those split the gradient between the branches, and
    # a clamp sitting exactly on its bound (clip_low = 0 on-policy) would halve it.
    loss = torch.where(clipped > unclipped, clipped, unclipped)
    ratio_now = ratio.detach()
    negative = advantages < 0
    clipped_dual = torch.zeros_like(negative)
    if config.dual_clip is not None:
        cap = -advantages * config.dual_clip
        clipped_dual = negative & (loss > cap)
        loss = torch.where(clipped_dual, cap, loss)
    return PolicyTerms(
        loss=loss,
        ratio=ratio_now,
        clipped_low=negative & (ratio_now < 1 - config.clip_low),
        clipped_high=(advantages > 0) & (ratio_now > 1 + config.clip_high),
        clipped_dual=clipped_dual,
    )


@KL_ESTIMATORS.register("k1")
def kl_k1(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """log pi - log pi_ref: unbiased, high variance, can be negative per token."""
    return logprobs - ref_logprobs


@KL_ESTIMATORS.register("k2")
def kl_k2(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """(log pi - log pi_ref)^2 / 2: biased, low variance, non-negative."""
    return 0.5 * (logprobs - ref_logprobs) ** 2


@KL_ESTIMATORS.register("k3")
def kl_k3(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """exp(d) - 1 - d with d = log pi_ref - log pi: unbiased, low variance, non-negative."""
    delta = (ref_logprobs - logprobs).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)
    return delta.exp() - 1 - delta


@LOSS_AGGREGATIONS.register("token_global")
def token_global(
    per_token: Tensor,
    global_tokens: int,
    seq_index: Tensor | None,
    global_sequences: int | None,
    token_weights: Tensor | None,
) -> Tensor:
    """Eq.4 (DAPO, verl): sum of the micro-batch's token terms / token count of the global
    batch."""
    return per_token.sum() / max(global_tokens, 1)


@LOSS_AGGREGATIONS.register("token_group")
def token_group(
    per_token: Tensor,
    global_tokens: int,
    seq_index: Tensor | None,
    global_sequences: int | None,
    token_weights: Tensor | None,
) -> Tensor:
    """Eq.4 as the paper words it: each token's term x 1 / (its group's token count x the
    number of groups), weights computed over the global batch (`group_token_weights`)."""
    if token_weights is None:
        raise ValueError("aggregation 'token_group' needs token_weights (group_token_weights)")
    return (per_token * token_weights.to(per_token.dtype)).sum()


@LOSS_AGGREGATIONS.register("seq_mean_token_mean")
def seq_mean_token_mean(
    per_token: Tensor,
    global_tokens: int,
    seq_index: Tensor | None,
    global_sequences: int | None,
    token_weights: Tensor | None,
) -> Tensor:
    """GRPO's original reduction: mean over each sequence's tokens, then / global sequences."""
    sequences = _need_sequences("seq_mean_token_mean", global_sequences)
    if seq_index is None:
        raise ValueError("aggregation 'seq_mean_token_mean' needs seq_index")
    segments = torch.unique(seq_index, return_inverse=True)[1]
    size = int(segments.max()) + 1 if segments.numel() else 0
    sums = per_token.new_zeros(size).index_add(0, segments, per_token)
    counts = torch.bincount(segments, minlength=size).to(per_token.dtype)
    return (sums / counts).sum() / max(sequences, 1)


@LOSS_AGGREGATIONS.register("seq_mean_token_sum")
def seq_mean_token_sum(
    per_token: Tensor,
    global_tokens: int,
    seq_index: Tensor | None,
    global_sequences: int | None,
    token_weights: Tensor | None,
) -> Tensor:
    """Sum over each sequence's tokens, then / global sequences (long answers weigh more)."""
    sequences = _need_sequences("seq_mean_token_sum", global_sequences)
    return per_token.sum() / max(sequences, 1)


def _need_sequences(name: str, global_sequences: int | None) -> int:
    if global_sequences is None:
        raise ValueError(f"aggregation {name!r} needs global_sequences")
    return global_sequences


def _known(registry: Registry, value: str) -> str:
    if value not in registry:
        raise ValueError(f"unknown {registry.what} {value!r}; known: {registry.names()}")
    return value


def _check_shapes(
    logprobs: Tensor,
    old_logprobs: Tensor | None,
    ref_logprobs: Tensor | None,
    advantages: Tensor,
    token_mask: Tensor,
    seq_index: Tensor | None,
    is_weights: Tensor | None = None,
    token_weights: Tensor | None = None,
) -> None:
    if logprobs.dim() != 1:
        raise ValueError(f"logprobs must be 1-D [n], got shape {tuple(logprobs.shape)}")
    others = {
        "old_logprobs": old_logprobs,
        "ref_logprobs": ref_logprobs,
        "advantages": advantages,
        "token_mask": token_mask,
        "seq_index": seq_index,
        "is_weights": is_weights,
        "token_weights": token_weights,
    }
    for name, tensor in others.items():
        if tensor is not None and tensor.shape != logprobs.shape:
            raise ValueError(
                f"{name} shape {tuple(tensor.shape)} differs from logprobs {tuple(logprobs.shape)}"
            )
