"""The training-inference mismatch: what the rollout engine sampled from versus what the policy
computes for the same tokens, measured every step and optionally corrected.

The engine (vLLM, or the HF engine) and the trainer (torch or Megatron) compute the same model
with different kernels, batch shapes and, in bf16, different rounding; in a MoE model a
near-tie in the router can send a token to different experts in the two. The tokens were drawn
from the engine's distribution mu, while the policy gradient assumes the trainer's pi_old:
every step logs how far apart they are on the sampled tokens, and `tis_cap` turns on
truncated importance sampling (Yao et al. 2025, "Your efficient RL framework secretly brings
you off-policy RL training"): each token's policy-gradient term is weighted by
min(pi_old / mu, C), detached, so tokens the trainer finds likelier than the engine did count
more, up to C. The paper does not mention the mismatch; off by default (ours).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from qwenlong.core.config import ConfigModel

LOG_RATIO_BOUND = 20.0
"""|log pi - log mu| is clamped here before exponentiating (a token the engine gave ~0 mass
would otherwise overflow the weight before the cap applies)."""


class RolloutCorrectionConfig(ConfigModel):
    """Correction of the policy gradient for the engine/trainer mismatch."""

    tis_cap: float | None = Field(default=None, ge=1)
    """C of truncated importance sampling: weight each token's policy-gradient term by
    min(exp(log pi_old - log mu), C). None: no correction (the paper's setting). verl and
    slime suggest C = 2."""


def mismatch_metrics(
    policy_logprobs: Tensor, rollout_logprobs: Tensor, mask: Tensor
) -> dict[str, float]:
    """How far the engine's log-probs of the sampled tokens are from the policy's, over the
    `mask` tokens (response tokens with both values): the mean absolute difference, and
    KL(mu || pi) estimated on the engine's own samples with the non-negative k3 estimator
    (exp(d) - 1 - d, d = log pi - log mu). Empty when no token qualifies."""
    keep = mask.bool() & ~rollout_logprobs.isnan() & ~policy_logprobs.isnan()
    if not bool(keep.any()):
        return {}
    delta = (policy_logprobs[keep] - rollout_logprobs[keep]).double()
    bounded = delta.clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)
    return {
        "mismatch/logprob_abs_diff": float(delta.abs().mean()),
        "mismatch/kl": float((bounded.exp() - 1 - bounded).mean()),
        "mismatch/tokens": float(keep.sum()),
    }


def truncated_is_weights(
    policy_logprobs: Tensor, rollout_logprobs: Tensor, mask: Tensor, cap: float
) -> Tensor:
    """[N] min(pi_old / mu, cap) on the `mask` tokens, 1 elsewhere (and where the engine gave
    no log-prob). Computed from detached log-probs: a weight, never a gradient path."""
    keep = mask.bool() & ~rollout_logprobs.isnan()
    log_ratio = (policy_logprobs.detach().float() - rollout_logprobs.float()).clamp(
        -LOG_RATIO_BOUND, LOG_RATIO_BOUND
    )
    weights = log_ratio.exp().clamp(max=cap)
    return weights.where(keep, weights.new_ones(()))
