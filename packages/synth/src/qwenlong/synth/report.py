"""What a synthesis run made and what it threw away, as Markdown with length histograms.

    OUT/report.md                      counts, drop reasons, pass-rate bins, stage modes,
                                       yield per source document type
    OUT/context_lengths_<task>.png     one histogram of context tokens per task type

Every stage that removes a sample records a `Drop` with a reason, so the report can say where
42.7K candidates became 14.1K samples (RECIPE.md section 1) and a reader can tell a stage that
filtered hard from one that never ran (`stage_modes`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from qwenlong.core.records import TASK_TYPES, TaskSample
from qwenlong.synth.difficulty import bin_index, pass_rate
from qwenlong.synth.interfaces import DROP_REASONS, Drop
from qwenlong.synth.source_yield import SourceYield

DEFAULT_BIN_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Pass-rate bin edges the report uses when it is given none: four uniform bins. Our choice."""

HISTOGRAM_BINS = 20
"""Bars per context-length histogram. Our choice."""


def pass_rate_bins(samples: Sequence[TaskSample], edges: Sequence[float]) -> dict[str, list[int]]:
    """Per task type, how many samples fall in each pass-rate bin, plus an unverified count last."""
    table: dict[str, list[int]] = {}
    for sample in samples:
        row = table.setdefault(sample.task_type, [0] * len(edges))
        rate = pass_rate(sample)
        row[-1 if rate is None else bin_index(rate, edges)] += 1
    return table


def write_report(
    out_dir: Path | str,
    samples_kept: Sequence[TaskSample],
    drops: Sequence[Drop],
    stage_modes: Mapping[str, str],
    *,
    bin_edges: Sequence[float] = DEFAULT_BIN_EDGES,
    contamination: Mapping[str, int] | None = None,
    sources: Mapping[str, SourceYield] | None = None,
    title: str = "Synthesis report",
) -> Path:
    """Write OUT/report.md and one context-length histogram PNG per task type; return the .md path.

    Numbers only (no sample text), so the report is safe to share and small. Counts per task type
    and generator cover kept samples; the drop table covers the drops, by reason and stage.
    `contamination` (evaluation set -> samples dropped for overlapping it, from decontamination)
    adds a table when given, and so does `sources` (source type -> what its documents gave).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = _histograms(out, samples_kept)
    sections = [
        f"# {title}\n\nKept **{len(samples_kept)}** samples; dropped **{len(drops)}**.",
        _stage_table(stage_modes),
        _kept_table(samples_kept),
        _drop_table(drops),
        _length_section(samples_kept, images),
        _bin_table(samples_kept, bin_edges),
    ]
    if contamination is not None:
        rows = sorted(contamination.items())
        table = _table(("evaluation set", "samples dropped"), rows) if rows else "No overlap found."
        sections.append("## Decontamination\n\n" + table)
    if sources is not None:
        sections.append(_source_table(sources))
    path = out / "report.md"
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return path


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _task_order(names: set[str]) -> list[str]:
    """The five standard task types first, in TASK_TYPES order, then any others sorted."""
    return [t for t in TASK_TYPES if t in names] + sorted(names - set(TASK_TYPES))


def _stage_table(stage_modes: Mapping[str, str]) -> str:
    rows = [(stage, mode) for stage, mode in stage_modes.items()]
    return "## Stages\n\n" + _table(("stage", "how it ran"), rows)


def _kept_table(samples: Sequence[TaskSample]) -> str:
    counts = Counter((s.task_type, s.provenance.generator or "-") for s in samples)
    generators = sorted({g for _, g in counts})
    tasks = _task_order({t for t, _ in counts})
    rows = [
        [task, *(counts[task, g] for g in generators), sum(counts[task, g] for g in generators)]
        for task in tasks
    ]
    rows.append(["total", *(sum(counts[t, g] for t in tasks) for g in generators), len(samples)])
    header = ("task type", *generators, "total")
    return "## Kept samples by task type and generator\n\n" + _table(header, rows)


def _drop_table(drops: Sequence[Drop]) -> str:
    if not drops:
        return "## Drops\n\nNo sample was dropped."
    by_reason = Counter((d.reason, d.stage) for d in drops)
    order = {reason: i for i, reason in enumerate(DROP_REASONS)}
    keys = sorted(by_reason, key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))
    by_task = Counter((d.reason, d.stage, d.task_type or "-") for d in drops)
    tasks = _task_order({d.task_type or "-" for d in drops})
    rows = [
        [reason, stage, *(by_task[reason, stage, t] for t in tasks), by_reason[reason, stage]]
        for reason, stage in keys
    ]
    header = ("reason", "stage", *tasks, "total")
    return "## Drops\n\n" + _table(header, rows)


def _source_table(sources: Mapping[str, SourceYield]) -> str:
    """One row per source type; the last column counts why documents gave no kept question."""
    rows = [
        [
            kind, y.documents, y.skipped, "-" if y.triples is None else y.triples, y.questions,
            y.kept, "; ".join(f"{n} {why}" for why, n in sorted(y.none.items())) or "-",
        ]
        for kind, y in sources.items()
    ]  # fmt: skip
    header = ("source type", "documents", "skipped", "triples", "questions", "kept", "gave none")
    note = (
        "Questions are candidates resting on a document of the type (one question may count for "
        "several types); kept are those in the dataset. A document that gave no kept question, "
        "or a file skipped on reading, is counted under why in the last column."
    )
    return "## Yield by source type\n\n" + note + "\n\n" + _table(header, rows)


def _lengths_by_task(samples: Sequence[TaskSample]) -> dict[str, list[int]]:
    lengths: dict[str, list[int]] = {}
    for sample in samples:
        if sample.context_tokens is not None:
            lengths.setdefault(sample.task_type, []).append(sample.context_tokens)
    return lengths


def _length_section(samples: Sequence[TaskSample], images: Mapping[str, str]) -> str:
    lengths = _lengths_by_task(samples)
    counted = Counter(s.task_type for s in samples if s.context_tokens is None)
    rows = []
    for task in _task_order(set(lengths) | set(counted)):
        values = lengths.get(task, [])
        stats = (
            (min(values), round(sum(values) / len(values)), max(values)) if values else ("-",) * 3
        )
        rows.append([task, len(values), *stats, counted[task]])
    header = ("task type", "samples", "min", "mean", "max", "not counted")
    parts = ["## Context length (tokens)", _table(header, rows)]
    parts += [f"![{task} context lengths]({name})" for task, name in images.items()]
    return "\n\n".join(parts)


def _bin_table(samples: Sequence[TaskSample], edges: Sequence[float]) -> str:
    table = pass_rate_bins(samples, edges)
    labels = [_bin_label(edges, i) for i in range(len(edges) - 1)]
    rows = [[task, *table[task]] for task in _task_order(set(table))]
    header = ("task type", *labels, "unverified")
    return f"## Pass-rate bins\n\nEdges {json.dumps(list(edges))}.\n\n" + _table(header, rows)


def _bin_label(edges: Sequence[float], i: int) -> str:
    left = "[" if i == 0 else "("
    return f"{left}{edges[i]:g}, {edges[i + 1]:g}]"


def _histograms(out: Path, samples: Sequence[TaskSample]) -> dict[str, str]:
    """One PNG per task type with counted contexts; returns task type -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names: dict[str, str] = {}
    lengths = _lengths_by_task(samples)
    for task in _task_order(set(lengths)):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(lengths[task], bins=HISTOGRAM_BINS, color="#4c72b0", edgecolor="white")
        ax.set_title(f"{task}: context length ({len(lengths[task])} samples)")
        ax.set_xlabel("context tokens")
        ax.set_ylabel("samples")
        fig.tight_layout()
        name = f"context_lengths_{re.sub(r'[^A-Za-z0-9_-]', '_', task)}.png"
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        names[task] = name
    return names
