"""Chunked log-probs and entropy: hand values, equality with the unchunked computation,
gradients, and what autograd keeps alive."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from qwenlong.rl.entropy import token_logprobs_and_entropy

torch.set_num_threads(1)


def _reference(logits: Tensor, targets: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    log_p = torch.log_softmax(logits.float() / temperature, dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    return log_p.gather(1, targets.unsqueeze(1)).squeeze(1), entropy


def test_hand_values() -> None:
    # Row 0: p = (1/4, 3/4). Row 1 at temperature 1: uniform over 4 tokens.
    logits = torch.tensor([[0.0, math.log(3.0), -math.inf, -math.inf], [1.0, 1.0, 1.0, 1.0]])
    logprobs, entropy = token_logprobs_and_entropy(logits, torch.tensor([1, 2]))
    h0 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert logprobs.tolist() == pytest.approx([math.log(0.75), math.log(0.25)], rel=1e-6)
    assert entropy.tolist() == pytest.approx([h0, math.log(4.0)], rel=1e-6)


def test_temperature_divides_the_logits() -> None:
    # At temperature 2, logits (0, ln 3) become (0, ln sqrt 3): p = (1, sqrt 3) / (1 + sqrt 3).
    logits = torch.tensor([[0.0, math.log(3.0)]])
    logprobs, entropy = token_logprobs_and_entropy(logits, torch.tensor([0]), temperature=2.0)
    p = torch.tensor([1.0, math.sqrt(3.0)]) / (1 + math.sqrt(3.0))
    assert float(logprobs[0]) == pytest.approx(math.log(float(p[0])), rel=1e-6)
    assert float(entropy[0]) == pytest.approx(float(-(p * p.log()).sum()), rel=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 8, 1024])
def test_equals_the_unchunked_computation_at_every_chunk_boundary(chunk_size: int) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 13, generator=generator) * 3
    targets = torch.randint(0, 13, (7,), generator=generator)
    logprobs, entropy = token_logprobs_and_entropy(logits, targets, 0.7, chunk_size)
    want_logprobs, want_entropy = _reference(logits, targets, 0.7)
    assert torch.allclose(logprobs, want_logprobs, atol=1e-6)
    assert torch.allclose(entropy, want_entropy, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 4, 64])
def test_gradient_equals_autograd_through_log_softmax(chunk_size: int) -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(10, 17, generator=generator, requires_grad=True)
    targets = torch.randint(0, 17, (10,), generator=generator)
    weights = torch.randn(10, generator=generator)
    logprobs, _ = token_logprobs_and_entropy(logits, targets, 0.7, chunk_size)
    (grad,) = torch.autograd.grad((logprobs * weights).sum(), logits)
    want_logprobs, _ = _reference(logits, targets, 0.7)
    (want,) = torch.autograd.grad((want_logprobs * weights).sum(), logits)
    assert torch.allclose(grad, want, atol=1e-6)


def test_entropy_carries_no_gradient() -> None:
    logits = torch.randn(3, 5, requires_grad=True)
    logprobs, entropy = token_logprobs_and_entropy(logits, torch.tensor([0, 1, 2]))
    assert logprobs.requires_grad
    assert not entropy.requires_grad


def test_bfloat16_logits_are_reduced_in_float32() -> None:
    generator = torch.Generator().manual_seed(2)
    logits = (torch.randn(6, 50, generator=generator) * 4).to(torch.bfloat16).requires_grad_()
    targets = torch.randint(0, 50, (6,), generator=generator)
    logprobs, entropy = token_logprobs_and_entropy(logits, targets, chunk_size=4)
    want_logprobs, want_entropy = _reference(logits.detach().float(), targets, 1.0)
    assert logprobs.dtype == entropy.dtype == torch.float32
    assert torch.allclose(logprobs, want_logprobs, atol=1e-5)
    assert torch.allclose(entropy, want_entropy, atol=1e-5)
    logprobs.sum().backward()
    assert logits.grad is not None and logits.grad.dtype == torch.bfloat16


def _saved_sizes(fn, logits: Tensor) -> list[tuple[int, bool]]:
    """(numel, is the logits' own storage) of every tensor autograd saves while running fn."""
    saved: list[tuple[int, bool]] = []

    def pack(tensor: Tensor) -> Tensor:
        saved.append((tensor.numel(), tensor.data_ptr() == logits.data_ptr()))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn(logits).sum().backward()
    return saved


def test_autograd_keeps_nothing_of_vocabulary_size_besides_the_logits() -> None:
    rows, vocab = 256, 97
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(rows, vocab, generator=generator, requires_grad=True)
    targets = torch.randint(0, vocab, (rows,), generator=generator)

    chunked = _saved_sizes(lambda x: token_logprobs_and_entropy(x, targets, 0.7, 16)[0], logits)
    others = [numel for numel, own in chunked if not own]
    assert any(own for _, own in chunked)  # the logits, which the model holds anyway
    assert others == [rows, rows]  # the targets and log Z: one number per row each
    # The naive path keeps a second [rows, vocab] tensor (the log-softmax): the probe sees it.
    naive = _saved_sizes(lambda x: _reference(x, targets, 0.7)[0], logits)
    assert any(numel == rows * vocab and not own for numel, own in naive)


def test_bad_arguments_are_rejected() -> None:
    logits, targets = torch.zeros(2, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"logits must be \[T, V\]"):
        token_logprobs_and_entropy(logits[0], targets)
    with pytest.raises(ValueError, match="targets shape"):
        token_logprobs_and_entropy(logits, targets[:1])
    with pytest.raises(ValueError, match="int64"):
        token_logprobs_and_entropy(logits, targets.int())
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs_and_entropy(logits, targets, temperature=0.0)
    with pytest.raises(ValueError, match="chunk_size"):
        token_logprobs_and_entropy(logits, targets, chunk_size=0)
