"""The policy's token statistics without a pass of their own: from the rollout, and from the
training forward.

Before an update the trainer needs each response token's full-vocabulary entropy (AEPO's batch
entropy H(B), Eq.11, and the negative-gradient masks, Eq.8-9) and, for the mismatch metrics,
the policy's log-probs. A no-grad forward over the whole batch gives both, but strictly
on-policy (one update per batch) the weights that sampled the responses are the weights the
update starts from, so the hf engine has already computed them: at each sampled position it
holds the logits, and it reports the token's log-prob and the entropy of softmax(logits / T) at
the rollout temperature, the temperature the policy divides by too (qwenlong.core.backends.hf).
They are the same numbers up to the float rounding of a different batch shape, and skipping the
pass saves a forward over every prompt.

They stand in only where that holds: one update per batch (later mini-batches need pi_old, the
policy's own log-probs), no truncated importance sampling (it weighs pi_old against the engine's
mu, so pi_old must be the policy's), every response carrying both values (vLLM reports no
entropy), and the hf engine beside the torch policy in one dtype (a bfloat16 engine's entropies
are not a float32 policy's). The mismatch metrics then read the training forward's own log-probs
(qwenlong.rl.trained_stats), over the tokens it trained on.
"""

from __future__ import annotations

from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import TokenStats
from qwenlong.rl.rollout.batch import RolloutBatch


def rollout_token_stats(batch: RolloutBatch, config: TrainConfig) -> TokenStats | None:
    """The engine's log-probs and entropies of the response tokens as the policy's (0 on
    prompt tokens, like `Policy.forward_logprobs` with the loss mask), or None when the policy
    has to compute them."""
    logprobs, entropy = batch.rollout_logprobs, batch.rollout_entropy
    if logprobs is None or entropy is None or not same_numbers(config):
        return None
    response = batch.packed.loss_mask.bool()
    return TokenStats(
        logprobs=logprobs.where(response, logprobs.new_zeros(())),
        entropy=entropy.where(response, entropy.new_zeros(())),
    )


def same_numbers(config: TrainConfig) -> bool:
    """Whether the engine's log-probs and entropies are the policy's no-grad pass: strictly
    on-policy, without truncated importance sampling, the hf engine and the torch policy in
    one dtype."""
    return (
        config.updates_per_batch == 1
        and config.rollout_correction.tis_cap is None
        and config.rollout.backend == "hf"
        and config.policy.backend == "torch"
        and config.rollout.hf.dtype == config.policy.torch.dtype
    )
