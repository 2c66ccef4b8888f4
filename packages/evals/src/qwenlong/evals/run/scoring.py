"""Score a benchmark's stored predictions with the paper's metric and the official one.

Scores are recomputed from the predictions on every run: rule metrics are cheap and the judge's
verdicts are cached on disk, so re-scoring costs no model call and a resumed run scores exactly
like an uninterrupted one. A judge outage, or a judge reply without a verdict, leaves the
affected questions pending (reported, and asked again on the next run), never wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from qwenlong.core.errors import BackendUnavailable
from qwenlong.core.records import TaskSample
from qwenlong.evals.interfaces import Benchmark, Judge
from qwenlong.evals.judge import make_judged_scorer
from qwenlong.evals.run.store import PredictionStore

log = logging.getLogger(__name__)

MetricKind = Literal["paper", "official"]

JUDGE_ONLY_OFFICIAL = frozenset({"corpusqa"})
"""Official metrics whose verdict comes from an LLM judge (CorpusQA's eval.py asks one for
every item); the rule part we compute for them is only a pre-check."""

SCORE_CHUNK = 64
"""Questions per judge batch: an outage loses at most this many verdicts' progress."""


@dataclass
class ScoredQuestion:
    sample: TaskSample
    value: float
    """Mean over the question's responses."""
    scores: list[dict[str, Any]]


@dataclass
class MetricScores:
    """Per-question scores of one benchmark under one metric."""

    kind: MetricKind
    metric: str
    judged: bool
    """Whether a judge was consulted where the rule failed."""
    judge_missing: bool
    """The metric calls for a judge but none is configured: the rule part alone is reported."""
    questions: list[ScoredQuestion] = field(default_factory=list)
    pending: int = 0


def metric_plan(bench: Benchmark, kind: MetricKind) -> tuple[str, bool]:
    """The metric name for `kind` and whether the paper or official scorer asks a judge."""
    if kind == "paper":
        return bench.paper_metric, bench.use_judge
    name = bench.official_metric
    same_as_paper = name == bench.paper_metric
    return name, name in JUDGE_ONLY_OFFICIAL or (same_as_paper and bench.use_judge)


def score_benchmark(
    bench: Benchmark,
    samples: Sequence[TaskSample],
    store: PredictionStore,
    kind: MetricKind,
    judge: Judge | None,
) -> MetricScores:
    """Score every question that has predictions; questions without them count as pending."""
    metric, wants_judge = metric_plan(bench, kind)
    scorer = make_judged_scorer(metric, judge if wants_judge else None)
    result = MetricScores(
        kind=kind,
        metric=metric,
        judged=wants_judge and judge is not None,
        judge_missing=wants_judge and judge is None,
    )
    answered = [s for s in samples if s.id in store]
    result.pending = len(samples) - len(answered)
    for start in range(0, len(answered), SCORE_CHUNK):
        chunk = answered[start : start + SCORE_CHUNK]
        flat_samples = [s for s in chunk for _ in store.get(s.id)["outputs"]]
        flat_outputs = [o for s in chunk for o in store.get(s.id)["outputs"]]
        try:
            flat_scores = scorer.score_many(flat_samples, flat_outputs)
        except BackendUnavailable as err:
            log.warning("judge unavailable, %d questions left pending: %s", len(chunk), err)
            result.pending += len(chunk)
            continue
        position = 0
        for sample in chunk:
            count = len(store.get(sample.id)["outputs"])
            mine = flat_scores[position : position + count]
            position += count
            if any(score.pending for score in mine):  # a judge reply without a verdict
                result.pending += 1
                continue
            result.questions.append(
                ScoredQuestion(
                    sample=sample,
                    value=sum(s.value for s in mine) / max(count, 1),
                    scores=[
                        {"value": s.value, "correct": s.correct, "details": s.details} for s in mine
                    ],
                )
            )
    return result
