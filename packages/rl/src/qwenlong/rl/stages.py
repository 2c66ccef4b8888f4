"""Progressive length stages as config (RECIPE.md section 2).

The paper trains in stages of growing length: Stage-1 20K input / 12K output, Stage-2 60K / 20K,
Stage-3 120K / 50K, with retrospective difficulty filtering between them, and Stage-4 starting
from a merged model. Here a stage is a YAML entry, not code: its step count, its input and
output limits, which samples it draws from, and optionally the weights it starts from. Steps are
numbered globally (1, 2, ... across stages), so a checkpoint's step says which stage it is in.

A prompt longer than the stage's `max_input_tokens` is middle-truncated at rollout time
(`qwenlong.evals.truncation`); a stage that should not see such prompts at all drops them with
`data.max_context_tokens` or the retrospective filter's `max_input_tokens`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from torch import Tensor

from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.records import TaskSample
from qwenlong.core.safetensors_io import read_sharded
from qwenlong.evals.prompts import render_context
from qwenlong.rl.checkpoint import STATE_FILE, load_checkpoint
from qwenlong.rl.filtering import RetroFilterConfig, retrospective_filter

TokenCounter = Callable[[str], int]
"""Counts the tokens of a text in the policy's tokenizer."""


class StageDataConfig(ConfigModel):
    """Which training samples a stage draws from (applied before the sampler sees them)."""

    task_types: tuple[str, ...] | None = None
    """Keep only samples of these task types; None keeps every type. The sampler must still
    find every task it balances (sampler.tasks) among the kept ones."""
    min_context_tokens: int | None = Field(default=None, ge=0)
    """Drop samples whose context is shorter than this many tokens; None keeps them."""
    max_context_tokens: int | None = Field(default=None, ge=1)
    """Drop samples whose context is longer than this many tokens; None keeps them (they are
    middle-truncated to the stage's max_input_tokens instead)."""
    retrospective: RetroFilterConfig | None = None
    """Retrospective difficulty filtering and sampling: drop samples the current policy always
    or never solves at this stage's lengths (a pass@k pre-inference by default), weight the
    hard ones earlier stages trained on. None applies none."""
    pass_rates: str | None = None
    """A pass-rate file (`PassRateTally.save` JSONL, e.g. another run's
    stages/NAME/pass_rates.jsonl) for the retrospective filter; None uses the pass rates of the
    previous stage of this run."""


class StageConfig(ConfigModel):
    """One progressive-length stage."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    """Names the stage in metrics and in RUN/stages/NAME (letters, digits, `_.-`)."""
    steps: int = Field(ge=1)
    """Optimizer steps (rollout batches) in this stage."""
    max_input_tokens: int = Field(ge=1)
    """Longest prompt, in tokens, chat template included; the document is middle-truncated to
    fit. Paper: 20K, 60K, 120K (stages 1-3); ours for tiny runs: a few hundred."""
    max_output_tokens: int = Field(ge=1)
    """Longest response (max_new_tokens of the rollouts). Paper: 12K, 20K, 50K."""
    data: StageDataConfig = StageDataConfig()
    """Which samples this stage trains on."""
    from_checkpoint: str | None = None
    """A folder holding HF-named safetensors weights (a checkpoint folder of a run, or a model
    directory such as the SCE-merged model of Stage-4) loaded into the policy when the stage
    starts; None continues from the previous stage's weights."""

    @model_validator(mode="after")
    def _check(self) -> StageConfig:
        low, high = self.data.min_context_tokens, self.data.max_context_tokens
        if low is not None and high is not None and low > high:
            raise ValueError(f"data.min_context_tokens {low} exceeds max_context_tokens {high}")
        return self


@dataclass(frozen=True)
class StageSpan:
    """Where a stage sits in the run's global step numbering."""

    index: int
    config: StageConfig
    first_step: int
    """Global number of the stage's first step (steps count from 1)."""
    last_step: int
    """Global number of its last step (inclusive)."""

    @property
    def name(self) -> str:
        return self.config.name


def plan_stages(stages: Sequence[StageConfig]) -> list[StageSpan]:
    """Lay the stages end to end on the global step axis."""
    if not stages:
        raise ConfigError("stages: at least one stage is needed")
    names = Counter(stage.name for stage in stages)
    repeated = sorted(name for name, count in names.items() if count > 1)
    if repeated:
        raise ConfigError(f"stages: names {', '.join(repeated)} appear more than once")
    plan, first = [], 1
    for index, stage in enumerate(stages):
        plan.append(StageSpan(index, stage, first, first + stage.steps - 1))
        first += stage.steps
    return plan


def span_for_step(plan: Sequence[StageSpan], step: int) -> StageSpan:
    """The stage global step `step` (1-based) belongs to."""
    for span in plan:
        if span.first_step <= step <= span.last_step:
            return span
    raise ValueError(f"step {step} is outside the {plan[-1].last_step} planned steps")


def context_tokens(sample: TaskSample, count_tokens: TokenCounter | None) -> int:
    """Tokens of the sample's document: `context_tokens` when recorded, else counted."""
    if sample.context_tokens is not None:
        return sample.context_tokens
    if count_tokens is None:
        raise DatasetError(
            f"sample {sample.id}: context_tokens is not set and no token counter was given"
        )
    return count_tokens(render_context(sample))


def select_stage_data(
    samples: Sequence[TaskSample],
    data: StageDataConfig,
    pass_rates: Mapping[str, float] | None,
    count_tokens: TokenCounter | None,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> tuple[list[TaskSample], dict[str, Any]]:
    """The samples a stage trains on and a report of what was dropped and why.

    Filters apply in order: task types, context length bounds, then the retrospective filter
    (which needs `pass_rates`; an empty mapping keeps every sample as unmeasured when
    `keep_unmeasured` is on).
    """
    kept = list(samples)
    report: dict[str, Any] = {"input": len(kept)}
    if data.task_types is not None:
        wanted = set(data.task_types)
        report["other_task"] = sum(s.task_type not in wanted for s in kept)
        kept = [s for s in kept if s.task_type in wanted]
    low, high = data.min_context_tokens, data.max_context_tokens
    if low is not None or high is not None:
        lengths = [context_tokens(s, count_tokens) for s in kept]
        fits = [(low is None or n >= low) and (high is None or n <= high) for n in lengths]
        report["context_out_of_range"] = fits.count(False)
        kept = [s for s, ok in zip(kept, fits, strict=True) if ok]
    if data.retrospective is not None:
        if pass_rates is None:
            raise ConfigError(
                "stage data.retrospective needs pass rates: set data.pass_rates or put the "
                "stage after another one"
            )
        filtered = retrospective_filter(kept, pass_rates, data.retrospective, count_tokens, prompts)
        report.update({f"retro_{k}": v for k, v in filtered.counts.items() if k != "kept"})
        kept = filtered.kept
    report["kept"] = len(kept)
    report["by_task"] = dict(sorted(Counter(s.task_type for s in kept).items()))
    return kept, report


def check_start_weights(folder: str | Path) -> Path:
    """`folder` as a stage's starting point: a checkpoint of this trainer or an HF model
    directory; anything else is a `DatasetError` raised before the run starts."""
    path = Path(folder)
    if not ((path / STATE_FILE).is_file() or (path / "config.json").is_file()):
        raise DatasetError(
            f"{path}: from_checkpoint is neither a checkpoint folder ({STATE_FILE}) nor an HF "
            "model directory (config.json)"
        )
    return path


def start_weights(folder: str | Path) -> Iterator[tuple[str, Tensor]]:
    """The weights a stage starts from, streamed under HF's on-disk names: a checkpoint folder
    and an HF model directory store the same layout (one tensor per expert)."""
    path = check_start_weights(folder)
    if (path / STATE_FILE).is_file():
        load_checkpoint(path, None)  # refuses a checkpoint of another format version
    return read_sharded(path)
