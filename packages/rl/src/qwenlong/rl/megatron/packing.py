"""Packed (THD) micro-batches, their context-parallel split, and the global token count.

Megatron-Core with Transformer Engine runs packed sequences without padding ("thd": tokens,
heads, dim, with cu_seqlens marking where each sequence starts). Context parallelism (CP) then
divides every sequence over the CP ranks the way TE's `thd_get_partitioned_indices` does: the
sequence is cut into 2 x CP equal chunks and rank r keeps chunks r and 2CP-1-r. Under a causal
mask a query at position p attends to p + 1 keys, so early chunks are cheap and late ones
dear; pairing the i-th cheapest with the i-th dearest gives every rank the same work, where a
plain split into CP pieces would give the last rank about 2CP-1 times the first one's.

Padding: equal chunks need each sequence's length to be a multiple of 2 x CP, so each sequence
is padded at its END with `pad_id` tokens whose loss mask is False and whose `source` is -1.
Their positions continue the sequence's (length, length + 1, ...), so under the causal mask no
real token ever attends to them; cp_unshard drops them. `CpShard.cu_seqlens_padded` holds the
padded bounds TE wants as `cu_seqlens_q_padded`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class CpShard:
    """One CP rank's part of a packed batch: per sequence, its chunks r and 2CP-1-r.

    Every per-token tensor is [n_local], n_local = sum of padded lengths / CP, the same on every
    rank of the CP group (which is what lets cp_unshard use a plain all-gather).
    """

    input_ids: Tensor
    """[n_local] int64: the tokens, `pad_id` on padding."""
    loss_mask: Tensor
    """[n_local] bool: the batch's loss mask cut like the tokens, False on padding."""
    positions: Tensor
    """[n_local] int64: each token's position within its own sequence (for RoPE); padding
    continues the count past the sequence's length."""
    sequence_index: Tensor
    """[n_local] int64: the sequence each token (padding included) belongs to."""
    source: Tensor
    """[n_local] int64: each token's index in the original packed batch; -1 on padding."""
    cu_seqlens: Tensor
    """[S+1] int64: local bounds, sequence s holding padded_length(s) / CP tokens here."""
    cu_seqlens_padded: Tensor
    """[S+1] int64: the padded sequences' bounds over the whole CP group."""
    unshard_index: Tensor
    """[N] int64: where original token i sits in the CP group's all-gathered [CP x n_local]
    values, flattened rank by rank."""

    @property
    def is_padding(self) -> Tensor:
        """[n_local] bool: True on padding tokens."""
        return self.source < 0

    def take(self, values: Tensor, fill: float | bool = 0) -> Tensor:
        """Cut any per-token tensor of the original batch ([N, ...]: labels shifted BEFORE
        sharding, advantages, masks) like the tokens, `fill` on padding."""
        out = values[self.source.clamp(min=0)]
        return out.masked_fill(self.is_padding.view(-1, *[1] * (values.dim() - 1)), fill)


def cp_shard(
    input_ids: Tensor,
    cu_seqlens: Tensor | None,
    cp_size: int,
    cp_rank: int,
    *,
    loss_mask: Tensor | None = None,
    pad_id: int = 0,
) -> CpShard:
    """CP rank `cp_rank`'s shard of the packed `input_ids` [N] (several sequences bounded by
    `cu_seqlens` [S+1], or one sequence with `cu_seqlens` None); `loss_mask` [N] (None: every real token) is cut alongside.

    Next-token targets cross chunk boundaries (the last token of chunk r predicts the first of
    chunk r + 1, held by another rank), so shift labels on the full batch and cut them with
    `CpShard.take`. With cp_size 1 nothing is padded: the shard is the batch.
    """
    if not 0 <= cp_rank < cp_size:
        raise ValueError(f"cp_rank must be in [0, {cp_size}), got {cp_rank}")
    total = int(input_ids.numel())
    cu_seqlens = torch.tensor([0, total]) if cu_seqlens is None else cu_seqlens.long().cpu()
    if int(cu_seqlens[0]) != 0 or int(cu_seqlens[-1]) != total:
        raise ValueError(f"cu_seqlens must run from 0 to {total}, got {cu_seqlens.tolist()}")
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()
    chunks = 2 * cp_size if cp_size > 1 else 1
    padded = [-(-length // chunks) * chunks for length in lengths]
    padded_bounds = torch.tensor([0, *padded], dtype=torch.long).cumsum(0)
    sources = [_rank_sources(cu_seqlens, lengths, padded, cp_size, r) for r in range(cp_size)]
    mine = sources[cp_rank]
    gathered = torch.cat([s for s, _, _ in sources])
    real = gathered >= 0
    unshard_index = torch.empty(total, dtype=torch.long)
    unshard_index[gathered[real]] = torch.arange(gathered.numel())[real]
    device = input_ids.device
    source, positions, sequence_index = (t.to(device) for t in mine)
    padding = source < 0
    safe = source.clamp(min=0)
    ids = input_ids[safe].masked_fill(padding, pad_id)
    mask = ~padding if loss_mask is None else loss_mask.bool()[safe] & ~padding
    return CpShard(
        input_ids=ids,
        loss_mask=mask,
        positions=positions,
        sequence_index=sequence_index,
        source=source,
        cu_seqlens=(padded_bounds // cp_size).to(device),
        cu_seqlens_padded=padded_bounds.to(device),
        unshard_index=unshard_index.to(device),
    )


def _rank_sources(
    cu_seqlens: Tensor, lengths: list[int], padded: list[int], cp_size: int, rank: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(source index or -1, position, sequence) of each token rank `rank` holds."""
    pieces: list[Tensor] = []
    sequences: list[Tensor] = []
    for s, width in enumerate(padded):
        chunk = width // (2 * cp_size) if cp_size > 1 else width
        picks = [rank, 2 * cp_size - 1 - rank] if cp_size > 1 else [0]
        positions = torch.cat([torch.arange(c * chunk, (c + 1) * chunk) for c in picks])
        pieces.append(positions)
        sequences.append(torch.full_like(positions, s))
    positions = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)
    sequence = torch.cat(sequences) if sequences else torch.zeros(0, dtype=torch.long)
    lengths_t = torch.tensor(lengths, dtype=torch.long)
    starts = cu_seqlens[:-1]
    source = torch.where(positions < lengths_t[sequence], starts[sequence] + positions, -1)
    return source, positions, sequence


def cp_unshard(local_values: Tensor, shard: CpShard, group: dist.ProcessGroup | None) -> Tensor:
    """[N, ...] per-token results of the whole batch, in its original packed order, from every
    CP rank's [n_local, ...] `local_values` (padding dropped).

    For results (log-probs, entropy, for the driver), not for the loss: this all-gather has no
    backward, and needs none, since each rank computes the loss on its own tokens.
    """
    if local_values.shape[0] != shard.source.numel():
        raise ValueError(
            f"{local_values.shape[0]} values for a shard of {shard.source.numel()} tokens"
        )
    values = local_values.detach().contiguous()
    parts = [torch.empty_like(values) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, values, group=group)
    return torch.cat(parts)[shard.unshard_index]


def global_token_count(local_count: int, dp_cp_group: dist.ProcessGroup | None) -> int:
    """Loss tokens of the whole global batch: `local_count` summed over the data-parallel AND
    context-parallel ranks (`dp_cp_group`: Megatron's data-parallel group with context
    parallel, `get_data_parallel_group(with_context_parallel=True)`).

    Eq.4 divides by the global batch's token count. Data-parallel ranks hold different
    sequences; each CP rank holds only a part of every sequence's tokens (its shard's loss
    mask). Summing over both groups counts each loss token exactly once, so every rank's
    sum(loss over its tokens) / count, summed again by the gradient all-reduce over the same
    group (a SUM, Megatron's `calculate_per_token_loss`, not a mean), gives the same step for
    the same batch whatever the DP x CP layout. Tensor- and pipeline-parallel peers see the
    same tokens and must not be summed. Without a process group the count is `local_count`.
    """
    if not dist.is_available() or not dist.is_initialized():
        return int(local_count)
    count = torch.tensor([int(local_count)], dtype=torch.long)
    dist.all_reduce(count, op=dist.ReduceOp.SUM, group=dp_cp_group)
    return int(count.item())
