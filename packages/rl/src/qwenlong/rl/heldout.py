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

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.core.seeding import derive_seed
from qwenlong.evals.stats import mean_and_stderr
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import RewardCall, Rollout
from qwenlong.rl.stages import StageConfig

Responder = Callable[[Sequence[TaskSample], SamplingParams], list[str]]
"""(samples, sampling) -> `sampling.n` final response texts per sample, sample-major: how the
policy answers, the same way its training rollouts do (one prompt, or the memory agent)."""


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


def evaluate_run_heldout(
    config: TrainConfig,
    samples: Sequence[TaskSample],
    stage: StageConfig,
    rollout: Rollout,
    reward: RewardCall,
) -> dict[str, Any]:
    """A run's held-out record of the engines' current weights at `stage`'s lengths (the
    run's last stage): the configured evaluation (`HeldoutResult.as_dict()`), plus under
    "greedy" a greedy one when `heldout.greedy` is set.

    Responses come from the training rollout kind, so a memory-agent run is evaluated as a
    memory agent (its final answers are rewarded) and a single-pass run on one prompt. The
    seed is the same at every evaluation (common random numbers before and after).
    """
    settings = config.heldout
    seed = derive_seed(config.seed, "heldout")

    def respond(chosen: Sequence[TaskSample], sampling: SamplingParams) -> list[str]:
        return rollout.generate(chosen, sampling, stage.max_input_tokens).outputs

    def run(temperature: float, responses: int) -> HeldoutResult:
        sampling = heldout_sampling(temperature, config.rollout.top_p, stage, seed, responses)
        return evaluate_heldout(respond, reward, samples, sampling)

    record = run(settings.temperature, settings.samples).as_dict()
    if settings.greedy:
        record["greedy"] = run(0.0, 1).as_dict()
    return record


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
