"""A micro-batch in the THD format Transformer Engine's attention takes: the sequences back to
back without a mask, their bounds in Megatron's `PackedSeqParams`.

Under context parallel each sequence is cut into 2 x CP chunks and rank r keeps chunks r and
2CP-1-r of EVERY sequence (qwenlong.rl.megatron.packing.cp_shard, TE's own partitioning), so
causal attention work is balanced per sequence, not just per row; each sequence is padded at
its end to a multiple of 2 x CP, where no real token can see the padding. When the row must
reach a given length (the all-gather dispatcher's equal blocks), one more padding sequence
fills it. TE takes the sequences' bounds over the whole CP group and this rank's tokens.
"""

from __future__ import annotations

import torch

from qwenlong.rl.interfaces import PackedBatch
from qwenlong.rl.megatron.packing import cp_shard
from qwenlong.rl.megatron.row import PackedRow


def _chunks(cp_size: int) -> int:
    return 2 * cp_size if cp_size > 1 else 1


def thd_tokens(batch: PackedBatch, cp_size: int) -> int:
    """Tokens of the THD row over the whole CP group: each sequence padded to 2 x CP chunks."""
    chunks = _chunks(cp_size)
    return int(sum(-(-int(n) // chunks) * chunks for n in batch.lengths()))


def build_thd_row(batch: PackedBatch, length: int, cp_size: int = 1, cp_rank: int = 0) -> PackedRow:
    """This rank's part of `batch` as a THD row of `length` tokens over the CP group (at least
    `thd_tokens`, a multiple of 2 x CP)."""
    from megatron.core.packed_seq_params import PackedSeqParams

    needed = thd_tokens(batch, cp_size)
    if length < needed or length % _chunks(cp_size):
        raise ValueError(f"THD row of {length} tokens for {needed} (2 x CP = {_chunks(cp_size)})")
    ids, bounds = batch.input_ids, batch.cu_seqlens
    if length > needed:  # one padding sequence of the difference
        ids = torch.cat([ids, torch.zeros(length - needed, dtype=torch.long)])
        bounds = torch.cat([bounds, bounds[-1:] + (length - needed)])
    shard = cp_shard(ids, bounds, cp_size, cp_rank)
    real = (shard.source >= 0) & (shard.source < batch.num_tokens)
    source = torch.where(real, shard.source, 0)
    following = (source + 1).clamp(max=max(batch.num_tokens - 1, 0))
    seq = batch.sequence_index()
    same_sequence = (source + 1 < batch.num_tokens) & (seq[following] == seq[source])
    bounds_padded = shard.cu_seqlens_padded.to(torch.int32)
    longest = int((bounds_padded[1:] - bounds_padded[:-1]).max())
    packed = PackedSeqParams(
        qkv_format="thd",
        cu_seqlens_q=bounds_padded,
        cu_seqlens_kv=bounds_padded,
        cu_seqlens_q_padded=bounds_padded,
        cu_seqlens_kv_padded=bounds_padded,
        max_seqlen_q=longest,
        max_seqlen_kv=longest,
    )
    return PackedRow(
        ids=shard.input_ids.view(1, -1),
        positions=shard.positions.view(1, -1),
        mask=None,
        local=source,
        predicts=real & same_sequence,
        targets=batch.input_ids[following] if batch.num_tokens else source,
        packed=packed,
    )
