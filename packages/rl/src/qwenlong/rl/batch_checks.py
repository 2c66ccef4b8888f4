"""Validation of a packed batch and a policy update before any compute is spent on them.

A malformed batch fails deep inside a forward pass with an index error that names neither the
tensor nor the sequence; these checks fail first, in one line that does. Every policy backend
(torch here, Megatron later) and the data-parallel driver run them on what they receive.
"""

from __future__ import annotations

import torch
from torch import Tensor

from qwenlong.core.errors import BackendError
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate


def check_batch(batch: PackedBatch, vocab_size: int, where: str) -> None:
    """Shapes and dtypes agree, `cu_seqlens` covers every token, no sequence is empty, and
    every token id indexes the model's embedding."""
    n = batch.input_ids.numel()
    bounds = batch.cu_seqlens
    if batch.input_ids.dim() != 1 or batch.input_ids.dtype != torch.long:
        raise BackendError(f"{where}: input_ids must be a 1-D int64 tensor")
    check_per_token("loss_mask", batch.loss_mask, batch, where)
    if bounds.numel() < 1 or int(bounds[0]) != 0 or int(bounds[-1]) != n:
        raise BackendError(f"{where}: cu_seqlens must run from 0 to {n} tokens")
    empty = (batch.lengths() < 1).nonzero()
    if empty.numel():
        raise BackendError(f"{where}: sequence {int(empty[0])} is empty")
    if n and (int(batch.input_ids.min()) < 0 or int(batch.input_ids.max()) >= vocab_size):
        raise BackendError(
            f"{where}: token ids must lie in [0, {vocab_size}); got "
            f"{int(batch.input_ids.min())}..{int(batch.input_ids.max())}"
        )


def check_per_token(name: str, values: Tensor | None, batch: PackedBatch, where: str) -> None:
    """A per-token tensor (when given) has one entry per token of `batch`."""
    if values is not None and tuple(values.shape) != (batch.num_tokens,):
        raise BackendError(
            f"{where}: {name} has shape {tuple(values.shape)}, the batch has "
            f"{batch.num_tokens} tokens"
        )


def check_update_shapes(batch: PackedBatch, update: PolicyUpdate, where: str) -> None:
    """Every per-token tensor of `update` has one entry per token of `batch`."""
    for name in PolicyUpdate.PER_TOKEN:
        check_per_token(f"update.{name}", getattr(update, name), batch, where)


def check_update(batch: PackedBatch, update: PolicyUpdate, where: str) -> Tensor:
    """Every per-token tensor of `update` fits `batch` and the token mask is trainable;
    return the token mask as bool."""
    check_update_shapes(batch, update, where)
    mask = update.token_mask.bool()
    if bool((mask & ~batch.loss_mask).any()):
        raise BackendError(f"{where}: update.token_mask marks tokens outside loss_mask")
    check_trainable(batch, mask, "update.token_mask", update.global_tokens, where)
    return mask


def check_trainable(
    batch: PackedBatch, mask: Tensor, name: str, global_tokens: int, where: str
) -> None:
    """`mask` marks no sequence's first token (nothing predicts it) and no more tokens than
    the global batch's count it will be divided by."""
    trained_first = mask[batch.cu_seqlens[:-1]].nonzero()
    if trained_first.numel():
        raise BackendError(
            f"{where}: {name} marks the first token of sequence {int(trained_first[0])}, "
            "which has no prediction (empty prompt?)"
        )
    if int(mask.sum()) > global_tokens:
        raise BackendError(
            f"{where}: {int(mask.sum())} loss tokens on this rank but global_tokens is "
            f"{global_tokens}; it must count the whole global batch"
        )
