"""A micro-batch as Megatron's layers take it: the sequences back to back in one row.

Two formats, one per layer spec (qwenlong.rl.megatron.row_formats, keyed like
`policy.megatron.layers`): "local" (here) and "transformer_engine" (qwenlong.rl.megatron.thd_row). Both say, for each token a rank
holds, which micro-batch token it is and which token it predicts, so the policy scores either
the same way.

The local format:

Megatron's local attention takes neither packed sequences nor context parallel, so the row
carries its structure in the attention mask instead: a token attends to earlier tokens of its
own sequence only (block-diagonal causal). RoPE needs nothing: Megatron rotates by row
position, and since attention never crosses sequences only differences within a sequence
count, which row positions keep. Under context parallel the whole row (padded to a multiple
of 2 x CP) is cut into 2 x CP chunks and rank r keeps chunks r and 2CP-1-r, the layout
Megatron's RoPE slicing assumes and the one that balances causal attention work; the mask's
columns are every rank's tokens in the order the keys are gathered (rank by rank).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from qwenlong.rl.interfaces import PackedBatch


@dataclass(frozen=True)
class PackedRow:
    """This rank's part of a packed row."""

    ids: Tensor
    """[1, n] the token ids held here."""
    positions: Tensor
    """[1, n] their row positions."""
    mask: Tensor | None
    """[1, 1, n, keys] True where attention is blocked; keys in gathered (rank) order. None
    in the THD format, where `packed` bounds the sequences."""
    local: Tensor
    """[n] each token's index among the micro-batch's tokens (its row position in the local
    format; any value on padding, which never predicts)."""
    predicts: Tensor
    """[n] bool: the next row token continues the same sequence (this token's logits score it)."""
    targets: Tensor
    """[n] the next row token's id (meaningful where `predicts`)."""
    packed: Any = None
    """Megatron's PackedSeqParams in the THD format (sequence bounds for TE's attention)."""

    def to(self, device: str | torch.device) -> PackedRow:
        """The model's inputs on `device` (the bookkeeping stays on the CPU)."""
        if self.packed is not None:
            for field in (
                "cu_seqlens_q",
                "cu_seqlens_kv",
                "cu_seqlens_q_padded",
                "cu_seqlens_kv_padded",
            ):
                value = getattr(self.packed, field)
                if value is not None:
                    setattr(self.packed, field, value.to(device))
        return replace(
            self,
            ids=self.ids.to(device),
            positions=self.positions.to(device),
            mask=None if self.mask is None else self.mask.to(device),
        )


def rank_chunks(length: int, cp_size: int, cp_rank: int) -> Tensor:
    """Row positions of chunks `cp_rank` and 2CP-1-`cp_rank` of a row of `length` tokens."""
    chunk = length // (2 * cp_size)
    first = torch.arange(cp_rank * chunk, (cp_rank + 1) * chunk)
    second_start = (2 * cp_size - 1 - cp_rank) * chunk
    return torch.cat([first, torch.arange(second_start, second_start + chunk)])


def build_row(batch: PackedBatch, length: int, cp_size: int = 1, cp_rank: int = 0) -> PackedRow:
    """`batch` in a row of `length` tokens (a multiple of 2 x `cp_size` under context
    parallel; padding forms a sequence of its own and is never predicted)."""
    if cp_size > 1 and length % (2 * cp_size):
        raise ValueError(f"row length {length} is not a multiple of 2 x CP = {2 * cp_size}")
    pad = length - batch.num_tokens
    ids = torch.cat([batch.input_ids, torch.zeros(pad, dtype=torch.long)])
    seq = torch.cat([batch.sequence_index(), torch.full((pad,), batch.num_sequences)])
    real = torch.arange(length) < batch.num_tokens
    if cp_size == 1:
        local = keys = torch.arange(length)
    else:
        local = rank_chunks(length, cp_size, cp_rank)
        keys = torch.cat([rank_chunks(length, cp_size, r) for r in range(cp_size)])
    following = (local + 1).clamp(max=length - 1)
    predicts = (local + 1 < length) & real[following] & (seq[following] == seq[local])
    visible = (seq[local][:, None] == seq[keys][None, :]) & (keys[None, :] <= local[:, None])
    return PackedRow(
        ids=ids[local].view(1, -1),
        positions=local.view(1, -1),
        mask=(~visible)[None, None],
        local=local,
        predicts=predicts,
        targets=ids[following],
    )


def row_tokens(batch: PackedBatch, cp_size: int) -> int:
    """The local format's shortest row: the tokens, rounded up to 2 x CP chunks."""
    chunks = 2 * cp_size if cp_size > 1 else 1
    return -(-batch.num_tokens // chunks) * chunks
