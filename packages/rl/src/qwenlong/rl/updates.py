"""From a scored rollout batch to optimizer steps: which tokens train, with what weight.

A token trains when it is a response token, its sequence survives AEPO (Eq.11: while the
controller is active, negative-advantage sequences are dropped) and negative-gradient
clipping keeps it (Eq.8-9). The update carries each token's advantage and the denominator of
the token-level loss (Eq.4) over the whole batch: every response token by default (a masked
token stops contributing, not counting: `loss.denominator_tokens`), and, for the per-group
form of Eq.4 (`loss.aggregation: token_group`), each token's group normaliser.
"""

from __future__ import annotations

import torch
from torch import Tensor

from qwenlong.core.errors import ConfigError
from qwenlong.core.seeding import derive_seed
from qwenlong.rl.aepo import AepoController
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import PackedBatch, Policy, PolicyUpdate, StepStats, TokenStats
from qwenlong.rl.losses import LossConfig
from qwenlong.rl.masks import negative_gradient_mask
from qwenlong.rl.overlong import kept_responses
from qwenlong.rl.rollout_correction import truncated_is_weights


def policy_update(
    packed: PackedBatch,
    advantages: Tensor,
    stats: TokenStats,
    aepo: AepoController,
    config: TrainConfig,
    reference: Policy | None = None,
    rollout_logprobs: Tensor | None = None,
    *,
    rewards: Tensor | None = None,
    groups: Tensor | None = None,
    truncated: Tensor | None = None,
) -> PolicyUpdate:
    """The update of the whole batch from per-sequence `advantages` [S] and the policy's
    token statistics. Old log-probs are passed only when the batch gets several updates
    (off-policy); reference log-probs only when a KL `reference` policy is given; truncated
    importance weights only when `rollout_correction.tis_cap` is set and the engine's
    `rollout_logprobs` [N] are known. Per-sequence `rewards` [S] feed AEPO's `drop:
    unrewarded`, per-sequence `groups` [S] (the prompt each answers) the "token_group"
    aggregation, per-sequence `truncated` [S] DAPO's overlong filtering."""
    truncated_tokens = None if truncated is None else packed.to_tokens(truncated)
    response = kept_responses(packed.loss_mask, truncated_tokens, config.overlong)
    advantages_tok = packed.to_tokens(advantages) * response
    keep_seq = packed.to_tokens(aepo.mask(advantages, rewards))
    clip_keep = negative_gradient_mask(
        advantages_tok, stats.entropy, packed.sequence_index(), response, config.negative_clip
    )
    token_mask = response & keep_seq & clip_keep
    counted = counted_tokens(response, token_mask, config.loss)
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
        global_tokens=int(counted.sum()),
        is_weights=weights,
        token_weights=_group_weights(packed, groups, counted, config.loss),
    )


def counted_tokens(response: Tensor, token_mask: Tensor, loss: LossConfig) -> Tensor:
    """[N] bool: the tokens Eq.4's denominator counts (`loss.denominator_tokens`)."""
    return response.bool() if loss.denominator_tokens == "response" else token_mask.bool()


def group_token_weights(token_groups: Tensor, counted: Tensor) -> Tensor:
    """[N] float32: 1 / (counted tokens of the token's group x groups with a counted token) on
    counted tokens, 0 elsewhere: summed against per-token terms, each group's token mean,
    averaged over groups (Eq.4 as the paper words it)."""
    counted = counted.bool()
    weights = torch.zeros(counted.shape, dtype=torch.float64)
    if counted.any():
        ids, inverse = torch.unique(token_groups[counted], return_inverse=True)
        sizes = torch.bincount(inverse, minlength=ids.numel()).double()
        weights[counted] = 1.0 / (sizes[inverse] * ids.numel())
    return weights.float()


def _group_weights(
    packed: PackedBatch, groups: Tensor | None, counted: Tensor, loss: LossConfig
) -> Tensor | None:
    if loss.aggregation != "token_group":
        return None
    if groups is None:
        raise ConfigError("loss.aggregation token_group needs each sequence's group")
    return group_token_weights(packed.to_tokens(groups), counted)


def update_policy(
    policy: Policy,
    packed: PackedBatch,
    update: PolicyUpdate,
    config: TrainConfig,
    step: int,
    groups: Tensor | None = None,
    truncated: Tensor | None = None,
) -> StepStats | None:
    """`config.updates_per_batch` optimizer steps over disjoint mini-batches of the sequences.

    One update (the paper) trains on the whole batch with `update` as is. Several split the
    sequences into shuffled mini-batches (seeded by (seed, step)); each is its own optimizer
    step normalised by its own token count, with the old log-probs taken before the first.
    Mini-batches left without a loss token are skipped; None when nothing was trained. Each
    mini-batch's normalisers (token count, group weights from the sequences' `groups`) are its
    own (`groups` and `truncated` per sequence, as `policy_update` got them). Returns the mean
    loss and grad norm over the updates and the summed token counts.
    """
    if config.updates_per_batch == 1:
        return policy.train_step(packed, update) if update.token_mask.any() else None
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "minibatch", step))
    results = []
    for sequences in minibatches(packed.num_sequences, config.updates_per_batch, generator):
        positions = packed.token_positions(sequences)
        mask = update.token_mask[positions]
        if mask.any():
            sub = packed.select(sequences)
            chosen = torch.tensor(sequences)
            cut = None if truncated is None else sub.to_tokens(truncated[chosen])
            response = kept_responses(sub.loss_mask, cut, config.overlong)
            counted = counted_tokens(response, mask, config.loss)
            part = update.select(positions, global_tokens=int(counted.sum()))
            if part.token_weights is not None:
                sub_groups = None if groups is None else groups[chosen]
                part.token_weights = _group_weights(sub, sub_groups, counted, config.loss)
            results.append(policy.train_step(sub, part))
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
