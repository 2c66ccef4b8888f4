"""From rollouts to tensors: the prompt-major layout of trajectories, per-token broadcasting,
sub-batches, and mini-batch splits."""

from __future__ import annotations

import pytest
import torch

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.records import Completion, TaskSample
from qwenlong.rl.rollout.batch import RolloutBatch, StepSequence
from qwenlong.rl.updates import minibatches


def sample(i: int, task: str) -> TaskSample:
    return TaskSample(id=f"s{i}", task_type=task, question="q", answers=["a"])


def completion(ids: list[int], finish: str = "stop") -> Completion:
    return Completion(text="".join(chr(96 + i) for i in ids), token_ids=ids, finish_reason=finish)


def build_rollout_batch(
    samples: list[TaskSample], prompt_ids: list[list[int]], groups: list[list[Completion]]
) -> RolloutBatch:
    """Single-pass trajectories: each completion one sequence after its prompt's ids."""
    trajectories = [
        [[StepSequence(prompt_ids[b], c)] for c in group] for b, group in enumerate(groups)
    ]
    return RolloutBatch.from_trajectories(samples, trajectories)


def test_groups_are_flattened_prompt_major() -> None:
    samples = [sample(0, "reading"), sample(1, "mc")]
    groups = [
        [completion([1]), completion([2, 3], "length")],
        [completion([4, 5, 6]), completion([7])],
    ]
    batch = build_rollout_batch(samples, [[10, 11], [12]], groups)
    assert [s.id for s in batch.samples] == ["s0", "s0", "s1", "s1"]
    assert batch.group_ids.tolist() == [0, 0, 1, 1]
    assert batch.task_names == ["mc", "reading"]
    assert batch.task_ids.tolist() == [1, 1, 0, 0]
    assert batch.group_size == 2
    assert batch.packed.input_ids.tolist() == [10, 11, 1, 10, 11, 2, 3, 12, 4, 5, 6, 12, 7]
    assert batch.packed.cu_seqlens.tolist() == [0, 3, 7, 11, 13]
    assert batch.packed.loss_mask.tolist() == [
        *[False, False, True],
        *[False, False, True, True],
        *[False, True, True, True],
        *[False, True],
    ]
    assert batch.response_lengths().tolist() == [1, 2, 3, 1]
    assert batch.truncated().tolist() == [False, True, False, False]
    assert batch.outputs == ["a", "bc", "def", "g"]


def test_unequal_groups_and_missing_token_ids_are_refused() -> None:
    samples = [sample(0, "mc"), sample(1, "mc")]
    with pytest.raises(DatasetError, match=r"groups have different sizes \[1, 2\]"):
        build_rollout_batch(samples, [[1], [2]], [[completion([1])], [completion([1])] * 2])
    with pytest.raises(DatasetError, match=r"sample 's1' trajectory 0 .*has no token ids"):
        build_rollout_batch(samples, [[1], [2]], [[completion([1])], [Completion(text="x")]])
    with pytest.raises(DatasetError, match="2 samples but 1 trajectory groups"):
        RolloutBatch.from_trajectories(samples, [[[StepSequence([1], completion([1]))]]])


def test_multi_sequence_trajectories_map_each_sequence_to_its_trajectory() -> None:
    step, final = StepSequence([5], completion([1])), StepSequence([6], completion([2, 3]))
    batch = RolloutBatch.from_trajectories(
        [sample(0, "mc")], [[[step, final], [StepSequence([7], completion([4]))]]]
    )
    assert batch.trajectory_of is not None and batch.trajectory_of.tolist() == [0, 0, 1]
    assert batch.outputs == ["bc", "d"]
    assert batch.per_sequence(torch.tensor([0.5, -1.0])).tolist() == [0.5, 0.5, -1.0]


def test_sequence_values_broadcast_to_their_tokens() -> None:
    batch = build_rollout_batch(
        [sample(0, "mc")], [[9, 9]], [[completion([1]), completion([2, 3])]]
    ).packed
    assert batch.to_tokens(torch.tensor([0.5, -1.0])).tolist() == [0.5] * 3 + [-1.0] * 4
    with pytest.raises(ValueError, match="3 values for 2 sequences"):
        batch.to_tokens(torch.zeros(3))


def test_token_positions_follow_select() -> None:
    batch = build_rollout_batch(
        [sample(0, "mc"), sample(1, "mc")],
        [[10], [20, 21]],
        [[completion([1]), completion([2, 3])], [completion([4]), completion([5, 6, 7])]],
    ).packed
    chosen = [3, 1]
    positions = batch.token_positions(chosen)
    part = batch.select(chosen)
    assert torch.equal(batch.input_ids[positions], part.input_ids)
    assert torch.equal(batch.loss_mask[positions], part.loss_mask)
    assert batch.token_positions([]).numel() == 0


def test_minibatches_partition_the_sequences() -> None:
    parts = minibatches(10, 3, torch.Generator().manual_seed(0))
    assert sorted(len(p) for p in parts) == [3, 3, 4]
    assert sorted(i for p in parts for i in p) == list(range(10))
    assert all(p == sorted(p) for p in parts)
    again = minibatches(10, 3, torch.Generator().manual_seed(0))
    assert parts == again
    with pytest.raises(ConfigError, match="3 updates per batch but only 2 sequences"):
        minibatches(2, 3, torch.Generator())
