"""The seams of qwenlong.rl: every call the trainer, SFT, held-out evaluation and checkpointing
make, whatever backend runs underneath.

The trainer is a single controller (slime / verl style) that reads like the paper:

    batch   = sampler.next_batch()                       # task-balanced (Sec. 4.2)
    groups  = rollout.generate(batch, sampling, limit)   # Rollout over a RolloutEngine
    rewards = reward(groups.samples, groups.outputs)     # RewardCall: rule, judge where it fails
    adv     = advantage(rewards, group_ids, task_ids)    # Eq.3 / Eq.7
    stats   = policy.forward_logprobs(packed, response)  # Policy: log-probs, entropy
    mask    = aepo + negative-gradient clipping          # Eq.8-11
    policy.train_step(packed, update)                    # token-level loss, Eq.4
    sync_weights(policy, engine)                         # qwenlong.rl.weight_sync

`Policy` is what the driver holds: the torch backend (an HF model in data parallel) and, later,
Megatron-Core (expert, tensor, pipeline and context parallel) both implement it as a
`PolicyGroup` of `PolicyRank`s, one per process. `RolloutEngine` is implemented by the HF engine
and, later, vLLM. Both see only packed token sequences and streams of named tensors, so a
backend change never touches the loop.

Weights cross every seam as a stream of (name, tensor) pairs under HF's on-disk names (one
tensor per expert): checkpoints, engines and converters all read that layout, and a stream
never needs the whole model in one process's memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, TaskSample

if TYPE_CHECKING:
    from qwenlong.rl.rollout.batch import RolloutBatch

WeightStream = Iterable[tuple[str, Tensor]]
"""(HF on-disk name, tensor) pairs, consumed one at a time."""


# --------------------------------------------------------------------------- batches


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
    """Number of tokens that contribute to the loss across the WHOLE global batch (all ranks,
    all micro-batches): the denominator of the token-level loss (Eq.4)."""

    PER_TOKEN = ("advantages", "token_mask", "old_logprobs", "ref_logprobs")
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


# --------------------------------------------------------------------------- rewards


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


class RewardCall(Protocol):
    """(samples, outputs) -> rewards: the reward function, in this process or on a worker."""

    def __call__(self, samples: Sequence[TaskSample], outputs: Sequence[str]) -> RewardResult: ...


# --------------------------------------------------------------------------- policy


class Policy(Protocol):
    """The model being trained, as the driver sees it (all its ranks together).

    Inputs and outputs live on the CPU of the driver; where the ranks run and how the batch is
    divided among them is the backend's business.
    """

    weight_transports: tuple[str, ...]
    """Ways this policy can hand its weights to engines, preferred first; every policy serves
    "stream" (`export_weights`). See qwenlong.rl.weight_sync."""

    def forward_logprobs(self, batch: PackedBatch, mask: Tensor | None = None) -> TokenStats:
        """Per-token log-probs of `batch.input_ids` and full-vocabulary entropy, packed like
        the input. No gradient. With `mask` ([N] bool) only those positions are computed (the
        output head runs on them alone); the others hold 0."""
        ...

    def train_step(self, batch: PackedBatch, update: PolicyUpdate) -> StepStats:
        """One optimizer step over `batch`, the loss normalised by `update.global_tokens`."""
        ...

    def sft_step(self, batch: PackedBatch, global_tokens: int) -> StepStats:
        """One optimizer step of cross-entropy on the loss-mask tokens, normalised like the RL
        loss by the global batch's token count (the SFT warm start)."""
        ...

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """The weights under HF's on-disk names, streamed one tensor at a time, never the whole
        model in one process's memory."""
        ...

    def load_weights(self, weights: WeightStream) -> None:
        """Replace every weight from a stream of HF on-disk named tensors (strict: each name
        once, every name of the model)."""
        ...

    def save_pretrained(self, out_dir: Path) -> Path:
        """Write the model in HF format (safetensors, config, tokenizer) to `out_dir`."""
        ...

    def save_optimizer_state(self, folder: Path) -> None:
        """Each rank writes its own optimizer state into `folder` (shared storage): nothing the
        size of the optimizer passes through the driver, and a sharded optimizer fits."""
        ...

    def load_optimizer_state(self, folder: Path) -> None:
        """Each rank reads back what `save_optimizer_state` wrote for it; a layout that does
        not match the files is a `CheckpointError`."""
        ...

    def close(self) -> None:
        """Free the model and end the ranks."""
        ...


@dataclass(frozen=True)
class RankLayout:
    """Where one policy rank sits in the parallel layout, as far as the driver must know."""

    data_parallel_rank: int
    """The data-parallel share this rank trains on; tensor, context and pipeline peers share
    one and get the same sequences."""
    data_parallel_size: int
    reports: bool
    """Whether this rank's results stand for its share (exactly one rank per share)."""


class PolicyRank(Protocol):
    """One process of a policy, driven by a `PolicyGroup` (qwenlong.rl.policy_group).

    The group divides each batch among data-parallel shares only and gives every rank the same
    number of micro-batches (possibly empty ones), because collectives such as expert
    parallelism's all-to-all need every rank in every micro-batch. `micro_batches` lists, per
    micro-batch, indices into the rank's `batch`.
    """

    def rendezvous_address(self) -> str:
        """Asked of rank 0 only: an address where every rank can meet to form the process
        groups (`init_method` of `setup`)."""
        ...

    def setup(self, init_method: str | None) -> RankLayout:
        """Join the process groups (when there are several ranks) and load the model."""
        ...

    def forward_logprobs(
        self, batch: PackedBatch, mask: Tensor | None, micro_batches: list[list[int]]
    ) -> TokenStats: ...

    def train_step(
        self,
        batch: PackedBatch,
        update: PolicyUpdate,
        global_sequences: int,
        micro_batches: list[list[int]],
    ) -> StepStats:
        """`global_sequences`: sequences of the global batch with a token in the mask (for
        sequence-level loss aggregations)."""
        ...

    def sft_step(
        self, batch: PackedBatch, global_tokens: int, micro_batches: list[list[int]]
    ) -> StepStats: ...

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """The exporting rank yields every HF-named tensor (on the CPU); the others take part
        in whatever gathers that needs and yield nothing."""
        ...

    def receive_weights(self, chunk: list[tuple[str, Tensor]], last: bool) -> None:
        """One bounded chunk of a weight stream; `last` closes it (and checks completeness)."""
        ...

    def save_pretrained(self, out_dir: str) -> None: ...

    def save_optimizer_state(self, folder: str) -> None: ...

    def load_optimizer_state(self, folder: str) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- rollouts


class RolloutEngine(Protocol):
    """Generates rollouts with the current policy weights."""

    weight_transports: tuple[str, ...]
    """Ways this engine can take weights, preferred first; every engine takes "stream"."""

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """`sampling.n` completions per conversation with token ids (and their log-probs)."""
        ...

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        """Token ids of each rendered prompt, exactly as `generate` fed them to the model."""
        ...

    def load_weights(self, weights: WeightStream) -> None:
        """Replace the engine's weights by the policy's, from a stream of HF on-disk names."""
        ...

    def release_memory(self) -> None:
        """Give up weights and cache memory while the policy trains (colocated engines)."""
        ...

    def reclaim_memory(self) -> None:
        """Take the memory back before generating again."""
        ...

    def close(self) -> None:
        """Free the engine."""
        ...


class Rollout(Protocol):
    """A rollout kind bound to its engine and prompt builder (qwenlong.rl.rollout)."""

    engine: RolloutEngine

    def generate(
        self, samples: Sequence[TaskSample], sampling: SamplingParams, max_input_tokens: int
    ) -> RolloutBatch:
        """`sampling.n` trajectories per sample, the documents cut to `max_input_tokens`."""
        ...
