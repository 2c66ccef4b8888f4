"""Data parallelism: how a packed batch is divided across data-parallel ranks, and how the
ranks' gradients are summed.

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
from qwenlong.rl.interfaces import PackedBatch


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
