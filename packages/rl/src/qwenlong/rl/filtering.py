"""Retrospective difficulty filtering between length stages (RECIPE.md section 2).

Before each progressive-length stage, the data is filtered again with what the policy has
learned: a prompt must fit the next stage's input limit, and a question the policy always
solved (pass rate 1) or never solved (pass rate 0) is dropped. In GRPO both give a group of
equal rewards, hence zero advantage and no gradient: they cost a full rollout and teach
nothing. Pass rates are measured on the policy being trained, not on a reference model:

- `measure: pre_inference` (the paper: "difficulty filtering under the next stage's lengths"):
  a pass@k pre-inference of the current policy with the next stage's input and output limits
  (qwenlong.rl.pre_inference);
- `measure: previous_rollouts` (this project's earlier step): the previous stage's own rollouts
  (`PassRateTally`), measured at its shorter output limit, so it also drops questions that
  failed only because their answer did not fit.

Then QwenLong-L1's difficulty-aware retrospective sampling: a kept question an earlier stage
trained on enters the next stage's pool `replay_weights[bin]` times, by the bin of its pass
rate (`replay_bins`): the harder, the more often it is drawn again (`replay_pool`). Questions
new at this stage weigh 1. A sample without a pass rate is kept by default: new data entering
at a stage must not be filtered for lack of history.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from qwenlong.core.atomic_files import atomic_writer
from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import DatasetError
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.records import TaskSample
from qwenlong.evals.prompts import build_prompt

REASONS = ("kept", "too_long", "always_solved", "never_solved", "unmeasured_dropped")
"""Outcomes of filtering one sample, in the order the report lists them."""

TokenCounter = Callable[[str], int]
"""Counts tokens of a text in the policy's tokenizer."""


class RetroFilterConfig(ConfigModel):
    """Which samples the next stage trains on."""

    max_input_tokens: int | None = Field(default=None, ge=1)
    """The next stage's input limit (paper: 20K, 60K, 120K for stages 1-3); a longer prompt is
    dropped. None applies no length limit."""
    prompt_margin_tokens: int = Field(default=0, ge=0)
    """Tokens added to `context_tokens` for the question, instructions and template when no
    token counter is given (with a counter they are counted). Not published; our choice."""
    never_solved_at_most: float | None = Field(default=0.0, ge=0, le=1)
    """Drop samples whose pass rate is at most this (0: never solved, no gradient signal).
    None keeps them. Raise it to drop near-hopeless questions too."""
    always_solved_at_least: float | None = Field(default=1.0, ge=0, le=1)
    """Drop samples whose pass rate is at least this (1: always solved, no gradient signal).
    None keeps them. Lower it to drop near-trivial questions too."""
    keep_unmeasured: bool = True
    """Keep samples without a pass rate (the previous stage never drew them)."""
    measure: Literal["pre_inference", "previous_rollouts"] = "pre_inference"
    """Where pass rates come from. "pre_inference" (the paper): pass@`pass_k` of the current
    policy on every candidate at the next stage's input and output limits, before the stage.
    "previous_rollouts" (earlier behaviour of this project): the previous stage's own rollouts,
    free but measured at its shorter output limit."""
    pass_k: int = Field(default=8, ge=1)
    """Answers per question in the pre-inference. Not published; ours: the paper's G = 8, so a
    question is kept exactly when a training group would have reward variance."""
    prompts_per_call: int = Field(default=64, ge=1)
    """Questions per engine call of the pre-inference (each a batch of pass_k answers); results
    are recorded after every call. Ours."""
    replay_bins: tuple[float, ...] = (0.25, 0.5, 0.75)
    """Pass-rate bin edges of the retrospective sampling, ascending in (0, 1). Ours: QwenLong-L1
    weights earlier stages' questions by difficulty without publishing the bins."""
    replay_weights: tuple[int, ...] = (4, 3, 2, 1)
    """Copies in the next stage's pool of a kept question an earlier stage trained on, per
    bin of its pass rate (one more than `replay_bins`): pass rate < 0.25 four times, ... >=
    0.75 once. All 1 turns the sampling off. Ours."""

    @model_validator(mode="after")
    def _check(self) -> RetroFilterConfig:
        edges = self.replay_bins
        if any(not 0 < e < 1 for e in edges) or list(edges) != sorted(set(edges)):
            raise ValueError(f"replay_bins {list(edges)} must be ascending, each in (0, 1)")
        if len(self.replay_weights) != len(edges) + 1 or min(self.replay_weights) < 1:
            raise ValueError(
                f"replay_weights needs {len(edges) + 1} whole numbers >= 1 (one per bin of "
                f"replay_bins), got {list(self.replay_weights)}"
            )
        low, high = self.never_solved_at_most, self.always_solved_at_least
        if low is not None and high is not None and low >= high:
            raise ValueError(
                f"never_solved_at_most {low} must be below always_solved_at_least {high}; "
                "otherwise every measured sample is dropped"
            )
        return self


@dataclass
class FilterReport:
    """The kept samples and why the others went."""

    kept: list[TaskSample]
    counts: Counter[str] = field(default_factory=Counter)
    """Samples per reason (`REASONS`)."""
    by_task: dict[str, Counter[str]] = field(default_factory=dict)
    """task type -> samples per reason: a task emptied by filtering shows here before the
    sampler refuses it."""

    def summary(self) -> str:
        """One line for logs: `kept=812, too_long=40, ...` (zero counts left out)."""
        return ", ".join(f"{r}={self.counts[r]}" for r in REASONS if self.counts[r])


def prompt_tokens(
    sample: TaskSample,
    config: RetroFilterConfig,
    count_tokens: TokenCounter | None,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> int:
    """Tokens of `sample`'s single-pass prompt, counting as little text as possible.

    With `context_tokens` known, only the prompt around the context is counted (or the
    configured margin is added when no counter is given): long contexts are never re-tokenised.
    Without it, the whole prompt is counted, which needs a counter.
    """
    if sample.context_tokens is not None:
        if count_tokens is None:
            return sample.context_tokens + config.prompt_margin_tokens
        return sample.context_tokens + count_tokens(build_prompt(sample, "", prompts))
    if count_tokens is None:
        raise DatasetError(
            f"sample {sample.id}: context_tokens is not set and no token counter was given "
            "to measure its prompt against max_input_tokens"
        )
    return count_tokens(build_prompt(sample, None, prompts))


def _check_rate(sample_id: str, rate: float) -> float:
    if not (isinstance(rate, int | float) and math.isfinite(rate) and 0 <= rate <= 1):
        raise DatasetError(f"pass rates: sample {sample_id}: {rate!r} is not a number in [0, 1]")
    return float(rate)


def _reason(rate: float | None, config: RetroFilterConfig) -> str:
    if rate is None:
        return "kept" if config.keep_unmeasured else "unmeasured_dropped"
    if config.always_solved_at_least is not None and rate >= config.always_solved_at_least:
        return "always_solved"
    if config.never_solved_at_most is not None and rate <= config.never_solved_at_most:
        return "never_solved"
    return "kept"


def retrospective_filter(
    samples: Sequence[TaskSample],
    pass_rates: Mapping[str, float],
    config: RetroFilterConfig,
    count_tokens: TokenCounter | None = None,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> FilterReport:
    """Keep the samples that fit the next stage and still carry a learning signal.

    A too-long prompt is reported as `too_long` whatever its pass rate. Every pass rate is
    checked (in [0, 1]) before any sample is measured.
    """
    rates = {key: _check_rate(key, value) for key, value in pass_rates.items()}
    report = FilterReport(kept=[])
    for sample in samples:
        if (
            config.max_input_tokens is not None
            and prompt_tokens(sample, config, count_tokens, prompts) > config.max_input_tokens
        ):
            reason = "too_long"
        else:
            reason = _reason(rates.get(sample.id), config)
        if reason == "kept":
            report.kept.append(sample)
        report.counts[reason] += 1
        report.by_task.setdefault(sample.task_type, Counter())[reason] += 1
    return report


def replay_pool(
    kept: Sequence[TaskSample],
    pass_rates: Mapping[str, float],
    seen: set[str],
    config: RetroFilterConfig,
) -> list[TaskSample]:
    """The next stage's pool: each kept sample an earlier stage trained on (`seen`) repeated
    by the weight of its pass-rate bin, every other sample once, order kept."""
    pool: list[TaskSample] = []
    for sample in kept:
        rate = pass_rates.get(sample.id)
        copies = 1
        if sample.id in seen and rate is not None:
            copies = config.replay_weights[sum(rate >= edge for edge in config.replay_bins)]
        pool.extend([sample] * copies)
    return pool


class PassRateTally:
    """Per-sample correct/attempt counts accumulated over a stage's rollouts.

    The trainer adds every scored rollout; the next stage's filter reads `rates()`. Its state
    is saved with the checkpoint, so a resumed stage keeps the history of the steps before.
    """

    def __init__(self) -> None:
        self.passed: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()

    def add(self, sample_ids: Sequence[str], correct: Sequence[bool]) -> None:
        """Record one verdict per rollout (a prompt's G rollouts repeat its id G times)."""
        if len(sample_ids) != len(correct):
            raise DatasetError(
                f"pass rates: {len(sample_ids)} sample ids but {len(correct)} verdicts"
            )
        for sample_id, ok in zip(sample_ids, correct, strict=True):
            self.attempts[sample_id] += 1
            self.passed[sample_id] += bool(ok)

    def rates(self) -> dict[str, float]:
        """Fraction of correct rollouts per sample seen."""
        return {key: self.passed[key] / n for key, n in self.attempts.items()}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able: {sample id: [passed, attempts]}."""
        return {"counts": {key: [self.passed[key], n] for key, n in self.attempts.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.passed, self.attempts = Counter(), Counter()
        for key, (passed, attempts) in state["counts"].items():
            self.passed[key], self.attempts[key] = int(passed), int(attempts)

    def save(self, path: str | Path) -> Path:
        """Write the tally as JSON Lines: {"id", "passed", "attempts", "pass_rate"} per sample.

        Written aside and renamed into place: a run that finds the file takes the stage's pass
        rates as recorded, so a kill must never leave part of them under that name.
        """
        with atomic_writer(path) as handle:
            for key, n in self.attempts.items():
                record = {"id": key, "passed": self.passed[key], "attempts": n}
                handle.write(json.dumps({**record, "pass_rate": self.passed[key] / n}) + "\n")
        return path


def read_pass_rates(path: str | Path) -> dict[str, float]:
    """Pass rates from a `PassRateTally.save` file (a previous stage's run directory)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such pass-rate file") from None
    rates: dict[str, float] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key, rate = str(record["id"]), record["pass_rate"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DatasetError(
                f"{path} line {number}: expected a JSON object with 'id' and 'pass_rate'"
            ) from None
        rates[key] = _check_rate(f"{key} ({path} line {number})", rate)
    return rates
