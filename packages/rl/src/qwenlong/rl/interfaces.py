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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from torch import Tensor

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, TaskSample
from qwenlong.rl.batches import (
    PackedBatch,
    PolicyUpdate,
    RewardResult,
    StepStats,
    TokenStats,
)
from qwenlong.rl.rollout.batch import RolloutBatch

__all__ = [
    "PackedBatch",
    "Policy",
    "PolicyRank",
    "PolicyUpdate",
    "RankLayout",
    "RewardCall",
    "RewardResult",
    "Rollout",
    "RolloutBatch",
    "RolloutEngine",
    "StepStats",
    "TokenStats",
    "WeightStream",
]


WeightStream = Iterable[tuple[str, Tensor]]
"""(HF on-disk name, tensor) pairs, consumed one at a time."""


# --------------------------------------------------------------------------- rewards


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

    def set_learning_rate_scale(self, scale: float) -> None:
        """Train from the next step on at the configured learning rate x `scale` (a collapse
        rollback lowers it, qwenlong.rl.collapse); loading optimizer state resets it to 1."""
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

    def set_learning_rate_scale(self, scale: float) -> None: ...

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
