"""Turning a step's rollouts into the tensors the algorithms and the policy consume.

A step draws B prompts and generates G responses for each; everything downstream works on the
B*G sequences in one fixed order: prompt-major, so sequence `b*G + g` is response g of prompt b
and `group_ids = b`. The packed batch holds each sequence as prompt + response (the loss mask on
the response), and per-sequence values (advantages, kept flags) are broadcast to tokens with the
batch's own `sequence_index`, so no caller has to re-derive the layout.

How the B*G trajectories are generated is a rollout kind (`ROLLOUTS`, chosen by
`rollout.kind`): "single_pass" makes each trajectory one sequence; "memagent"
(qwenlong.rl.memagent_rollout) makes it K memory-update steps plus the final answer, each step
its own packed sequence, mapped back to its trajectory by `RolloutBatch.trajectory_of`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, TaskSample
from qwenlong.core.registry import Registry
from qwenlong.rl.interfaces import PackedBatch, RolloutEngine
from qwenlong.rl.prompting import PromptBuilder

if TYPE_CHECKING:
    from qwenlong.rl.config import RolloutConfig


@dataclass
class RolloutBatch:
    """One step's B prompts x G trajectories, flattened prompt-major.

    A trajectory is one response (single pass) or the memory agent's steps and final answer;
    per-trajectory fields are [B*G], `packed` holds [S] sequences (S = B*G in single pass).
    """

    samples: list[TaskSample]
    """[B*G] the sample each trajectory answers (each prompt repeated G times)."""
    completions: list[Completion]
    """[B*G] the final responses (what the reward reads)."""
    group_ids: Tensor
    """[B*G] int64: the prompt index b of each trajectory (the GRPO group)."""
    task_ids: Tensor
    """[B*G] int64: index of each trajectory's task type in `task_names`."""
    task_names: list[str]
    """Task types present, sorted; `task_ids` index into it."""
    packed: PackedBatch
    """Prompt + response tokens of every sequence, loss mask on the responses."""
    group_size: int
    """G: responses per prompt."""
    trajectory_of: Tensor | None = None
    """[S] int64: the trajectory (index into `samples`) each packed sequence is a step of;
    None when every trajectory is exactly one sequence (single pass)."""

    def per_sequence(self, values: Tensor) -> Tensor:
        """Per-trajectory `values` [B*G] copied to every packed sequence of the trajectory [S]."""
        if values.numel() != len(self.samples):
            raise ValueError(f"{values.numel()} values for {len(self.samples)} trajectories")
        return values if self.trajectory_of is None else values[self.trajectory_of]

    @property
    def outputs(self) -> list[str]:
        """Final response texts, in trajectory order (what the reward reads)."""
        return [c.text for c in self.completions]

    def response_lengths(self) -> Tensor:
        """[B*G] int64: generated tokens of each final response."""
        return torch.tensor([len(c.token_ids) for c in self.completions], dtype=torch.long)

    def truncated(self) -> Tensor:
        """[B*G] bool: responses cut by max_new_tokens rather than ended by the model."""
        return torch.tensor([c.finish_reason == "length" for c in self.completions])


def build_rollout_batch(
    samples: Sequence[TaskSample],
    prompt_ids: Sequence[Sequence[int]],
    groups: Sequence[Sequence[Completion]],
) -> RolloutBatch:
    """Flatten `groups[b]` (the G completions of `samples[b]`) into one `RolloutBatch`.

    Every group must have the same size G (GRPO's advantage is per group of equal size) and
    every completion must carry token ids, since the policy trains on exactly those tokens.
    """
    if not len(samples) == len(prompt_ids) == len(groups):
        raise DatasetError(
            f"rollout batch: {len(samples)} samples, {len(prompt_ids)} prompts and "
            f"{len(groups)} completion groups; they must match"
        )
    sizes = {len(group) for group in groups}
    if len(sizes) > 1:
        raise DatasetError(f"rollout batch: groups have different sizes {sorted(sizes)}")
    size = sizes.pop() if sizes else 0
    task_names = sorted({s.task_type for s in samples})
    task_index = {name: i for i, name in enumerate(task_names)}
    flat_samples: list[TaskSample] = []
    flat_completions: list[Completion] = []
    for b, (sample, group) in enumerate(zip(samples, groups, strict=True)):
        for g, completion in enumerate(group):
            if not completion.token_ids:
                raise DatasetError(
                    f"rollout batch: sample {sample.id!r} response {g} has no token ids "
                    f"(prompt {b}); the rollout engine must return them"
                )
            flat_samples.append(sample)
            flat_completions.append(completion)
    repeated_prompts = [prompt_ids[b] for b in range(len(samples)) for _ in range(size)]
    packed = PackedBatch.from_sequences(repeated_prompts, [c.token_ids for c in flat_completions])
    return RolloutBatch(
        samples=flat_samples,
        completions=flat_completions,
        group_ids=torch.arange(len(samples)).repeat_interleave(size),
        task_ids=torch.tensor([task_index[s.task_type] for s in flat_samples], dtype=torch.long),
        task_names=task_names,
        packed=packed,
        group_size=size,
    )


RolloutFn = Callable[
    [Sequence[TaskSample], RolloutEngine, PromptBuilder, int, SamplingParams, "RolloutConfig"],
    RolloutBatch,
]
"""(samples, engine, prompt builder, max input tokens, sampling with n = G, rollout config)
-> the step's `RolloutBatch`."""

ROLLOUTS: Registry[RolloutFn] = Registry("rollout kind")
ROLLOUTS.add_lazy("memagent", "qwenlong.rl.memagent_rollout:memagent_rollout")


@ROLLOUTS.register("single_pass")
def single_pass_rollout(
    samples: Sequence[TaskSample],
    engine: RolloutEngine,
    prompts: PromptBuilder,
    max_input_tokens: int,
    sampling: SamplingParams,
    config: RolloutConfig,
) -> RolloutBatch:
    """G responses to each sample's one prompt, its document middle-truncated to the limit."""
    conversations = prompts.conversations(samples, max_input_tokens)
    groups = engine.generate(conversations, sampling)
    return build_rollout_batch(samples, engine.prompt_ids(conversations), groups)


def to_tokens(values: Tensor, packed: PackedBatch) -> Tensor:
    """Broadcast per-sequence `values` [S] to per-token [N] (each token gets its sequence's)."""
    if values.numel() != packed.num_sequences:
        raise ValueError(f"{values.numel()} values for {packed.num_sequences} sequences")
    return values[packed.sequence_index()]


def token_positions(packed: PackedBatch, sequences: Sequence[int]) -> Tensor:
    """[n] int64: the token positions of `sequences` in `packed`, in the order `select` uses.

    `packed.select(sequences)` keeps the same tokens in the same order, so per-token tensors of
    the full batch are cut for a sub-batch with `tensor[token_positions(packed, sequences)]`.
    """
    starts, ends = packed.cu_seqlens[:-1], packed.cu_seqlens[1:]
    pieces = [torch.arange(int(starts[s]), int(ends[s])) for s in sequences]
    return torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)


def minibatches(num_sequences: int, count: int, generator: torch.Generator) -> list[list[int]]:
    """Split sequence indices into `count` shuffled mini-batches of near-equal size.

    Used when a batch gets several optimizer updates (off-policy); sizes differ by at most one
    and every sequence appears exactly once. Each mini-batch is returned sorted, which keeps
    sequences of one group together in memory without changing what is learned.
    """
    if count < 1:
        raise ValueError(f"mini-batch count must be >= 1, got {count}")
    if count > num_sequences:
        raise ConfigError(
            f"{count} updates per batch but only {num_sequences} sequences: every mini-batch "
            "needs at least one"
        )
    order = torch.randperm(num_sequences, generator=generator).tolist()
    return [sorted(order[i::count]) for i in range(count)]


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed fixed by `seed` and `parts` (e.g. "rollout", step).

    Every random draw of a training step is seeded from (run seed, purpose, step) alone, never
    from a generator carried across steps, so a run resumed at step k draws exactly what the
    uninterrupted run drew there.
    """
    text = "\x00".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1
