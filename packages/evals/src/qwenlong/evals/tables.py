"""The paper's result tables, and our eval runs placed beside them.

`paper_tables.json` (package data, copied from shared/paper/tables.json) holds the numbers as
printed in the QwenLong-L1.5 paper. An eval run directory holds `scores.json` (`RunScores`); a
run becomes one extra row of any table, each column read from the benchmark entry it stands
for (`COLUMN_SOURCES`), and "Avg" recomputed the way the paper averages (`AVERAGED_COLUMNS`).

A missing value is shown as "-" and never averaged around: a row lacking one averaged column
gets no average, since a mean over fewer benchmarks is not comparable with the paper's.
The paper's own Avg column is checked against its benchmark columns the same way, which is how
the Table 12 misprint (and a larger gap in Table 7's GPT-5 row) shows up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qwenlong.core.errors import ConfigError, DatasetError

PAPER_TABLES_RESOURCE = "paper_tables.json"
SCORES_FILE = "scores.json"
AVG = "Avg"
MISSING = "-"

DEFAULT_SUBSETS = {"mrcr": "0-128K", "corpusqa": "128K"}
"""The subset a run entry without one (`subset` null and no "@" in its key) stands for: the
benchmark loaders' default subsets, which are the ones in the paper's main tables."""

WHOLE_BENCHMARK = "all"
"""The loaders' name for the whole benchmark; an entry with this subset is read as having none."""


# --- the paper's tables -------------------------------------------------------------------


@dataclass(frozen=True)
class PaperTable:
    """One table as printed: rows of numbers (None where the paper has no entry)."""

    name: str
    caption: str
    columns: tuple[str, ...]
    rows: Mapping[str, tuple[float | None, ...]]
    notes: tuple[str, ...]
    """The paper-wide notes that name this table (e.g. the Table 12 misprint)."""

    @property
    def number(self) -> int:
        """The table's number in the paper, from its name ("table7_main" -> 7)."""
        return _table_number(self.name)


def _table_number(name: str) -> int:
    match = re.match(r"table(\d+)", name)
    if match is None:
        raise DatasetError(f"{PAPER_TABLES_RESOURCE}: table name {name!r} does not start tableN")
    return int(match.group(1))


def _note_tables(note: str) -> set[int]:
    """Table numbers a note names: "Table 12: ..." or "Tables 2,4,5 are ..."."""
    numbers: set[int] = set()
    for match in re.finditer(r"Tables?\s+((?:\d+\s*,\s*)*\d+)", note):
        numbers.update(int(n) for n in re.findall(r"\d+", match.group(1)))
    return numbers


def load_paper_tables() -> dict[str, PaperTable]:
    """All tables from the packaged JSON, in the paper's order."""
    text = resources.files("qwenlong.evals").joinpath(PAPER_TABLES_RESOURCE).read_text("utf-8")
    data = json.loads(text)
    notes = data.get("notes", [])
    return {
        name: PaperTable(
            name=name,
            caption=spec["caption"],
            columns=tuple(spec["columns"]),
            rows={label: tuple(values) for label, values in spec["rows"].items()},
            notes=tuple(n for n in notes if _table_number(name) in _note_tables(n)),
        )
        for name, spec in data["tables"].items()
    }


def resolve_table(name: str, tables: Mapping[str, PaperTable]) -> PaperTable:
    """A table by full name ("table7_main"), short name ("table7") or number ("7")."""
    if name in tables:
        return tables[name]
    match = re.fullmatch(r"(?:table)?(\d+)", name.strip().lower())
    if match:
        for table in tables.values():
            if table.number == int(match.group(1)):
                return table
    raise ConfigError(f"unknown table {name!r}; known: {', '.join(tables)}")


# --- our runs ------------------------------------------------------------------------------


class BenchmarkScore(BaseModel):
    """One benchmark (or subset) of a run, scores in percent."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    metric: str
    """The METRICS key the score was computed with."""
    metric_kind: Literal["paper", "official"]
    """Whether `metric` is the paper's scoring or the benchmark's official scorer."""
    score: float = Field(ge=0, le=100)
    ci: tuple[float, float]
    """Bootstrap confidence interval of `score`, percent."""
    n: int = Field(ge=0)
    """Items scored."""
    n_pending: int = Field(default=0, ge=0)
    """Items still waiting for generation or a judge verdict (not in `score`)."""
    breakdown: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per-key subscores, e.g. {"difficulty": {"easy": 60.1, "hard": 50.2}}."""
    subset: str | None = None


class RunScores(BaseModel):
    """The contents of an eval run's scores.json."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: str
    solver: str
    created: str | None = None
    """ISO time the scores were written, in files from before scores.json held no run
    metadata (kept out so a resumed run's file equals a clean run's byte for byte)."""
    benchmarks: dict[str, BenchmarkScore]
    """Keyed by benchmark name, or "name@subset" when a run holds several subsets."""

    def find(self, bench: str, subset: str | None) -> BenchmarkScore | None:
        """The entry for `bench` restricted to `subset` (None: the whole benchmark)."""
        for key, entry in self.benchmarks.items():
            base, _, key_subset = key.partition("@")
            entry_subset = entry.subset or key_subset or DEFAULT_SUBSETS.get(base)
            if entry_subset == WHOLE_BENCHMARK:
                entry_subset = None
            if base == bench and entry_subset == subset:
                return entry
        return None


@dataclass(frozen=True)
class Run:
    """A run directory's scores and the label its row gets."""

    path: Path
    scores: RunScores

    @property
    def label(self) -> str:
        return self.scores.model or self.path.name


def load_run(run_dir: Path) -> Run:
    """Read and validate `run_dir/scores.json`."""
    path = run_dir / SCORES_FILE
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (is {run_dir} an eval run directory?)")
    try:
        scores = RunScores.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DatasetError(f"{path}: {where}: {first['msg']}") from err
    for key, entry in scores.benchmarks.items():
        _, at, key_subset = key.partition("@")
        if at and entry.subset is not None and entry.subset != key_subset:
            raise DatasetError(
                f"{path}: benchmarks.{key}: subset {entry.subset!r} disagrees with the key"
            )
    return Run(run_dir, scores)


# --- where each column comes from --------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The scores.json entry a table column reads."""

    bench: str
    subset: str | None = None
    breakdown: tuple[str, str] | None = None
    """(breakdown key, value), e.g. ("difficulty", "easy"); None reads the overall score."""
    solver: str | None = None
    """Only runs of this solver fill the column (e.g. the memory-agent column of Table 10)."""

    def lookup(self, run: RunScores) -> BenchmarkScore | None:
        if self.solver is not None and run.solver != self.solver:
            return None
        return run.find(self.bench, self.subset)

    def value(self, run: RunScores) -> float | None:
        entry = self.lookup(run)
        if entry is None:
            return None
        if self.breakdown is None:
            return entry.score
        key, value = self.breakdown
        return entry.breakdown.get(key, {}).get(value)


COLUMN_SOURCES: dict[str, Source] = {
    "DocMath": Source("docmath"),
    "LBV2": Source("longbench_v2"),
    "Frames": Source("frames"),
    "MRCR": Source("mrcr", "0-128K"),
    "CorpusQA": Source("corpusqa", "128K"),
    "LBV1-QA": Source("longbench_v1_qa"),
    "MemAgent MRCR 512K-1M": Source("mrcr", "512K-1M", solver="memagent"),
    "MRCR 128K-512K": Source("mrcr", "128K-512K"),
    "MRCR 512K-1M": Source("mrcr", "512K-1M"),
    "CorpusQA 1M": Source("corpusqa", "1M"),
    "CorpusQA 4M": Source("corpusqa", "4M"),
    "Overall": Source("longbench_v2"),
    "Easy": Source("longbench_v2", breakdown=("difficulty", "easy")),
    "Hard": Source("longbench_v2", breakdown=("difficulty", "hard")),
    "Short": Source("longbench_v2", breakdown=("length", "short")),
    "Medium": Source("longbench_v2", breakdown=("length", "medium")),
    "Long": Source("longbench_v2", breakdown=("length", "long")),
    "2Wiki": Source("longbench_v1_qa", breakdown=("dataset", "2wikimqa")),
    "HotpotQA": Source("longbench_v1_qa", breakdown=("dataset", "hotpotqa")),
    "Musique": Source("longbench_v1_qa", breakdown=("dataset", "musique")),
    "NarrativeQA": Source("longbench_v1_qa", breakdown=("dataset", "narrativeqa")),
    "Qasper": Source("longbench_v1_qa", breakdown=("dataset", "qasper")),
    "MMLU-Pro": Source("mmlu_pro"),
    "AIME24": Source("aime24"),
    "AIME25": Source("aime25"),
    "GPQA-Diamond": Source("gpqa_diamond"),
    "BFCL-V4 Memory-Sum": Source("bfcl_v4_memory", breakdown=("backend", "sum")),
    "BFCL-V4 Memory-KV": Source("bfcl_v4_memory", breakdown=("backend", "kv")),
    "BFCL-V4 Memory-Vec": Source("bfcl_v4_memory", breakdown=("backend", "vec")),
    "BFCL-V4 Memory-Rec_Sum": Source("bfcl_v4_memory", breakdown=("backend", "rec_sum")),
    "LongMemEval": Source("longmemeval"),
}
"""Every non-Avg column of every table. Table 8's general and memory benchmarks have no loader
in this project yet; a run that reports them under these names fills those columns."""

_MAIN_SIX = ("DocMath", "LBV2", "Frames", "MRCR", "CorpusQA", "LBV1-QA")
AVERAGED_COLUMNS: dict[str, tuple[str, ...]] = {
    "table2_task_balancing": _MAIN_SIX,
    "table4_negative_gradient_clipping": _MAIN_SIX,
    "table5_aepo": _MAIN_SIX,
    "table7_main": _MAIN_SIX,
    "table10_stages": _MAIN_SIX,
    "table12_longbench_v1": ("2Wiki", "HotpotQA", "Musique", "NarrativeQA", "Qasper"),
}
"""What each table's Avg is the plain mean of: the six benchmarks (not Table 10's memory-agent
column), and for Table 12 the five LongBench-V1 QA datasets."""


def row_average(values: Mapping[str, float | None], columns: Sequence[str]) -> float | None:
    """Mean of `columns`, or None when any of them is missing."""
    picked = [values.get(c) for c in columns]
    if any(v is None for v in picked):
        return None
    return sum(picked) / len(picked)  # type: ignore[arg-type]


def _half_unit(value: float) -> float:
    """Half the last printed digit of a number read from the JSON: 67.1 -> 0.05, 63.88 -> 0.005."""
    text = repr(float(value))
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0**-decimals


@dataclass(frozen=True)
class AverageCheck:
    """The paper's printed Avg of one row against the mean of its printed columns."""

    row: str
    printed: float
    computed: float
    tolerance: float
    """The largest gap rounding alone can explain: each column and the Avg off by half a unit
    of their last printed digit."""

    @property
    def consistent(self) -> bool:
        return abs(self.printed - self.computed) <= self.tolerance + 1e-9


def check_paper_averages(table: PaperTable) -> list[AverageCheck]:
    """Recompute the Avg of every complete row of `table`; empty for tables without Avg."""
    averaged = AVERAGED_COLUMNS.get(table.name)
    if averaged is None or AVG not in table.columns:
        return []
    checks = []
    for row, values in table.rows.items():
        by_column = dict(zip(table.columns, values, strict=True))
        printed, computed = by_column[AVG], row_average(by_column, averaged)
        if printed is None or computed is None:
            continue
        parts = [by_column[c] for c in averaged]
        tolerance = sum(_half_unit(v) for v in parts) / len(parts) + _half_unit(printed)
        checks.append(AverageCheck(row, printed, computed, tolerance))
    return checks


# --- a table with our rows ------------------------------------------------------------------


@dataclass(frozen=True)
class TableRow:
    """One row as shown: a paper row as printed, or a run with its Avg recomputed."""

    label: str
    values: tuple[float | None, ...]
    source: str
    """"paper", or "run (<solver>, <metric kind> metric)"."""
    ci: tuple[tuple[float, float] | None, ...] = ()
    """Per column, the run's confidence interval where the column is an overall score."""


@dataclass(frozen=True)
class TableView:
    """What `qwenlong tables` shows: the paper's rows, then one row per run, then footnotes."""

    name: str
    caption: str
    columns: tuple[str, ...]
    rows: tuple[TableRow, ...]
    footnotes: tuple[str, ...]


def _metric_label(kinds: Mapping[str, str]) -> str:
    """Which scoring a row's columns used: "paper metric", "official metric" or "mixed metrics"."""
    distinct = sorted(set(kinds.values()))
    return f"{distinct[0]} metric" if len(distinct) == 1 else "mixed metrics"


def _run_row(table: PaperTable, run: Run, label: str) -> tuple[TableRow, list[str]]:
    """One run as a row of `table`, with the footnotes it needs (pending items, mixed kinds)."""
    notes: list[str] = []
    values: dict[str, float | None] = dict.fromkeys(table.columns)
    cis: dict[str, tuple[float, float] | None] = {}
    kinds: dict[str, str] = {}
    for column in table.columns:
        source = COLUMN_SOURCES.get(column)
        entry = source.lookup(run.scores) if source else None
        if source is None or entry is None:
            continue
        values[column] = source.value(run.scores)
        cis[column] = entry.ci if source.breakdown is None else None
        kinds[column] = entry.metric_kind
        if entry.n_pending:
            total = entry.n + entry.n_pending
            notes.append(
                f"{label}: {column} leaves out {entry.n_pending} of {total} items still pending"
            )
    if AVG in table.columns:
        values[AVG] = row_average(values, AVERAGED_COLUMNS.get(table.name, ()))
    source_label = f"run ({run.scores.solver})"
    if kinds:
        source_label = f"run ({run.scores.solver}, {_metric_label(kinds)})"
    if len(set(kinds.values())) > 1:
        notes.append(
            f"{label}: metric kind per column: {', '.join(f'{c}={k}' for c, k in kinds.items())}"
        )
    row = TableRow(
        label=label,
        values=tuple(values[c] for c in table.columns),
        source=source_label,
        ci=tuple(cis.get(c) for c in table.columns),
    )
    return row, notes


def _labels(runs: Sequence[Run]) -> list[str]:
    """Row names: the model, made unique with the run directory where two runs share one."""
    plain = [run.label for run in runs]
    return [
        f"{label} ({run.path.name})" if plain.count(label) > 1 else label
        for label, run in zip(plain, runs, strict=True)
    ]


def build_view(table: PaperTable, runs: Sequence[Run] = ()) -> TableView:
    """`table` with one row per run appended and every footnote its rows need."""
    rows = [TableRow(label, values, "paper") for label, values in table.rows.items()]
    footnotes = list(table.notes)
    for check in check_paper_averages(table):
        if not check.consistent:
            footnotes.append(
                f"paper row {check.row!r}: printed Avg {check.printed:.2f}, but its columns "
                f"average {check.computed:.2f}"
            )
    for run, label in zip(runs, _labels(runs), strict=True):
        row, notes = _run_row(table, run, label)
        rows.append(row)
        footnotes.extend(notes)
    if AVG in table.columns and any(
        r.source != "paper" and r.values[table.columns.index(AVG)] is None for r in rows
    ):
        footnotes.append(
            f"Avg is {MISSING!r} for a run missing any of "
            f"{', '.join(AVERAGED_COLUMNS.get(table.name, ()))}: it is never taken over fewer columns"
        )
    return TableView(table.name, table.caption, table.columns, tuple(rows), tuple(footnotes))


def format_value(value: float | None) -> str:
    """Two decimals, as the paper prints; a missing value is "-"."""
    return MISSING if value is None else f"{value:.2f}"


def to_markdown(view: TableView) -> str:
    """A GitHub-flavoured Markdown table with its caption and footnotes."""
    header = ["Model", *view.columns, "Source"]
    lines = [
        f"**{view.name}**: {view.caption}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(view.columns) + ["---"]) + "|",
    ]
    for row in view.rows:
        cells = [row.label, *(format_value(v) for v in row.values), row.source]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if view.footnotes:
        lines.append("")
        lines.extend(f"- {note}" for note in view.footnotes)
    return "\n".join(lines) + "\n"


def to_dict(view: TableView) -> dict[str, Any]:
    """A JSON-ready form: rows as {column: value} with the runs' intervals."""
    rows = []
    for row in view.rows:
        entry: dict[str, Any] = {"label": row.label, "source": row.source}
        entry["values"] = dict(zip(view.columns, row.values, strict=True))
        if row.ci:
            entry["ci"] = {c: list(ci) for c, ci in zip(view.columns, row.ci, strict=True) if ci}
        rows.append(entry)
    return {
        "table": view.name,
        "caption": view.caption,
        "columns": list(view.columns),
        "rows": rows,
        "footnotes": list(view.footnotes),
    }
