"""Data parallelism: how a packed batch is divided across ranks and micro-batches, and how the
ranks' gradients and statistics are combined.

The loss is normalised by counts of the global batch (qwenlong.rl.losses), so any division of
the sequences gives the same gradient once the parts are summed; these functions only decide
the division that balances the work. Sequences are never split: a sequence's tokens attend to
each other, so its forward pass has to happen in one place.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from qwenlong.core.errors import ConfigError
from qwenlong.rl.interfaces import PackedBatch, StepStats


def split_for_ranks(batch: PackedBatch, world_size: int) -> list[list[int]]:
    """Sequence indices for each of `world_size` ranks, balanced by token count.

    Longest-first greedy assignment (LPT): each sequence, from the longest down, goes to the rank
    holding the fewest tokens so far (the lowest rank on ties). Every sequence lands on exactly
    one rank; a rank's indices are returned in ascending order so it sees the sequences in batch
    order. The heaviest rank then carries at most the average load plus the longest sequence,
    and the heaviest rank sets a data-parallel step's time (every rank waits for it at the
    all-reduce). With fewer sequences than ranks some ranks get none; they still take part in
    the all-reduce with zero gradients.
    """
    if world_size < 1:
        raise ConfigError(f"data parallel: world_size must be >= 1, got {world_size}")
    lengths = batch.lengths().tolist()
    order = sorted(range(len(lengths)), key=lambda s: (-lengths[s], s))
    loads = [(0, rank) for rank in range(world_size)]
    parts: list[list[int]] = [[] for _ in range(world_size)]
    for sequence in order:
        load, rank = heapq.heappop(loads)
        parts[rank].append(sequence)
        heapq.heappush(loads, (load + lengths[sequence], rank))
    return [sorted(part) for part in parts]


def micro_batches(
    lengths: Sequence[int], max_tokens: int | None, max_sequences: int | None
) -> list[list[int]]:
    """Group sequence indices into micro-batches for a padded forward/backward pass.

    A micro-batch is padded to its longest sequence, so its cost is rows x width. Sequences are
    taken longest first, and a micro-batch is closed when adding the next sequence would make
    rows x width exceed `max_tokens` or rows exceed `max_sequences` (None: no limit). Sorting by
    length keeps padding small: neighbours in the sorted order have similar lengths. A sequence
    longer than `max_tokens` gets a micro-batch of its own rather than an error, because it has
    to be processed somewhere and splitting it would change its attention.
    """
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"micro-batching: max_tokens must be >= 1, got {max_tokens}")
    if max_sequences is not None and max_sequences < 1:
        raise ConfigError(f"micro-batching: max_sequences must be >= 1, got {max_sequences}")
    order = sorted(range(len(lengths)), key=lambda s: (-lengths[s], s))
    batches: list[list[int]] = []
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


def merge_step_stats(parts: Sequence[StepStats]) -> StepStats:
    """Combine the StepStats of the ranks of one data-parallel step.

    Every loss and loss statistic from qwenlong.rl.losses is a contribution normalised by a
    global count, so the step's value is the plain sum over ranks; token counts add too. The
    gradient norm is the same on every rank after the all-reduce, so rank 0's is reported.
    """
    if not parts:
        raise ValueError("merge_step_stats needs at least one rank's stats")
    extra: dict[str, float] = {}
    for part in parts:
        for key, value in part.extra.items():
            extra[key] = extra.get(key, 0.0) + value
    return StepStats(
        loss=sum(part.loss for part in parts),
        grad_norm=parts[0].grad_norm,
        tokens=sum(part.tokens for part in parts),
        loss_tokens=sum(part.loss_tokens for part in parts),
        extra=extra,
    )


def all_reduce_gradients(
    grads: Sequence[Tensor], group: dist.ProcessGroup | None, bucket_bytes: int
) -> None:
    """Sum `grads` in place across the ranks of `group`, in flat buckets of about `bucket_bytes`.

    One collective per bucket rather than per tensor: gloo and NCCL both pay a fixed latency per
    call, and a MoE layer has many small tensors (norms, routers). Buckets bound the extra
    memory to one bucket per dtype at a time. SUM, not mean: each rank's gradient is already its
    share of the global loss (the loss is divided by the global token count), so the sum is the
    gradient of the whole batch.
    """
    bucket: list[Tensor] = []
    size = 0
    for grad in grads:
        if bucket and (grad.dtype != bucket[0].dtype or size + _nbytes(grad) > bucket_bytes):
            _reduce_bucket(bucket, group)
            bucket, size = [], 0
        bucket.append(grad)
        size += _nbytes(grad)
    if bucket:
        _reduce_bucket(bucket, group)


def _nbytes(tensor: Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _reduce_bucket(bucket: list[Tensor], group: dist.ProcessGroup | None) -> None:
    flat = torch.cat([grad.reshape(-1) for grad in bucket])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
    offset = 0
    for grad in bucket:
        count = grad.numel()
        grad.copy_(flat[offset : offset + count].view_as(grad))
        offset += count
