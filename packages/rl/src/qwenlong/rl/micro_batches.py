"""Micro-batch planning: which sequences of a rank's share run through the model together.

Planned once, in the driver, for every data-parallel share, and sent to the ranks as lists of
sequence indices; a rank runs its plan and nothing else. Two reasons to plan centrally: every
rank must run the same number of micro-batches (expert parallelism's all-to-all and pipeline
schedules are collectives, so a rank with fewer, or with no sequences at all, would leave its
peers waiting), and a backend's numerics then depend only on the plan, which tests can pin.

The loss is normalised by global counts (qwenlong.rl.losses), so any division gives the same
gradient; planning only decides the division that bounds memory and wastes least padding.
Sequences are never split: a sequence's tokens attend to each other. With shared prompts
(qwenlong.rl.shared_prefix) the sequences that begin with one prompt are kept together, so the
prompt runs once for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from qwenlong.core.errors import ConfigError
from qwenlong.rl.interfaces import PackedBatch
from qwenlong.rl.shared_prefix import PrefixGroup, prefix_groups, shares_a_prompt

Plan = list[list[int]]
"""Micro-batches, each a list of sequence indices into the rank's batch."""


def plan_padded(lengths: Sequence[int], max_tokens: int | None, max_sequences: int | None) -> Plan:
    """Group sequence indices into micro-batches for a padded forward/backward pass.

    A padded micro-batch costs rows x width. Sequences are taken longest first, and a
    micro-batch is closed when adding the next sequence would make rows x width exceed
    `max_tokens` or rows exceed `max_sequences` (None: no limit). Sorting by length keeps
    padding small: neighbours in the sorted order have similar lengths. A sequence longer than
    `max_tokens` gets a micro-batch of its own rather than an error, because it has to be
    processed somewhere and splitting it would change its attention.
    """
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"micro-batching: max_tokens must be >= 1, got {max_tokens}")
    if max_sequences is not None and max_sequences < 1:
        raise ConfigError(f"micro-batching: max_sequences must be >= 1, got {max_sequences}")
    order = sorted(range(len(lengths)), key=lambda s: (-lengths[s], s))
    batches: Plan = []
    current: list[int] = []
    width = 0
    for sequence in order:
        rows = len(current) + 1
        new_width = max(width, lengths[sequence])
        too_many_tokens = max_tokens is not None and rows * new_width > max_tokens
        too_many_rows = max_sequences is not None and rows > max_sequences
        if current and (too_many_tokens or too_many_rows):
            batches.append(current)
            current, new_width = [], lengths[sequence]
        current.append(sequence)
        width = new_width
    if current:
        batches.append(current)
    return batches


def plan_packed(lengths: Sequence[int], max_tokens: int) -> Plan:
    """Sequence indices grouped into micro-batches of at most `max_tokens` packed tokens.

    A packed micro-batch costs the sum of its lengths (no padding), so this is bin packing:
    first-fit decreasing, taking sequences longest first (ties by index, so the plan is
    deterministic) and putting each into the first micro-batch it fits. A sequence longer than
    `max_tokens` gets a micro-batch of its own rather than an error: it must run somewhere, and
    splitting it would change its attention.
    """
    if max_tokens < 1:
        raise ConfigError(f"micro-batching: max_tokens must be >= 1, got {max_tokens}")
    order = sorted(range(len(lengths)), key=lambda s: (-lengths[s], s))
    batches: Plan = []
    totals: list[int] = []
    for sequence in order:
        length = lengths[sequence]
        if length < 0:
            raise ValueError(f"sequence {sequence} has negative length {length}")
        slot = next((i for i, total in enumerate(totals) if total + length <= max_tokens), None)
        if slot is None:
            batches.append([sequence])
            totals.append(length)
        else:
            batches[slot].append(sequence)
            totals[slot] += length
    return batches


def plan_shared(
    groups: Sequence[PrefixGroup],
    lengths: Sequence[int],
    max_tokens: int | None,
    max_sequences: int | None,
) -> Plan:
    """Sequence indices grouped into micro-batches that keep a prompt's sequences together.

    A shared micro-batch (qwenlong.rl.shared_prefix) runs its g prompts as g rows padded to the
    longest prompt, then its r sequences as r rows of their remaining tokens padded to the
    longest: it costs g x prompt width + r x response width. Groups are taken longest prompt
    first and a micro-batch is closed when the next group would push that cost past
    `max_tokens` or its rows past `max_sequences`. A group too big for either limit alone is
    cut into pieces that fit (each piece runs the prompt again: exact, only less shared); a
    piece of one sequence always fits, as a sequence longer than the limit runs alone.
    """
    units: list[tuple[int, list[int]]] = []
    for group in groups:
        rest = [max(lengths[s] - group.prefix - 1, 0) for s in group.sequences]
        size = len(group.sequences)
        if max_sequences is not None:
            size = min(size, max_sequences)
        if max_tokens is not None and max(rest) > 0:
            size = min(size, max((max_tokens - group.prefix) // max(rest), 1))
        units += [
            (group.prefix, group.sequences[i : i + size])
            for i in range(0, len(group.sequences), size)
        ]
    order = sorted(range(len(units)), key=lambda u: (-units[u][0], u))
    batches: Plan = []
    current: list[int] = []
    prompts = prompt_width = response_width = 0
    for u in order:
        prefix, members = units[u]
        widest = max(max(lengths[s] - prefix - 1, 0) for s in members)
        new_prompt, new_response = max(prompt_width, prefix), max(response_width, widest)
        rows = len(current) + len(members)
        cost = (prompts + 1) * new_prompt + rows * new_response
        too_many_tokens = max_tokens is not None and cost > max_tokens
        too_many_rows = max_sequences is not None and rows > max_sequences
        if current and (too_many_tokens or too_many_rows):
            batches.append(current)
            current, prompts, new_prompt, new_response = [], 0, prefix, widest
        current += members
        prompts += 1
        prompt_width, response_width = new_prompt, new_response
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class MicroBatchPlanner:
    """A backend's micro-batch limits, and the plan they give a batch."""

    max_tokens: int | None
    """Tokens per micro-batch (padded: rows x longest row; packed: the sum); None: no limit."""
    max_sequences: int | None
    """Sequences per micro-batch (padded plans only); None: no limit."""
    packed: bool = False
    """Sequences run back to back without padding (THD, Megatron) rather than padded rows."""
    shared_prompts: bool = False
    """Sequences that begin with one prompt run together, the prompt once (padded plans only;
    qwenlong.rl.shared_prefix)."""

    def plan(self, batch: PackedBatch, wanted: Tensor | None = None) -> Plan:
        """The micro-batches of `batch`'s sequences; with `wanted` ([N] bool), only of the
        sequences holding a wanted token (the others need no forward pass at all)."""
        sequences = list(range(batch.num_sequences))
        if wanted is not None:
            sequences = torch.unique(batch.sequence_index()[wanted.bool()]).tolist()
        lengths = batch.lengths().tolist()
        if self.shared_prompts and not self.packed:
            groups = prefix_groups(batch, sequences)
            if shares_a_prompt(groups):
                return plan_shared(groups, lengths, self.max_tokens, self.max_sequences)
        chosen = [lengths[s] for s in sequences]
        if self.packed:
            plan = plan_packed(chosen, self.max_tokens or max(chosen, default=1))
        else:
            plan = plan_padded(chosen, self.max_tokens, self.max_sequences)
        return [[sequences[i] for i in micro] for micro in plan]


def equal_counts(plans: Sequence[Plan]) -> list[Plan]:
    """Every plan padded with empty micro-batches to the longest plan's count (at least one),
    so every rank runs the same number of forward/backward passes."""
    count = max([len(plan) for plan in plans] + [1])
    return [[*plan, *([] for _ in range(count - len(plan)))] for plan in plans]
