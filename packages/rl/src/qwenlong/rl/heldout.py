"""The held-out split and its evaluation: the evidence that training helped.

The split is made by a hash of each sample's id, not by position: the same sample is held out
whatever order the files list it in and however many samples are added later, and the sampler
never sees a held-out id. The evaluated subset is the first `size` held-out samples in hash
order, so two runs (or a run and its control) are measured on the same prompts.

The figure reported is the mean reward with its standard error (sample std / sqrt(n)): an RL
gain smaller than a few standard errors of the held-out mean is noise.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Conversation, TaskSample
from qwenlong.evals.stats import mean_and_stderr
from qwenlong.rl.interfaces import RolloutEngine
from qwenlong.rl.rewards import RewardResult
from qwenlong.rl.stages import StageConfig

RewardCall = Callable[[Sequence[TaskSample], Sequence[str]], RewardResult]
"""(samples, outputs) -> rewards: a `RewardFn` or its Ray-actor proxy."""


def hash_unit(sample_id: str) -> float:
    """A number in [0, 1) fixed by the id alone (the first 8 bytes of its sha256)."""
    digest = hashlib.sha256(sample_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_heldout(
    samples: Sequence[TaskSample], fraction: float
) -> tuple[list[TaskSample], list[TaskSample]]:
    """(train, held-out): a sample is held out when `hash_unit(id) < fraction`.

    Both keep the input order. Samples sharing an id land on the same side.
    """
    train, heldout = [], []
    for sample in samples:
        (heldout if hash_unit(sample.id) < fraction else train).append(sample)
    return train, heldout


def heldout_subset(samples: Sequence[TaskSample], size: int) -> list[TaskSample]:
    """The first `size` samples in id-hash order (all of them when fewer)."""
    return sorted(samples, key=lambda s: (hash_unit(s.id), s.id))[:size]


def remove_ids(samples: Sequence[TaskSample], excluded: Sequence[TaskSample]) -> list[TaskSample]:
    """`samples` without any whose id appears in `excluded` (a separate held-out file may
    repeat training ids; training must not see them)."""
    ids = {s.id for s in excluded}
    return [s for s in samples if s.id not in ids]


@dataclass
class HeldoutResult:
    """Mean reward of the held-out responses, its standard error, and the per-task means."""

    mean: float
    stderr: float
    count: int
    accuracy: float
    by_task: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "stderr": None if math.isnan(self.stderr) else self.stderr,
            "count": self.count,
            "accuracy": self.accuracy,
            "by_task": self.by_task,
        }


def heldout_sampling(
    temperature: float, top_p: float, stage: StageConfig, seed: int
) -> SamplingParams:
    """One response per prompt at `stage`'s output limit; greedy when `temperature` is 0.

    The seed is the same at every evaluation, so with sampling on, the before and after
    measurements draw with common random numbers and their difference is less noisy.
    """
    return SamplingParams(
        max_new_tokens=stage.max_output_tokens,
        temperature=temperature,
        top_p=top_p if temperature > 0 else 1.0,
        n=1,
        seed=seed,
    )


def evaluate_heldout(
    rollout: RolloutEngine,
    reward: RewardCall,
    samples: Sequence[TaskSample],
    conversations: Sequence[Conversation],
    sampling: SamplingParams,
) -> HeldoutResult:
    """One response per sample (`sampling.n` must be 1), rewarded exactly as in training."""
    if sampling.n != 1:
        raise ValueError(f"held-out evaluation takes one response per prompt, got n={sampling.n}")
    groups = rollout.generate(conversations, sampling)
    outputs = [group[0].text for group in groups]
    result = reward(samples, outputs)
    values = result.rewards.tolist()
    mean, stderr = mean_and_stderr(values)
    return HeldoutResult(
        mean=mean,
        stderr=stderr,
        count=len(values),
        accuracy=float(result.correct.float().mean()),
        by_task=result.mean_by_task(samples),
    )
