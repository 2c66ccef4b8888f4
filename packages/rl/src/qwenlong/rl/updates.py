"""From a scored rollout batch to optimizer steps: which tokens train, with what weight.

A token trains when it is a response token, its sequence survives AEPO (Eq.11: while the
controller is active, negative-advantage sequences are dropped) and negative-gradient
clipping keeps it (Eq.8-9). The update carries each token's advantage and the count of
training tokens over the whole batch, the denominator of the token-level loss (Eq.4).
"""

from __future__ import annotations

import torch
from torch import Tensor

from qwenlong.core.errors import ConfigError
from qwenlong.core.seeding import derive_seed
from qwenlong.rl.aepo import AepoController
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import PackedBatch, Policy, PolicyUpdate, StepStats, TokenStats
from qwenlong.rl.masks import negative_gradient_mask
from qwenlong.rl.rollout_correction import truncated_is_weights


def policy_update(
    packed: PackedBatch,
    advantages: Tensor,
    stats: TokenStats,
    aepo: AepoController,
    config: TrainConfig,
    reference: Policy | None = None,
    rollout_logprobs: Tensor | None = None,
) -> PolicyUpdate:
    """The update of the whole batch from per-sequence `advantages` [S] and the policy's
    token statistics. Old log-probs are passed only when the batch gets several updates
    (off-policy); reference log-probs only when a KL `reference` policy is given; truncated
    importance weights only when `rollout_correction.tis_cap` is set and the engine's
    `rollout_logprobs` [N] are known."""
    response = packed.loss_mask
    advantages_tok = packed.to_tokens(advantages) * response
    keep_seq = packed.to_tokens(aepo.mask(advantages))
    clip_keep = negative_gradient_mask(
        advantages_tok, stats.entropy, packed.sequence_index(), response, config.negative_clip
    )
    token_mask = response & keep_seq & clip_keep
    ref = reference.forward_logprobs(packed, response) if reference is not None else None
    cap = config.rollout_correction.tis_cap
    weights = None
    if cap is not None and rollout_logprobs is not None:
        weights = truncated_is_weights(stats.logprobs, rollout_logprobs, token_mask, cap)
    return PolicyUpdate(
        advantages=advantages_tok,
        token_mask=token_mask,
        old_logprobs=stats.logprobs if config.updates_per_batch > 1 else None,
        ref_logprobs=ref.logprobs if ref is not None else None,
        global_tokens=int(token_mask.sum()),
        is_weights=weights,
    )


def update_policy(
    policy: Policy, packed: PackedBatch, update: PolicyUpdate, config: TrainConfig, step: int
) -> StepStats | None:
    """`config.updates_per_batch` optimizer steps over disjoint mini-batches of the sequences.

    One update (the paper) trains on the whole batch with `update` as is. Several split the
    sequences into shuffled mini-batches (seeded by (seed, step)); each is its own optimizer
    step normalised by its own token count, with the old log-probs taken before the first.
    Mini-batches left without a loss token are skipped; None when nothing was trained.
    Returns the mean loss and grad norm over the updates and the summed token counts.
    """
    if config.updates_per_batch == 1:
        return policy.train_step(packed, update) if update.global_tokens else None
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "minibatch", step))
    results = []
    for sequences in minibatches(packed.num_sequences, config.updates_per_batch, generator):
        positions = packed.token_positions(sequences)
        tokens = int(update.token_mask[positions].sum())
        if tokens:
            part = update.select(positions, global_tokens=tokens)
            results.append(policy.train_step(packed.select(sequences), part))
    return StepStats.mean_over_updates(results) if results else None


def minibatches(num_sequences: int, count: int, generator: torch.Generator) -> list[list[int]]:
    """Split sequence indices into `count` shuffled mini-batches of near-equal size.

    Sizes differ by at most one and every sequence appears exactly once. Each mini-batch is
    returned sorted, which keeps sequences of one group together without changing what is
    learned.
    """
    if count < 1:
        raise ValueError(f"mini-batch count must be >= 1, got {count}")
    if count > num_sequences:
        raise ConfigError(
            f"{count} updates per batch but only {num_sequences} sequences: every mini-batch "
            "needs at least one"
        )
    order = torch.randperm(num_sequences, generator=generator).tolist()
    return [sorted(order[i::count]) for i in range(count)]
