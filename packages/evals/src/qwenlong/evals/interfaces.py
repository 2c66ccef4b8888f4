"""The seams of qwenlong.evals, the task contract of the whole project.

RL rewards, synthesis verification and benchmark scores all go through these: a `TaskSample`
becomes a prompt, a `Solver` turns prompts into outputs, a `Scorer` turns an output into a
`Score`, and a `Judge` is asked only where the rule says no.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample


@dataclass
class Score:
    """The grade of one output.

    `value` is what gets averaged (0/1 for exact metrics, a ratio in [0, 1] for dense ones);
    `correct` is the binary verdict (value >= 1 for exact metrics, value > 0.5 style thresholds
    are never implied: dense metrics set it to value == 1.0); `details` says how the value was
    reached (extracted answer, which rule fired, judge verdict) for reports and debugging.
    """

    value: float
    correct: bool
    details: dict[str, Any] = field(default_factory=dict)
    pending: bool = False
    """The grade is not known yet: the judge was asked and its reply held no verdict. `value`
    and `correct` then hold the rule's part only; the eval runner counts the question pending
    (to be judged on the next run), never wrong."""


@runtime_checkable
class Scorer(Protocol):
    """A rule metric: `(sample, raw model output) -> Score`. Pure, fast, no I/O."""

    def __call__(self, sample: TaskSample, output: str) -> Score: ...


@dataclass(frozen=True)
class JudgeItem:
    """One question for the LLM judge: are `prediction` and `gold` the same answer?"""

    question: str
    prediction: str
    gold: str


class Judge(Protocol):
    """An LLM asked whether two answers are equivalent, without solving the problem.

    Returns one verdict per item, None where the judge's reply held no verdict. Raises
    `BackendUnavailable` when the judge model cannot be reached. Either way callers leave
    those items pending rather than scoring them wrong.
    """

    def judge(self, items: Sequence[JudgeItem]) -> list[bool | None]: ...


@dataclass
class SolverOutput:
    """What a solver produced for one sample: the final text and, for agents, a trace."""

    text: str
    trace: list[dict[str, Any]] = field(default_factory=list)
    """Intermediate steps (the memory agent's memory and plan per chunk); empty for single pass."""
    finish_reason: str = "stop"
    output_tokens: int | None = None


class Solver(Protocol):
    """Turns samples into outputs: single-pass reading here, the memory agent in memagent."""

    name: str

    def solve(
        self, samples: Sequence[TaskSample], sampling: SamplingParams
    ) -> list[list[SolverOutput]]:
        """`sampling.n` outputs per sample, in input order."""
        ...


class Benchmark(Protocol):
    """A benchmark: how to load it and how the paper and the official code score it."""

    name: str
    """Registry key, e.g. "longbench_v2", "mrcr", "docmath"."""
    paper_metric: str
    """Metric the paper's tables use (a METRICS key), e.g. "cover_em" with a judge."""
    official_metric: str
    """The official scorer's metric (a METRICS key); equal to paper_metric where they agree."""
    breakdowns: tuple[str, ...]
    """`TaskSample.meta` keys reported separately, e.g. ("difficulty", "length")."""
    use_judge: bool
    """Whether the paper's score is max(rule, judge)."""

    def load(
        self,
        path: Path | None,
        subset: str | None = None,
        count_tokens: Callable[[str], int] | None = None,
    ) -> list[TaskSample]:
        """Read the benchmark from `path` in its published format (or the hub when None).

        `subset` picks a published split or length bin (e.g. "0-128K" for MRCR, "hotpotqa" for
        LongBench-V1); `count_tokens` counts tokens in the target tokenizer where a benchmark bins
        or filters by length (MRCR) and fills `TaskSample.context_tokens` when given.
        """
        ...
