"""Token log-probs and full-vocabulary entropy when the vocabulary is split over tensor-parallel
ranks, without ever gathering the vocabulary.

Megatron's output layer leaves each of the TP ranks the logits of its own vocabulary slice,
[n, V/TP]. Gathering them would cost n x V floats per rank (50K tokens x 152K vocabulary = 30 GB
in float32) and defeat the split, so, as Megatron's `_VocabParallelCrossEntropy` does, only
per-token scalars cross ranks. With z = logits / temperature and m = max_v z_v:

- m: all-reduce MAX of each rank's row maxima;
- s = sum_v exp(z_v - m), the target's shifted logit z_t - m (looked up by the rank holding t,
  0 elsewhere) and e = sum_v exp(z_v - m) * (z_v - m): one all-reduce SUM of the three;
- log p_t = (z_t - m) - log s, and H = -sum_v p_v log p_v = log s - e / s (since
  log p_v = (z_v - m) - log s and sum_v p_v = 1).

The backward pass needs no communication: d log p_t / d z_v = 1[v = t] - p_v, and p_v =
exp(z_v - log Z) is local once log Z (saved, [n]) is known. The entropy is returned without
gradient (the recipe measures and masks with it, Eq.8-11, never trains on it). Both passes go
chunk by chunk over tokens, so the extra memory is O(chunk_size x V/TP), as in
qwenlong.rl.entropy, whose single-process results these match.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from qwenlong.rl.entropy import check_logit_inputs

_LOWEST = torch.finfo(torch.float32).min


def vocab_parallel_logprobs_and_entropy(
    local_logits: Tensor,
    targets: Tensor,
    temperature: float,
    group: dist.ProcessGroup | None,
    vocab_start: int,
    *,
    chunk_size: int = 1024,
    vocab_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """(log p(targets) [n], entropy [n]) of softmax(logits / temperature), float32, identical
    on every rank of `group`.

    `local_logits` [n, V/TP] are this rank's columns of the logits, global vocabulary ids
    vocab_start .. vocab_start + V/TP - 1; `targets` [n] are global token ids (the same on every
    rank). `vocab_size`: the true vocabulary size when Megatron padded the output layer to a
    multiple of 128 x TP; ids at or past it are left out of the distribution (their logits are
    whatever the padding rows produce, not tokens). The log-probs carry gradient to
    `local_logits`; every rank of `group` must call this with the same n and chunk_size, since
    each chunk is a collective.
    """
    check_logit_inputs(local_logits, targets, temperature, chunk_size, "local_logits", "[n, V/TP]")
    if vocab_start < 0:
        raise ValueError(f"vocab_start must be >= 0, got {vocab_start}")
    slice_ = _VocabSlice(vocab_start, local_logits.shape[1], vocab_size)
    return _VocabParallelLogprobs.apply(
        local_logits, targets, float(temperature), group, slice_, chunk_size
    )


class _VocabSlice:
    """This rank's vocabulary ids and how many of its columns are real tokens."""

    def __init__(self, start: int, width: int, vocab_size: int | None) -> None:
        self.start = start
        self.width = width
        self.real = width if vocab_size is None else max(0, min(width, vocab_size - start))

    def scaled(self, logits: Tensor, temperature: float) -> Tensor:
        """float32 logits / temperature (a fresh tensor), padding columns at -inf."""
        z = logits.float() / temperature
        if self.real < self.width:
            z[:, self.real :] = -torch.inf
        return z

    def local_targets(self, targets: Tensor) -> tuple[Tensor, Tensor]:
        """(column of each target in this slice, 0 where it is elsewhere; whether it is here)."""
        here = (targets >= self.start) & (targets < self.start + self.width)
        return torch.where(here, targets - self.start, 0), here


class _VocabParallelLogprobs(torch.autograd.Function):
    """Target log-probs (differentiable) and entropy (not) over a vocabulary split by ranks."""

    @staticmethod
    def forward(
        ctx: Any,
        logits: Tensor,
        targets: Tensor,
        temperature: float,
        group: dist.ProcessGroup | None,
        vocab: _VocabSlice,
        chunk_size: int,
    ) -> tuple[Tensor, Tensor]:
        rows = logits.shape[0]
        out = {"device": logits.device, "dtype": torch.float32}
        logprobs = torch.empty(rows, **out)
        entropy = torch.empty(rows, **out)
        log_norm = torch.empty(rows, **out)
        for start in range(0, rows, chunk_size):
            end = min(start + chunk_size, rows)
            z = vocab.scaled(logits[start:end], temperature)
            peak = z.max(dim=-1).values
            dist.all_reduce(peak, op=dist.ReduceOp.MAX, group=group)
            # Shifted by the global max: exp never overflows. Clamping -inf (padding columns,
            # masked tokens) to the lowest float keeps exp at 0 and 0 * z at 0, not NaN.
            z.sub_(peak.unsqueeze(1)).clamp_(min=_LOWEST)
            column, here = vocab.local_targets(targets[start:end])
            sums = torch.empty(3, end - start, **out)
            sums[0] = torch.where(here, z.gather(1, column.unsqueeze(1)).squeeze(1), 0.0)
            probs = z.exp()
            sums[1] = probs.sum(dim=-1)
            sums[2] = torch.bmm(probs.unsqueeze(1), z.unsqueeze(2)).view(-1)
            dist.all_reduce(sums, op=dist.ReduceOp.SUM, group=group)
            target_logit, norm, weighted = sums.unbind(0)
            log_sum = norm.log()
            logprobs[start:end] = target_logit - log_sum
            entropy[start:end] = log_sum - weighted / norm
            log_norm[start:end] = peak + log_sum
        ctx.save_for_backward(logits, targets, log_norm)
        ctx.temperature, ctx.vocab, ctx.chunk_size = temperature, vocab, chunk_size
        ctx.mark_non_differentiable(entropy)
        return logprobs, entropy

    @staticmethod
    def backward(
        ctx: Any, grad_logprobs: Tensor, grad_entropy: Tensor
    ) -> tuple[Tensor | None, ...]:
        nothing = (None, None, None, None, None)
        if not ctx.needs_input_grad[0]:
            return None, *nothing
        logits, targets, log_norm = ctx.saved_tensors
        temperature, vocab, chunk_size = ctx.temperature, ctx.vocab, ctx.chunk_size
        grad_logits = torch.empty_like(logits)
        for start in range(0, logits.shape[0], chunk_size):
            end = min(start + chunk_size, logits.shape[0])
            upstream = grad_logprobs[start:end].float().unsqueeze(1)
            # d log p_t / d z_v = 1[v = t] - p_v with p_v = exp(z_v - log Z), all local;
            # z = logits / temperature gives the final division.
            grad = vocab.scaled(logits[start:end], temperature)
            grad.sub_(log_norm[start:end].unsqueeze(1)).exp_().mul_(-upstream)
            column, here = vocab.local_targets(targets[start:end])
            grad.scatter_add_(1, column.unsqueeze(1), upstream * here.unsqueeze(1))
            grad_logits[start:end] = grad.div_(temperature)
        return grad_logits, *nothing
