"""The held-out split and its evaluation: the evidence that training helped.

The split is made by a hash of each sample's id, not by position: the same sample is held out
whatever order the files list it in and however many samples are added later, and the sampler
never sees a held-out id. The evaluated subset is the first `size` held-out samples in hash
order, so two runs (or a run and its control) are measured on the same prompts.

The figure reported is the mean reward over prompts with its standard error. With several
sampled responses per prompt (`HeldoutConfig.samples`) a prompt's reward is the mean of its
responses and the standard error is taken over prompts (the responses to one prompt are not
independent draws of the benchmark). Every evaluation keeps the per-prompt rewards, so a gain
is measured on the same prompts before and after: its standard error is that of the per-prompt
differences (a paired comparison), which removes the prompt-to-prompt spread that two
independent standard errors would count twice. A gain smaller than a few of those standard
errors is noise.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_validator

from qwenlong.core.config import ConfigModel
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.evals.stats import mean_and_stderr
from qwenlong.rl.rewards import RewardResult
from qwenlong.rl.stages import StageConfig

RewardCall = Callable[[Sequence[TaskSample], Sequence[str]], RewardResult]
"""(samples, outputs) -> rewards: a `RewardFn` or its Ray-actor proxy."""

Responder = Callable[[Sequence[TaskSample], SamplingParams], list[str]]
"""(samples, sampling) -> `sampling.n` final response texts per sample, sample-major: how the
policy answers, the same way its training rollouts do (one prompt, or the memory agent)."""


class HeldoutConfig(ConfigModel):
    """Held-out evaluation: before RL, every `every` steps, after RL, and after the SFT control.

    All defaults are ours except where the paper's evaluation setting is named.
    """

    size: int = Field(default=0, ge=0)
    """Held-out prompts evaluated (the first ones by id hash); 0 turns held-out evaluation
    off."""
    temperature: float = Field(default=0.0, ge=0)
    """Sampling temperature of the responses; 0 is greedy (one deterministic response per
    prompt). The paper evaluates at 0.7 with top-p 0.95 (RECIPE.md section 4); top-p is
    `rollout.top_p`."""
    samples: int = Field(default=1, ge=1)
    """Sampled responses per prompt; the prompt's reward is their mean. More samples shrink
    the sampling noise of each prompt's reward, not the spread between prompts. Needs
    `temperature` > 0."""
    greedy: bool = False
    """With `temperature` > 0, also evaluate one greedy response per prompt and report it
    beside the sampled figure (`heldout_greedy_*` in the summary): the sampled reward rises
    both when the policy learns and when it only grows more certain, the greedy one only
    when its most likely answer changes."""
    every: int | None = Field(default=None, ge=1)
    """Also evaluate every this many steps; None: only before the first and after the last."""

    @model_validator(mode="after")
    def _check(self) -> HeldoutConfig:
        if self.temperature == 0 and self.samples > 1:
            raise ValueError(
                f"samples is {self.samples} but temperature is 0: greedy responses are all the "
                "same; set a temperature or samples: 1"
            )
        if self.temperature == 0 and self.greedy:
            raise ValueError("greedy: true needs temperature > 0 (at 0 the main figure is greedy)")
        return self


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
    """Mean reward over the held-out prompts, its standard error, the per-task means and each
    prompt's reward (in the evaluated order, for paired comparisons)."""

    mean: float
    stderr: float
    count: int
    """Prompts."""
    accuracy: float
    """Share of all responses judged correct."""
    responses: int = 1
    """Responses per prompt."""
    by_task: dict[str, float] = field(default_factory=dict)
    per_prompt: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "stderr": None if math.isnan(self.stderr) else self.stderr,
            "count": self.count,
            "responses": self.responses,
            "accuracy": self.accuracy,
            "by_task": self.by_task,
            "per_prompt": self.per_prompt,
        }


def heldout_sampling(
    temperature: float, top_p: float, stage: StageConfig, seed: int, samples: int = 1
) -> SamplingParams:
    """`samples` responses per prompt at `stage`'s output limit; greedy when `temperature` is 0.

    The seed is the same at every evaluation, so with sampling on, the before and after
    measurements draw with common random numbers and their difference is less noisy.
    """
    if temperature == 0 and samples != 1:
        raise ValueError(f"greedy evaluation takes one response per prompt, got {samples}")
    return SamplingParams(
        max_new_tokens=stage.max_output_tokens,
        temperature=temperature,
        top_p=top_p if temperature > 0 else 1.0,
        n=samples,
        seed=seed,
    )


def evaluate_heldout(
    respond: Responder,
    reward: RewardCall,
    samples: Sequence[TaskSample],
    sampling: SamplingParams,
) -> HeldoutResult:
    """`sampling.n` responses per sample from `respond`, rewarded exactly as in training; a
    prompt's reward is the mean over its responses, the standard error is over prompts."""
    n = sampling.n
    outputs = respond(samples, sampling)
    if len(outputs) != len(samples) * n:
        raise ValueError(
            f"held-out: {len(outputs)} responses for {len(samples)} prompts x {n} samples"
        )
    repeated = [sample for sample in samples for _ in range(n)]
    result = reward(repeated, outputs)
    per_prompt = result.rewards.reshape(len(samples), n).mean(dim=1).tolist()
    mean, stderr = mean_and_stderr(per_prompt)
    return HeldoutResult(
        mean=mean,
        stderr=stderr,
        count=len(per_prompt),
        accuracy=float(result.correct.float().mean()),
        responses=n,
        by_task=result.mean_by_task(repeated),
        per_prompt=per_prompt,
    )


def paired_gain(before: Sequence[float], after: Sequence[float]) -> tuple[float, float]:
    """Mean of `after - before` over the same prompts and its standard error.

    The standard error is that of the per-prompt differences (std with n-1 over sqrt(n)): the
    paired comparison. It is smaller than combining two independent standard errors whenever
    a prompt that is easy before tends to be easy after, which on a fixed held-out set it is.
    NaN with a single prompt.
    """
    if len(before) != len(after) or not before:
        raise ValueError(
            f"paired_gain needs the same non-empty prompts, got {len(before)} and {len(after)}"
        )
    return mean_and_stderr([b - a for a, b in zip(before, after, strict=True)])


def gain_fields(
    name: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, float | None]:
    """`{name}` (after minus before) and `{name}_stderr` from two held-out records of the same
    prompts (paired, see `paired_gain`); `{name}_greedy` and `{name}_greedy_stderr` too when
    both records carry a greedy evaluation."""
    fields: dict[str, float | None] = {}
    pairs = [(name, before, after)]
    if "greedy" in before and "greedy" in after:
        pairs.append((f"{name}_greedy", before["greedy"], after["greedy"]))
    for label, first, second in pairs:
        gain, stderr = paired_gain(first["per_prompt"], second["per_prompt"])
        fields[label] = gain
        fields[f"{label}_stderr"] = None if math.isnan(stderr) else stderr
    return fields
