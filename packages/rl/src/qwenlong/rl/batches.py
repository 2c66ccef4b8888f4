"""The data that crosses the rl seams: packed token batches, per-token statistics, a policy
update, a step's figures, a batch's rewards (declared with the protocols in
qwenlong.rl.interfaces, which re-exports them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from qwenlong.core.records import TaskSample


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

    def to_tokens(self, values: Tensor) -> Tensor:
        """Per-sequence `values` [S] broadcast to per-token [N] (each token gets its sequence's)."""
        if values.numel() != self.num_sequences:
            raise ValueError(f"{values.numel()} values for {self.num_sequences} sequences")
        return values[self.sequence_index()]

    def token_positions(self, sequences: Sequence[int]) -> Tensor:
        """[n] int64: the token positions of `sequences`, in the order `select` keeps them, so
        a per-token tensor of this batch is cut for `select(sequences)` by indexing with it."""
        starts, ends = self.cu_seqlens[:-1], self.cu_seqlens[1:]
        pieces = [torch.arange(int(starts[s]), int(ends[s])) for s in sequences]
        return torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)

    def select(self, sequences: Sequence[int]) -> PackedBatch:
        """A new batch holding only `sequences`, in the given order."""
        lengths = self.lengths()[list(sequences)] if sequences else torch.zeros(0, dtype=torch.long)
        bounds = torch.zeros(len(sequences) + 1, dtype=torch.long)
        bounds[1:] = torch.cumsum(lengths, 0)
        index = self.token_positions(sequences)
        return PackedBatch(self.input_ids[index], bounds, self.loss_mask[index])

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
    """The denominator of the token-level loss (Eq.4) over the WHOLE global batch (all ranks,
    all micro-batches): its response tokens, or only those the masks keep
    (`loss.denominator_tokens`)."""
    is_weights: Tensor | None = None
    """[N] truncated importance weights min(pi_old / mu, C) of the policy-gradient term
    (qwenlong.rl.rollout_correction); None without the correction."""
    token_weights: Tensor | None = None
    """[N] the per-group normalisers of `loss.aggregation: token_group`, 1 / (tokens of the
    token's group x groups) over the global batch; None for the other aggregations."""

    PER_TOKEN = (
        "advantages",
        "token_mask",
        "old_logprobs",
        "ref_logprobs",
        "is_weights",
        "token_weights",
    )
    """The fields holding one value per token of the batch."""

    def select(self, positions: Tensor, global_tokens: int | None = None) -> PolicyUpdate:
        """The update of the tokens at `positions` (`PackedBatch.token_positions` of a
        sub-batch); `global_tokens` kept unless given (a mini-batch is its own global batch,
        a rank's share is not)."""

        def cut(values: Tensor | None) -> Tensor | None:
            return None if values is None else values[positions]

        return PolicyUpdate(
            advantages=self.advantages[positions],
            token_mask=self.token_mask[positions],
            old_logprobs=cut(self.old_logprobs),
            ref_logprobs=cut(self.ref_logprobs),
            global_tokens=self.global_tokens if global_tokens is None else global_tokens,
            is_weights=cut(self.is_weights),
            token_weights=cut(self.token_weights),
        )


@dataclass
class StepStats:
    """What one optimizer step reports."""

    loss: float
    grad_norm: float
    tokens: int
    """Tokens processed in forward/backward (prompt + response)."""
    loss_tokens: int
    """Tokens that contributed to the loss."""
    extra: dict[str, float] = field(default_factory=dict)
    """Loss-specific figures: clip fractions, KL, mean ratio."""
    logprobs: Tensor | None = None
    """[N] float32: the policy's log-prob of each trained token as the loss saw it (before the
    update; strictly on-policy that is pi_old), NaN on every other token; None when the backend
    does not return them. The trainer compares them with the engine's (the mismatch metrics)
    when it ran no log-prob pass of its own (qwenlong.rl.rollout_stats)."""

    @classmethod
    def sum_over_ranks(cls, parts: Sequence[StepStats]) -> StepStats:
        """The step of several data-parallel shares: every loss figure is a contribution
        normalised by a global count, so the step's value is the plain sum; token counts add;
        the gradient norm is the same on every rank after the reduction (the first is kept)."""
        if not parts:
            raise ValueError("sum_over_ranks needs at least one rank's stats")
        extra: dict[str, float] = defaultdict(float)
        for part in parts:
            for key, value in part.extra.items():
                extra[key] += value
        return cls(
            loss=sum(part.loss for part in parts),
            grad_norm=parts[0].grad_norm,
            tokens=sum(part.tokens for part in parts),
            loss_tokens=sum(part.loss_tokens for part in parts),
            extra=dict(extra),
        )

    @classmethod
    def mean_over_updates(cls, results: Sequence[StepStats]) -> StepStats:
        """Several optimizer steps of one batch: mean loss, grad norm and figures; summed
        token counts."""
        count = len(results)
        keys = sorted({key for result in results for key in result.extra})
        return cls(
            loss=sum(r.loss for r in results) / count,
            grad_norm=sum(r.grad_norm for r in results) / count,
            tokens=sum(r.tokens for r in results),
            loss_tokens=sum(r.loss_tokens for r in results),
            extra={k: sum(r.extra.get(k, 0.0) for r in results) / count for k in keys},
        )


@dataclass
class RewardResult:
    """Rewards of a batch of outputs, aligned with the inputs."""

    rewards: Tensor
    """[B] float32, finite: max(rule, judge), in [0, 1] for every evals metric."""
    correct: Tensor
    """[B] bool: the binary verdict (exact for binary metrics, ratio == 1 for dense ones)."""
    details: list[dict[str, Any]] = field(default_factory=list)
    """Per output: `metric`, `decided_by` ("rule", "judge", "no_think" or "overlong") and the
    scorer's own details (extracted answer, matched gold, judge verdict)."""

    def mean_by_task(self, samples: Sequence[TaskSample]) -> dict[str, float]:
        """Mean reward per task type, for the per-task reward curves."""
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for sample, reward in zip(samples, self.rewards.tolist(), strict=True):
            sums[sample.task_type] += reward
            counts[sample.task_type] += 1
        return {task: sums[task] / counts[task] for task in sorted(sums)}
