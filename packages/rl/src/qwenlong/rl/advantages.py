"""Advantage estimators: one scalar per response from the rewards of a batch of groups.

A batch holds B responses; `group_ids[i]` names the prompt response i answers (the G responses
of one prompt share it) and `task_ids[i]` its task type. Every estimator subtracts the mean
reward of the response's group (the GRPO baseline, Eq.3); they differ in the scale they divide
by:

| name            | divides by                                          | source            |
|-----------------|-----------------------------------------------------|-------------------|
| grpo            | std of the group + eps                              | Eq.3 (GRPO)       |
| grpo_batch_std  | std of the whole batch + eps                        | ablation baseline |
| grpo_task_std   | std of every response of the same task in the batch | Eq.7 (the paper)  |

Why Eq.7: QwenLong-L1.5 mixes dense-reward tasks (dialogue-memory needles scored 0..1) with
binary ones (question answering, multiple choice). A per-group std blows a group's tiny reward
spread up to unit scale, so a group whose answers differ by 0.01 pushes as hard as one whose
answers differ by 1. Dividing by the spread of the whole task keeps each task's natural scale
while still putting tasks with different reward ranges on a comparable footing.

All standard deviations are unbiased (Bessel's correction, as `torch.std`) and defined as 0 for
a set of one item, where the numerator is 0 too: a lone response gets advantage 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from pydantic import Field, field_validator
from torch import Tensor

from qwenlong.core.config import ConfigModel
from qwenlong.core.registry import Registry

AdvantageFn = Callable[[Tensor, Tensor, Tensor, float], Tensor]
"""(rewards[B] float, group_ids[B] long, task_ids[B] long, eps) -> advantages[B] float32."""

ADVANTAGES: Registry[AdvantageFn] = Registry("advantage estimator")


class AdvantageConfig(ConfigModel):
    """Which advantage estimator turns rewards into per-response advantages."""

    estimator: str = "grpo_task_std"
    """ADVANTAGES name: "grpo" (Eq.3, group std), "grpo_batch_std" (batch std) or
    "grpo_task_std" (Eq.7, std over the same task in the batch: the paper's choice)."""
    eps: float = Field(default=1e-6, gt=0)
    """Added to the std before dividing, so a group (or task) whose rewards are all equal gets
    advantage 0 instead of 0/0. Eq.7 gives 1e-6; we use it for every estimator."""

    @field_validator("estimator")
    @classmethod
    def _known_estimator(cls, value: str) -> str:
        if value not in ADVANTAGES:
            raise ValueError(f"unknown advantage estimator {value!r}; known: {ADVANTAGES.names()}")
        return value


def compute_advantages(
    rewards: Tensor, group_ids: Tensor, task_ids: Tensor, config: AdvantageConfig
) -> Tensor:
    """Advantages [B] float32 of `rewards` [B] under `config.estimator`.

    Raises ValueError when the three tensors disagree in shape or a reward is not finite (a NaN
    would silently poison every advantage of its group and task).
    """
    _check_inputs(rewards, group_ids, task_ids)
    return ADVANTAGES.get(config.estimator)(rewards, group_ids, task_ids, config.eps)


@ADVANTAGES.register("grpo")
def group_std_advantage(
    rewards: Tensor, group_ids: Tensor, task_ids: Tensor, eps: float = 1e-6
) -> Tensor:
    """Eq.3: (r - mean of the group) / (std of the group + eps)."""
    values = rewards.double()
    centred = _group_centred(values, group_ids)
    scale = _segment_std(values, group_ids)[_dense(group_ids)]
    return (centred / (scale + eps)).float()


@ADVANTAGES.register("grpo_batch_std")
def batch_std_advantage(
    rewards: Tensor, group_ids: Tensor, task_ids: Tensor, eps: float = 1e-6
) -> Tensor:
    """(r - mean of the group) / (std of every reward in the batch + eps)."""
    values = rewards.double()
    centred = _group_centred(values, group_ids)
    return (centred / (_unbiased_std(values) + eps)).float()


@ADVANTAGES.register("grpo_task_std")
def task_std_advantage(
    rewards: Tensor, group_ids: Tensor, task_ids: Tensor, eps: float = 1e-6
) -> Tensor:
    """Eq.7: (r - mean of the group) / (std over the same task in the batch + eps)."""
    values = rewards.double()
    centred = _group_centred(values, group_ids)
    scale = _segment_std(values, task_ids)[_dense(task_ids)]
    return (centred / (scale + eps)).float()


def _group_centred(values: Tensor, group_ids: Tensor) -> Tensor:
    """r minus the mean reward of its prompt's group: the numerator of every estimator."""
    return values - _segment_mean(values, group_ids)[_dense(group_ids)]


def _check_inputs(rewards: Tensor, group_ids: Tensor, task_ids: Tensor) -> None:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [B], got shape {tuple(rewards.shape)}")
    for name, ids in (("group_ids", group_ids), ("task_ids", task_ids)):
        if ids.shape != rewards.shape:
            raise ValueError(
                f"{name} shape {tuple(ids.shape)} differs from rewards {tuple(rewards.shape)}"
            )
        if ids.dtype.is_floating_point:
            raise ValueError(f"{name} must be integer ids, got {ids.dtype}")
    bad = (~torch.isfinite(rewards)).nonzero()
    if bad.numel():
        index = int(bad[0])
        raise ValueError(f"reward {index} is {float(rewards[index])}; rewards must be finite")


def _dense(ids: Tensor) -> Tensor:
    """Map arbitrary integer ids to 0..K-1 (sorted order), so they can index segment tensors."""
    return torch.unique(ids, return_inverse=True)[1]


def _segment_mean(values: Tensor, ids: Tensor) -> Tensor:
    """[K] mean of `values` within each distinct id (sorted id order)."""
    index = _dense(ids)
    count = torch.bincount(index).to(values.dtype)
    total = torch.zeros_like(count).index_add_(0, index, values)
    return total / count


def _segment_std(values: Tensor, ids: Tensor) -> Tensor:
    """[K] unbiased std of `values` within each distinct id; 0 for an id with one item."""
    index = _dense(ids)
    count = torch.bincount(index).to(values.dtype)
    mean = _segment_mean(values, ids)
    squares = torch.zeros_like(count).index_add_(0, index, (values - mean[index]) ** 2)
    variance = squares / (count - 1).clamp(min=1)
    return torch.where(count > 1, variance.sqrt(), torch.zeros_like(variance))


def _unbiased_std(values: Tensor) -> Tensor:
    if values.numel() < 2:
        return values.new_zeros(())
    return values.std(correction=1)
