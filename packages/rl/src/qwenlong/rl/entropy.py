"""Log-probabilities of the sampled tokens and full-vocabulary entropy, in bounded memory.

The policy's logits are [T, V]: with T = 50K response tokens and V = 152K (Qwen3) that is 7.6
billion floats, 30 GB in float32. The naive `log_softmax(logits).gather(...)` materialises
another [T, V] tensor for the log-softmax and autograd keeps it for the backward pass, and the
entropy needs the full distribution too. Here both are computed chunk by chunk over T, in
float32 whatever the logits' dtype, so the extra memory is O(chunk_size * V) in the forward pass
and in the backward pass alike:

- forward: per chunk, z = logits / temperature, log Z = logsumexp(z), log p = z - log Z; the
  target's log p is gathered and H = -sum_v p_v log p_v is reduced; only log Z [T] is kept;
- backward: per chunk, p is recomputed from the logits and the saved log Z, and
  d logprob_t / d logits_t = (onehot(target_t) - p_t) / temperature is written straight into
  the gradient of the logits.

Autograd therefore saves nothing of size T * V besides the logits themselves (which the model
keeps anyway). The entropy is returned without gradient: the recipe uses it to measure and
mask (Eq.8-11), never as a loss term, so differentiating it would only cost memory.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def check_logit_inputs(
    logits: Tensor, targets: Tensor, temperature: float, chunk_size: int, name: str, shape: str
) -> None:
    """ValueError naming `name` (the logits argument, expected `shape`) unless the inputs of a
    log-prob and entropy computation fit: 2-D float logits, one int64 target per row, a
    positive temperature and chunk size."""
    if logits.dim() != 2:
        raise ValueError(f"{name} must be {shape}, got shape {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} does not match {name} {tuple(logits.shape)}"
        )
    if targets.dtype != torch.long:
        raise ValueError(f"targets must be int64 token ids, got {targets.dtype}")
    if not logits.dtype.is_floating_point:
        raise ValueError(f"{name} must be floating point, got {logits.dtype}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


def token_logprobs_and_entropy(
    logits: Tensor, targets: Tensor, temperature: float = 1.0, chunk_size: int = 1024
) -> tuple[Tensor, Tensor]:
    """(log p(targets[t]) [T], entropy [T]) of softmax(logits[t] / temperature), float32.

    `logits` is [T, V] in any float dtype, `targets` [T] int64 token ids. The log-probs carry
    gradient to `logits` when it requires grad; the entropy never does. `temperature` must match
    the rollout's sampling temperature so that the log-probs are those of the sampling policy.
    """
    check_logit_inputs(logits, targets, temperature, chunk_size, "logits", "[T, V]")
    logprobs, entropy = _ChunkedLogprobs.apply(logits, targets, float(temperature), chunk_size)
    return logprobs, entropy


class _ChunkedLogprobs(torch.autograd.Function):
    """Target log-probs (differentiable) and entropy (not), chunked over rows."""

    @staticmethod
    def forward(
        ctx: Any, logits: Tensor, targets: Tensor, temperature: float, chunk_size: int
    ) -> tuple[Tensor, Tensor]:
        rows = logits.shape[0]
        out = {"device": logits.device, "dtype": torch.float32}
        logprobs = torch.empty(rows, **out)
        entropy = torch.empty(rows, **out)
        log_norm = torch.empty(rows, **out)
        lowest = torch.finfo(torch.float32).min
        for start in range(0, rows, chunk_size):
            end = min(start + chunk_size, rows)
            # Dividing allocates a fresh float32 chunk, so the in-place steps below never touch
            # the caller's logits.
            log_p = logits[start:end].float() / temperature
            norm = torch.logsumexp(log_p, dim=-1)
            log_p.sub_(norm.unsqueeze(1))
            log_norm[start:end] = norm
            logprobs[start:end] = log_p.gather(1, targets[start:end].unsqueeze(1)).squeeze(1)
            # Masked vocabulary entries (-inf) have p = 0; clamping keeps 0 * log p at 0, not NaN.
            log_p.clamp_(min=lowest)
            probs = log_p.exp()
            entropy[start:end] = -torch.bmm(probs.unsqueeze(1), log_p.unsqueeze(2)).view(-1)
        ctx.save_for_backward(logits, targets, log_norm)
        ctx.temperature = temperature
        ctx.chunk_size = chunk_size
        ctx.mark_non_differentiable(entropy)
        return logprobs, entropy

    @staticmethod
    def backward(
        ctx: Any, grad_logprobs: Tensor, grad_entropy: Tensor
    ) -> tuple[Tensor | None, None, None, None]:
        logits, targets, log_norm = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        temperature, chunk_size = ctx.temperature, ctx.chunk_size
        grad_logits = torch.empty_like(logits)
        for start in range(0, logits.shape[0], chunk_size):
            end = min(start + chunk_size, logits.shape[0])
            upstream = grad_logprobs[start:end].float().unsqueeze(1)
            # d log p_target / d z_v = onehot(target)_v - p_v, and z = logits / temperature.
            grad = logits[start:end].float() / temperature
            grad.sub_(log_norm[start:end].unsqueeze(1)).exp_().mul_(-upstream)
            grad.scatter_add_(1, targets[start:end].unsqueeze(1), upstream)
            grad_logits[start:end] = grad.div_(temperature)
        return grad_logits, None, None, None
