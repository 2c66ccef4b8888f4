"""Aggregate per-question scores into scores.json and report.md.

Scores are in percent, as in the paper's tables. scores.json holds one entry per benchmark run
(the format `qwenlong tables` reads); with `metrics: both` a second file, scores.official.json,
holds the official scorers' numbers, and report.md shows the two side by side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qwenlong.evals.interfaces import Benchmark
from qwenlong.evals.run.scoring import MetricScores
from qwenlong.evals.stats import bootstrap_ci, group_scores

MACRO_AVERAGE_OVER = {"longbench_v1_qa": "dataset"}
"""Benchmarks the paper reports as the mean of per-dataset scores, not of items: its LBV1-QA
column is the average of the five QA datasets (Table 12's Avg column)."""


def summarize(
    bench: Benchmark, scores: MetricScores, resamples: int, subset: str | None
) -> dict[str, Any]:
    """One scores.json entry: score and 95% CI in percent, counts, breakdowns."""
    values = [q.value for q in scores.questions]
    breakdown = (
        {
            key: {
                name: 100 * v
                for name, v in group_scores(
                    values, [q.sample.meta.get(key, "?") for q in scores.questions]
                ).items()
            }
            for key in bench.breakdowns
        }
        if values
        else {}
    )
    macro_key = MACRO_AVERAGE_OVER.get(bench.name)
    if not values:
        score, ci = math.nan, (math.nan, math.nan)
    elif macro_key is not None:
        groups = [q.sample.meta.get(macro_key, "?") for q in scores.questions]
        score, ci = _macro_mean(values, groups, resamples)
    else:
        score, ci = float(np.mean(values)), bootstrap_ci(values, n_resamples=resamples)
    return {
        "metric": scores.metric,
        "metric_kind": scores.kind,
        "judged": scores.judged,
        "judge_missing": scores.judge_missing,
        "score": _pct(score),
        "ci": [_pct(ci[0]), _pct(ci[1])],
        "n": len(values),
        "n_pending": scores.pending,
        "breakdown": breakdown,
        "subset": subset,
        "macro_average_over": macro_key,
    }


def _macro_mean(
    values: Sequence[float], groups: Sequence[str], resamples: int, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """Mean of group means, with a bootstrap CI that resamples within each group."""
    by_group: dict[str, list[float]] = {}
    for value, group in zip(values, groups, strict=True):
        by_group.setdefault(group, []).append(value)
    arrays = [np.asarray(v, dtype=float) for v in by_group.values()]
    point = float(np.mean([a.mean() for a in arrays]))
    rng = np.random.default_rng(seed)
    draws = np.mean(
        [a[rng.integers(0, a.size, size=(resamples, a.size))].mean(axis=1) for a in arrays], axis=0
    )
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return point, (float(lo), float(hi))


def _pct(value: float) -> float | None:
    return None if math.isnan(value) else round(100 * value, 2)


def write_scores(
    path: Path, entries: Mapping[str, dict[str, Any]], model: str, solver: str
) -> Path:
    """Write a scores file: model, solver and the benchmark entries, nothing about the run
    itself (no timestamp), so a resumed run's file is byte-for-byte a clean run's."""
    payload = {"model": model, "solver": solver, "benchmarks": dict(entries)}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return path


def render_markdown(
    paper: Mapping[str, dict[str, Any]],
    official: Mapping[str, dict[str, Any]],
    model: str,
    solver: str,
) -> str:
    """The human-readable report: one row per benchmark, paper and official metrics side by side."""
    lines = [
        f"# Eval: {model} ({solver})",
        "",
        "Scores in percent with 95% bootstrap intervals. *paper*: the metric of the paper's tables "
        "(max of the rule and the LLM judge where the paper uses one); *official*: the benchmark's "
        "own scorer. Pending questions (server or judge outage) are excluded and listed.",
        "",
        "| benchmark | paper metric | paper score | official metric | official score | n | pending |",
        "|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for key in paper or official:
        p, o = paper.get(key), official.get(key)
        first = p or o
        lines.append(
            f"| {key} | {_metric_label(p)} | {_score_cell(p)} | {_metric_label(o)} | "
            f"{_score_cell(o)} | {first['n']} | {first['n_pending']} |"
        )
        for entry in (p, o):
            if entry and entry["judge_missing"]:
                notes.append(
                    f"- {key} ({entry['metric_kind']}): no judge configured, rule part only."
                )
    for key, entry in (paper or official).items():
        for name, groups in entry["breakdown"].items():
            cells = ", ".join(f"{value}: {score:.2f}" for value, score in groups.items())
            notes.append(f"- {key} by {name}: {cells}")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _metric_label(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    return entry["metric"] + (" + judge" if entry["judged"] else "")


def _score_cell(entry: dict[str, Any] | None) -> str:
    if entry is None or entry["score"] is None:
        return "-"
    lo, hi = entry["ci"]
    return f"{entry['score']:.2f} [{lo:.2f}, {hi:.2f}]"
