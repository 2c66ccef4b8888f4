"""The torch backend's forward: a micro-batch of a packed batch, right-padded, through an HF model.

Packed (varlen) sequences are what Megatron and flash-attention kernels consume; a plain
transformers forward on CPU wants a padded [rows, width] batch. Each row here holds one
sequence from column 0 with positions 0..L-1 and an attention mask over its real tokens, and
padding sits on the right, after every real token: causal attention never lets a real token
see a pad, so each sequence is scored exactly as if it ran alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from qwenlong.rl.entropy import token_logprobs_and_entropy
from qwenlong.rl.interfaces import PackedBatch


@dataclass
class PaddedMicroBatch:
    """A right-padded micro-batch and where its predictions go in the packed batch."""

    input_ids: Tensor
    """[b, w] token ids, right-padded."""
    attention_mask: Tensor
    """[b, w] 1 on real tokens."""
    logits_to_keep: Tensor | None
    """[k] the columns whose logits are needed (ascending), or None for all of them."""
    rows: Tensor
    """[m] row of each predicted token."""
    slots: Tensor
    """[m] index, among the computed logit columns, of the column that predicts the token."""
    targets: Tensor
    """[m] the predicted token ids."""
    positions: Tensor
    """[m] (always on the CPU) index of each predicted token in the packed batch."""


def accepts_logits_to_keep(model: nn.Module) -> bool:
    """Whether the model's forward can limit its output head to some columns (transformers'
    causal LMs take `logits_to_keep`, an int or a tensor of column indices)."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def pad_micro_batch(
    batch: PackedBatch,
    sequences: Sequence[int],
    wanted: Tensor | None,
    *,
    pad_id: int,
    device: torch.device,
    head_subset: bool,
) -> PaddedMicroBatch:
    """Right-pad `sequences` of `batch`; predict every token but the first of each row or, with
    `wanted` ([N] bool over the packed batch), only the positions it marks.

    The token at column c is predicted by the logits of column c - 1. With `head_subset` (the
    model accepts `logits_to_keep`) and some columns unneeded, only the needed columns are
    sent through the output head: on a long prompt followed by a short response that skips
    most of the head's work, with bit-identical values at the columns kept.
    """
    starts = batch.cu_seqlens[:-1].tolist()
    ends = batch.cu_seqlens[1:].tolist()
    width = max(ends[s] - starts[s] for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    rows, cols, positions = [], [], []
    for row, s in enumerate(sequences):
        length = ends[s] - starts[s]
        ids[row, :length] = batch.input_ids[starts[s] : ends[s]]
        attention[row, :length] = 1
        predicted = torch.arange(starts[s] + 1, ends[s])
        if wanted is not None:
            predicted = predicted[wanted[predicted]]
        positions.append(predicted)
        cols.append(predicted - starts[s] - 1)
        rows.append(torch.full_like(predicted, row))
    col_index = torch.cat(cols)
    row_index = torch.cat(rows)
    kept, slots = head_columns(col_index, width, head_subset, device)
    return PaddedMicroBatch(
        input_ids=ids.to(device),
        attention_mask=attention.to(device),
        logits_to_keep=kept,
        rows=row_index.to(device),
        slots=slots.to(device),
        targets=ids[row_index, col_index + 1].to(device),
        positions=torch.cat(positions),
    )


def head_columns(
    columns: Tensor, width: int, head_subset: bool, device: torch.device
) -> tuple[Tensor | None, Tensor]:
    """(`logits_to_keep`, slot of each entry of `columns`) for a forward over `width` columns
    whose logits are read at `columns`: the needed columns alone (ascending) when the model
    can limit its output head and some column is not needed, else None and the columns
    themselves. The unneeded columns of the head are the work a short response after a long
    prompt saves."""
    keep = torch.unique(columns)
    if head_subset and keep.numel() < width:
        return keep.to(device), torch.searchsorted(keep, columns)
    return None, columns


def score_micro_batch(
    model: nn.Module, micro: PaddedMicroBatch, temperature: float, chunk_size: int
) -> tuple[Tensor, Tensor]:
    """(log-probs [m], entropy [m]) of the micro-batch's targets under softmax(logits / T).

    The log-probs carry gradient when autograd is on; the entropy never does (it measures and
    masks, it is not a loss term).
    """
    position_ids = torch.arange(micro.input_ids.shape[1], device=micro.input_ids.device)
    extra = {} if micro.logits_to_keep is None else {"logits_to_keep": micro.logits_to_keep}
    logits = model(
        input_ids=micro.input_ids,
        attention_mask=micro.attention_mask,
        position_ids=position_ids.expand_as(micro.input_ids),
        use_cache=False,
        **extra,
    ).logits
    return token_logprobs_and_entropy(
        logits[micro.rows, micro.slots],
        micro.targets,
        temperature=temperature,
        chunk_size=chunk_size,
    )
