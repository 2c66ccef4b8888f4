"""Shared-prompt scoring: the G responses of a group run against one forward pass of their prompt.

A rollout packs the G responses to a prompt as G sequences that begin with the same prompt ids.
Scored one by one, the prompt goes through the model G times; in the paper's regime (60K-120K
input tokens, a few thousand output tokens, G = 8) that is nearly all of the work. Here each
distinct prompt of a micro-batch runs once, keeping its KV cache (with gradients, when training),
and every sequence's response then runs as one row reading that cache: position ids continue
from the prompt's length, and the attention mask admits the row's own prompt and its own earlier
tokens only.

Why this is exact. With causal attention a prompt token's hidden states depend on the prompt
alone, so they are the same in each of the G sequences; the response rows attend to the same
keys and values they would have computed themselves. Each row reads the prompt's cache through
an index (`batch_select_indices`), whose backward pass sums the G rows' contributions: the
gradient reaching the prompt's computation is the sum over the G sequences, what G separate
backward passes would accumulate (up to float summation order). A MoE router decides per token,
so the prompt's tokens go to the experts they would go to in every sequence. The torch policy
adds no load-balancing loss; one that counts routed tokens would have to weigh the prompt's G
times to stay exact.

Which sequences share a prompt is read off the batch: the tokens before the first loss-mask
token, compared id by id, so groups need no bookkeeping across the seams, identical prompts
drawn twice share too, and sequences with a prompt of their own (the memory agent's steps) are
simply groups of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from qwenlong.core.errors import BackendError
from qwenlong.rl.entropy import token_logprobs_and_entropy
from qwenlong.rl.interfaces import PackedBatch
from qwenlong.rl.padded_forward import head_columns


@dataclass(frozen=True)
class PrefixGroup:
    """Sequences of a batch that begin with the same prompt."""

    prefix: int
    """Tokens of the shared prompt (at least 1, at most the shortest member)."""
    sequences: list[int]
    """Indices into the batch, in the order given."""


def prompt_lengths(batch: PackedBatch) -> Tensor:
    """[S] int64: tokens before each sequence's first loss-mask token, at least 1 (the first
    token has no prediction, so it is always context) and the whole sequence when it has no
    loss-mask token."""
    sequences, tokens = batch.num_sequences, batch.num_tokens
    starts, ends = batch.cu_seqlens[:-1], batch.cu_seqlens[1:]
    marked = torch.where(batch.loss_mask.bool(), torch.arange(tokens), tokens)
    first = torch.full((sequences,), tokens, dtype=torch.long)
    first = first.scatter_reduce(0, batch.sequence_index(), marked, "amin")
    return torch.minimum((first - starts).clamp(min=1), ends - starts)


def prefix_groups(batch: PackedBatch, sequences: Sequence[int]) -> list[PrefixGroup]:
    """`sequences` grouped by identical prompt ids (`prompt_lengths`), groups in order of first
    appearance, members in the order given."""
    lengths = prompt_lengths(batch)
    starts = batch.cu_seqlens[:-1].tolist()
    ids = batch.input_ids.numpy()
    groups: dict[bytes, PrefixGroup] = {}
    for s in sequences:
        prefix = int(lengths[s])
        key = ids[starts[s] : starts[s] + prefix].tobytes()
        groups.setdefault(key, PrefixGroup(prefix, [])).sequences.append(s)
    return list(groups.values())


def shares_a_prompt(groups: Sequence[PrefixGroup]) -> bool:
    """Whether some prompt would run once for several sequences."""
    return any(len(group.sequences) > 1 for group in groups)


@dataclass
class SharedMicroBatch:
    """A micro-batch as its distinct prompts (one right-padded row each) and its sequences'
    responses (one right-padded row each, reading its prompt's cache), and where each predicted
    token's logits are read."""

    prefix_ids: Tensor
    """[g, p] each distinct prompt, right-padded."""
    prefix_mask: Tensor
    """[g, p] 1 on real prompt tokens."""
    prefix_keep: Tensor | None
    """The prompt columns the output head runs on (None: all)."""
    suffix_ids: Tensor
    """[r, w] each sequence's tokens after its prompt but the last (which predicts nothing),
    right-padded; w may be 0."""
    suffix_mask: Tensor
    """[r, p + w] the attention mask over the cache's prompt columns and the row's own."""
    suffix_positions: Tensor
    """[r, w] position ids, continuing from the row's prompt length."""
    suffix_keep: Tensor | None
    """The response columns the output head runs on (None: all)."""
    member_prefix: Tensor
    """[r] the prompt row each sequence row reads."""
    prefix_rows: Tensor
    """[m1] prompt row of each prediction read from a prompt column."""
    prefix_slots: Tensor
    """[m1] its slot among the kept prompt columns."""
    suffix_rows: Tensor
    """[m2] sequence row of each prediction read from a response column."""
    suffix_slots: Tensor
    """[m2] its slot among the kept response columns."""
    targets: Tensor
    """[m1 + m2] the predicted token ids, prompt-column reads first."""
    positions: Tensor
    """[m1 + m2] (on the CPU) index of each predicted token in the packed batch."""


def pad_shared_micro_batch(
    batch: PackedBatch,
    groups: Sequence[PrefixGroup],
    wanted: Tensor | None,
    *,
    pad_id: int,
    device: torch.device,
    head_subset: bool,
) -> SharedMicroBatch:
    """Lay out `groups` of `batch` for `score_shared_micro_batch`; predict every token but each
    sequence's first or, with `wanted` ([N] bool), the marked ones.

    A sequence's token at column c (c >= 1) is predicted by column c - 1: a prompt column when
    c - 1 < prefix (the prompt's own tokens and the response's first), else response column
    c - 1 - prefix of the sequence's row.
    """
    starts = batch.cu_seqlens[:-1].tolist()
    ends = batch.cu_seqlens[1:].tolist()
    members = [(g, s) for g, group in enumerate(groups) for s in group.sequences]
    width_p = max(group.prefix for group in groups)
    width_s = max(max(ends[s] - starts[s] - groups[g].prefix - 1, 0) for g, s in members)
    prefix_ids = torch.full((len(groups), width_p), pad_id, dtype=torch.long)
    prefix_mask = torch.zeros((len(groups), width_p), dtype=torch.long)
    for g, group in enumerate(groups):
        start = starts[group.sequences[0]]
        prefix_ids[g, : group.prefix] = batch.input_ids[start : start + group.prefix]
        prefix_mask[g, : group.prefix] = 1
    suffix_ids = torch.full((len(members), width_s), pad_id, dtype=torch.long)
    suffix_mask = torch.zeros((len(members), width_p + width_s), dtype=torch.long)
    suffix_positions = torch.zeros((len(members), width_s), dtype=torch.long)
    # Where each prediction is read: (row, column, packed position), from the prompt rows'
    # logits or from the sequence rows'.
    from_prompts: list[tuple[Tensor, Tensor, Tensor]] = []
    from_rows: list[tuple[Tensor, Tensor, Tensor]] = []
    for row, (g, s) in enumerate(members):
        start, end, prefix = starts[s], ends[s], groups[g].prefix
        own = max(end - start - prefix - 1, 0)
        suffix_ids[row, :own] = batch.input_ids[start + prefix : start + prefix + own]
        suffix_mask[row] = torch.cat([prefix_mask[g], (torch.arange(width_s) < own).long()])
        suffix_positions[row] = prefix + torch.arange(width_s)
        predicted = torch.arange(start + 1, end)
        if wanted is not None:
            predicted = predicted[wanted[predicted]]
        column = predicted - start - 1
        early = column < prefix
        from_prompts.append((torch.full_like(column[early], g), column[early], predicted[early]))
        late = ~early
        from_rows.append(
            (torch.full_like(column[late], row), column[late] - prefix, predicted[late])
        )
    prefix_rows, prefix_columns, early_positions = _stacked(from_prompts)
    suffix_rows, suffix_columns, late_positions = _stacked(from_rows)
    prefix_keep, prefix_slots = head_columns(prefix_columns, width_p, head_subset, device)
    suffix_keep, suffix_slots = head_columns(suffix_columns, width_s, head_subset, device)
    positions = torch.cat([early_positions, late_positions])
    return SharedMicroBatch(
        prefix_ids=prefix_ids.to(device),
        prefix_mask=prefix_mask.to(device),
        prefix_keep=prefix_keep,
        suffix_ids=suffix_ids.to(device),
        suffix_mask=suffix_mask.to(device),
        suffix_positions=suffix_positions.to(device),
        suffix_keep=suffix_keep,
        member_prefix=torch.tensor([g for g, _ in members], dtype=torch.long, device=device),
        prefix_rows=prefix_rows.to(device),
        prefix_slots=prefix_slots.to(device),
        suffix_rows=suffix_rows.to(device),
        suffix_slots=suffix_slots.to(device),
        targets=batch.input_ids[positions].to(device),
        positions=positions,
    )


def score_shared_micro_batch(
    model: nn.Module, micro: SharedMicroBatch, temperature: float, chunk_size: int
) -> tuple[Tensor, Tensor]:
    """(log-probs [m], entropy [m]) of the micro-batch's targets under softmax(logits / T), in
    `micro.positions` order: one forward over the prompts, keeping their cache, then one over
    the responses reading it. The log-probs carry gradient when autograd is on (through the
    responses into the prompts' cache too); the entropy never does."""
    width_p = micro.prefix_ids.shape[1]
    prompt_positions = torch.arange(width_p, device=micro.prefix_ids.device)
    prompts = model(
        input_ids=micro.prefix_ids,
        attention_mask=micro.prefix_mask,
        position_ids=prompt_positions.expand_as(micro.prefix_ids),
        use_cache=True,
        **_keep(micro.prefix_keep),
    )
    selected = [prompts.logits[micro.prefix_rows, micro.prefix_slots]]
    if micro.suffix_ids.shape[1] and micro.suffix_rows.numel():
        from transformers.cache_utils import DynamicLayer  # here: planners import this module

        cache = prompts.past_key_values
        if any(type(layer) is not DynamicLayer for layer in cache.layers):
            raise BackendError(
                "shared-prompt scoring needs plain full-attention cache layers; this model has "
                "others (sliding windows?): set policy.torch.shared_prompts: false"
            )
        cache.batch_select_indices(micro.member_prefix)
        responses = model(
            input_ids=micro.suffix_ids,
            attention_mask=micro.suffix_mask,
            position_ids=micro.suffix_positions,
            past_key_values=cache,
            use_cache=True,
            **_keep(micro.suffix_keep),
        )
        selected.append(responses.logits[micro.suffix_rows, micro.suffix_slots])
    return token_logprobs_and_entropy(
        torch.cat(selected), micro.targets, temperature=temperature, chunk_size=chunk_size
    )


def _stacked(reads: list[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """(rows, columns, positions) of every read, each concatenated."""
    rows, columns, positions = (torch.cat([read[i] for read in reads]) for i in range(3))
    return rows, columns, positions


def _keep(columns: Tensor | None) -> dict[str, Tensor]:
    return {} if columns is None else {"logits_to_keep": columns}
