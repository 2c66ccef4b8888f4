"""A step's rollouts as the tensors the algorithms and the policy consume.

A step draws B prompts and generates G trajectories for each; everything downstream works on
the B*G trajectories in one fixed order: prompt-major, so trajectory `b*G + g` is draw g of
prompt b and `group_ids = b`. A trajectory is a list of sequences the model wrote (its prompt
ids and the completion): one in single pass, the memory agent's K update steps and its final
answer otherwise. Every sequence is packed as prompt + response (the loss mask on the response)
and carries its trajectory's advantage through `RolloutBatch.per_sequence`; rewards read the
last sequence of each trajectory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Completion, TaskSample
from qwenlong.rl.batches import PackedBatch


@dataclass(frozen=True)
class StepSequence:
    """One training sequence of a trajectory: what the model was fed and what it generated."""

    prompt_ids: list[int]
    completion: Completion


Trajectory = Sequence[StepSequence]
"""The sequences of one trajectory in the order written; the last is the final answer."""


@dataclass
class RolloutBatch:
    """One step's B prompts x G trajectories, flattened prompt-major.

    Per-trajectory fields are [B*G]; `packed` holds [S] sequences (S = B*G in single pass).
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
    """G: trajectories per prompt."""
    trajectory_of: Tensor | None = None
    """[S] int64: the trajectory (index into `samples`) each packed sequence belongs to; None
    when every trajectory is exactly one sequence (single pass)."""
    rollout_logprobs: Tensor | None = None
    """[N] float32: the engine's log-prob of each response token where it sampled it (NaN on
    prompt tokens); None unless every response came with its log-probs. The policy's own
    log-probs of the same tokens differ by the training-inference mismatch
    (qwenlong.rl.rollout_correction)."""
    rollout_entropy: Tensor | None = None
    """[N] float32: the full-vocabulary entropy of the distribution each response token was
    sampled from (NaN on prompt tokens); None unless every response came with its entropies
    (the hf engine reports them, vLLM cannot). Strictly on-policy these are the policy's own
    entropies (qwenlong.rl.rollout_stats)."""

    @classmethod
    def from_trajectories(
        cls, samples: Sequence[TaskSample], trajectories: Sequence[Sequence[Trajectory]]
    ) -> RolloutBatch:
        """Pack `trajectories[b]` (the G trajectories of `samples[b]`), prompt-major, each
        trajectory's sequences in order.

        Every prompt must have the same G (GRPO's advantage is per group of equal size) and
        every completion must carry token ids, since the policy trains on exactly those.
        """
        if len(samples) != len(trajectories):
            raise DatasetError(
                f"rollout batch: {len(samples)} samples but {len(trajectories)} trajectory "
                "groups; they must match"
            )
        sizes = {len(group) for group in trajectories}
        if len(sizes) > 1:
            raise DatasetError(f"rollout batch: groups have different sizes {sorted(sizes)}")
        size = sizes.pop() if sizes else 0
        prompts: list[list[int]] = []
        responses: list[list[int]] = []
        engine_logprobs: list[list[float] | None] = []
        engine_entropies: list[list[float] | None] = []
        trajectory_of: list[int] = []
        finals: list[Completion] = []
        for b, (sample, group) in enumerate(zip(samples, trajectories, strict=True)):
            for g, trajectory in enumerate(group):
                if not trajectory:
                    raise DatasetError(
                        f"rollout batch: sample {sample.id!r} trajectory {g} has no sequence"
                    )
                for sequence in trajectory:
                    if not sequence.completion.token_ids:
                        raise DatasetError(
                            f"rollout batch: sample {sample.id!r} trajectory {g} (prompt {b}): "
                            "a response has no token ids; the rollout engine must return them"
                        )
                    prompts.append(list(sequence.prompt_ids))
                    responses.append(list(sequence.completion.token_ids))
                    engine_logprobs.append(sequence.completion.logprobs)
                    engine_entropies.append(sequence.completion.entropies)
                    trajectory_of.append(b * size + g)
                finals.append(trajectory[-1].completion)
        flat_samples = [sample for sample in samples for _ in range(size)]
        task_names = sorted({s.task_type for s in samples})
        task_index = {name: i for i, name in enumerate(task_names)}
        one_each = len(trajectory_of) == len(flat_samples)
        packed = PackedBatch.from_sequences(prompts, responses)
        return cls(
            samples=flat_samples,
            completions=finals,
            group_ids=torch.arange(len(samples)).repeat_interleave(size),
            task_ids=torch.tensor(
                [task_index[s.task_type] for s in flat_samples], dtype=torch.long
            ),
            task_names=task_names,
            packed=packed,
            group_size=size,
            trajectory_of=None if one_each else torch.tensor(trajectory_of, dtype=torch.long),
            rollout_logprobs=_packed_responses(packed, responses, engine_logprobs),
            rollout_entropy=_packed_responses(packed, responses, engine_entropies),
        )

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


def _packed_responses(
    packed: PackedBatch, responses: list[list[int]], per_token: list[list[float] | None]
) -> Tensor | None:
    """The engine's per-response-token values (log-probs, entropies) laid out like `packed`
    (NaN on prompt tokens); None when a response has none, or not one per token (an engine
    that was not asked for them, or cannot give them)."""
    if any(v is None or len(v) != len(r) for v, r in zip(per_token, responses, strict=True)):
        return None
    values = torch.full((packed.num_tokens,), float("nan"), dtype=torch.float32)
    ends = packed.cu_seqlens[1:]
    for end, response, v in zip(ends.tolist(), responses, per_token, strict=True):
        if response:
            values[end - len(response) : end] = torch.tensor(v, dtype=torch.float32)
    return values
