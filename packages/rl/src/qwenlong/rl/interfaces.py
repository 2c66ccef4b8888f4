"""The seams of qwenlong.rl: what the trainer drives, whatever runs underneath.

The trainer is a single controller (slime / verl style) that reads like the paper:

    batch   = sampler.next_batch()                       # task-balanced (Sec. 4.2)
    groups  = rollout.generate(batch, n=G)               # RolloutEngine
    rewards = reward(groups)                             # evals scorers, judge where the rule fails
    adv     = advantage(rewards, group_ids, task_ids)    # Eq.3 / Eq.7
    stats   = policy.forward_logprobs(packed, response)  # log-probs, full-vocabulary entropy
    mask    = aepo + negative-gradient clipping          # Eq.8-11
    policy.train_step(packed, adv, mask, ...)            # token-level loss, Eq.4
    rollout.load_weights(policy.export_weights())        # sync

`Policy` is implemented by the torch backend here (HF model, data parallel over gloo/NCCL) and
by the Megatron-Core backend later (expert, tensor, pipeline and context parallel); `RolloutEngine`
by the HF backend here and vLLM later. Both see only packed token sequences and named tensors, so
a backend change never touches the trainer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation


@dataclass
class PackedBatch:
    """Sequences (prompt + response) concatenated into one row, varlen style.

    Packing is what Megatron (THD layout) and flash-attention varlen kernels consume; the torch
    backend unpacks into a padded batch per micro-batch. Every per-token tensor here is [N] with
    N = total tokens; `cu_seqlens` [S+1] marks sequence boundaries.
    """

    input_ids: Tensor
    """[N] int64: every sequence's prompt and response tokens, back to back."""
    cu_seqlens: Tensor
    """[S+1] int64: sequence s occupies input_ids[cu_seqlens[s]:cu_seqlens[s+1]]."""
    loss_mask: Tensor
    """[N] bool: True on response tokens (the tokens the policy is trained on)."""

    @property
    def num_sequences(self) -> int:
        return int(self.cu_seqlens.numel() - 1)

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.numel())

    def lengths(self) -> Tensor:
        return self.cu_seqlens[1:] - self.cu_seqlens[:-1]

    def sequence_index(self) -> Tensor:
        """[N] int64: the sequence each token belongs to."""
        return torch.repeat_interleave(torch.arange(self.num_sequences), self.lengths())

    @classmethod
    def from_sequences(
        cls, prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]]
    ) -> PackedBatch:
        """Pack (prompt ids, response ids) pairs; loss_mask marks the response tokens."""
        ids: list[int] = []
        mask: list[bool] = []
        bounds = [0]
        for prompt, response in zip(prompts, responses, strict=True):
            ids += [*prompt, *response]
            mask += [False] * len(prompt) + [True] * len(response)
            bounds.append(len(ids))
        return cls(
            input_ids=torch.tensor(ids, dtype=torch.long),
            cu_seqlens=torch.tensor(bounds, dtype=torch.long),
            loss_mask=torch.tensor(mask, dtype=torch.bool),
        )

    def select(self, sequences: Sequence[int]) -> PackedBatch:
        """A new batch holding only `sequences` (for splitting across ranks and micro-batches)."""
        starts, ends = self.cu_seqlens[:-1], self.cu_seqlens[1:]
        pieces = [torch.arange(int(starts[s]), int(ends[s])) for s in sequences]
        index = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)
        lengths = torch.tensor([int(ends[s] - starts[s]) for s in sequences], dtype=torch.long)
        bounds = torch.zeros(len(sequences) + 1, dtype=torch.long)
        bounds[1:] = torch.cumsum(lengths, 0)
        return PackedBatch(self.input_ids[index], bounds, self.loss_mask[index])


@dataclass
class TokenStats:
    """Per-token statistics of a packed batch under the current policy, aligned with input_ids.

    Position t holds the log-probability of input_ids[t] given the tokens before it in its
    sequence, and the entropy of that predictive distribution over the full vocabulary
    (H = -sum_v p(v) log p(v)); the first token of each sequence has no prediction and holds 0.
    """

    logprobs: Tensor
    """[N] float32."""
    entropy: Tensor
    """[N] float32."""


@dataclass
class PolicyUpdate:
    """Everything one optimizer step needs besides the batch itself."""

    advantages: Tensor
    """[N] float32: each token carries its sequence's advantage (0 outside the loss mask)."""
    token_mask: Tensor
    """[N] bool: tokens that contribute to the loss (loss_mask AND the AEPO / negative-gradient
    masks)."""
    old_logprobs: Tensor | None
    """[N] log-probs of the behaviour policy; None when strictly on-policy (ratio = 1)."""
    ref_logprobs: Tensor | None
    """[N] log-probs of the reference model for the KL term; None when beta = 0."""
    global_tokens: int
    """Number of tokens that contribute to the loss across the WHOLE global batch (all ranks,
    all micro-batches): the denominator of the token-level loss (Eq.4)."""


@dataclass
class StepStats:
    """What one optimizer step reports (summed or averaged over ranks by the caller)."""

    loss: float
    grad_norm: float
    tokens: int
    """Tokens processed in forward/backward (prompt + response)."""
    loss_tokens: int
    """Tokens that contributed to the loss."""
    extra: dict[str, float] = field(default_factory=dict)
    """Loss-specific figures: clip fractions, KL, mean ratio."""


class Policy(Protocol):
    """The model being trained. Implemented by the torch and Megatron backends."""

    def forward_logprobs(self, batch: PackedBatch, mask: Tensor | None = None) -> TokenStats:
        """Per-token log-probs of `batch.input_ids` and full-vocabulary entropy, packed like
        the input. No gradient. With `mask` ([N] bool) only those positions are computed (the
        output head runs on them alone); the others hold 0."""
        ...

    def train_step(self, batch: PackedBatch, update: PolicyUpdate) -> StepStats:
        """One optimizer step over `batch` (split into micro-batches internally, gradients
        accumulated), the loss normalised by `update.global_tokens`."""
        ...

    def sft_step(self, batch: PackedBatch, global_tokens: int) -> StepStats:
        """One optimizer step of cross-entropy on the loss-mask tokens, normalised like the RL
        loss by the global batch's token count (the SFT warm start)."""
        ...

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """HF-named tensors, streamed one at a time, for rollout engines and checkpoints."""
        ...


class RolloutEngine(Protocol):
    """Generates rollouts with the current policy weights."""

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """`sampling.n` completions per conversation with token ids (and their log-probs)."""
        ...

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        """Token ids of each rendered prompt, exactly as `generate` fed them to the model."""
        ...

    def load_weights(self, weights: Iterable[tuple[str, Tensor]]) -> None:
        """Replace the engine's weights by the policy's (HF names)."""
        ...
