"""Precision and recall of table facts against hand-written gold facts.

The report-table fixture set (tests/fixtures/report_tables/) holds one HTML file per table,
written in the shapes of published annual reports, and beside it `<name>.facts.jsonl`: one JSON
array per fact a careful reader takes from the table, `[row, column, value, unit, scale]`:

    ["Net sales", "2021", "4781", "USD", "million"]
    ["Diluted", "2021", "1.52", "USD", ""]                  <- per-share: no scale
    ["Gross margin", "2021", "41.2", "%", ""]
    ["Purchase obligations", "Less than 1 year", "120", "USD", "million"]

`column` is the period ("2021", or "2021-12-31" for an as-of date), followed by the column's
qualifier when it has one ("2021 % of revenue"), else the column's label ("2019 over 2018").
`unit` is a currency code, "%", a unit word or "" for a plain number or a count of shares
(["Weighted-average shares outstanding: Basic", "2021", "151.6", "", "million"]); `scale` is
"" or a scale word. Unit words are read through `units.UNIT_LABELS`, so "pts" and "percentage
points", "employees" and "persons" are one unit. Conventions a gold writer follows:

- a column marked "Restated", "As restated" or "(restated)" is its bare year ("2022");
- a year column of a statement dated only in its caption ("As at 31 March 2024") is that date,
  its comparative the same day a year earlier ("2024-03-31", "2023-03-31");
- a year spanning several measure columns keys each "<year> <measure>" ("2023 Combined ratio");
- an unlabelled subtotal row takes its section's name ("Non-current assets");
- a row is prefixed with its section ("Earnings per share: Basic", "Operating expenses: Other")
  only when its label is generic (Basic, Diluted, Other, Total, Net, ...) or printed twice in
  the table (a segment under "Net sales:" and again under "Operating income:"); a label printed
  once is keyed as printed ("Consolidated" under "Operating margin:");
- a count of shares has unit "" and the table's scale when it takes one; a unit is what the
  table states as one (a bracket "(miles)", a unit column or header), never a word of the label
  ("Fuel gallons consumed (millions)" is "" and "million"); bracketed units leave the row.

Rows and columns match after case folding and punctuation removal, values as numbers, units
exactly. The shape is the file name without its number ("balance_sheet_03").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from qwenlong.core.errors import DatasetError
from qwenlong.synth.extract.report_cells import CellFact
from qwenlong.synth.extract.units import CURRENCY_CODES, SCALE_NAMES, UNIT_LABELS, UnitSpec
from qwenlong.synth.extract.values import SCALE_WORDS, number_text

FactKey = tuple[str, str, Decimal, str]

_PUNCTUATION = re.compile(r"[^\w%]+")


def _words(text: str) -> str:
    return " ".join(_PUNCTUATION.sub(" ", text.casefold().replace("&", " and ")).split())


def fact_key(row: str, column: str, value: Decimal, unit: UnitSpec) -> FactKey:
    """What a predicted and a gold fact must share to match."""
    return (_words(row), _words(column), value.normalize(), unit.render())


def gold_unit(unit: str, scale: str) -> UnitSpec | None:
    """The `UnitSpec` of a gold fact's unit and scale words; None when either is unknown."""
    if scale and scale.lower() not in SCALE_WORDS:
        return None
    multiple = SCALE_WORDS[scale.lower()] if scale else Decimal(1)
    if multiple not in SCALE_NAMES and multiple != 1:
        return None
    if unit == "%":
        return UnitSpec(percent=True)
    unit = UNIT_LABELS.get(unit.lower()) or unit
    if unit.lower() in CURRENCY_CODES and unit.isupper():
        return UnitSpec(unit, multiple)
    return UnitSpec(None, multiple, False, unit)


def load_gold(path: Path) -> list[FactKey]:
    """The gold facts of one table; a malformed line fails naming the file and line."""
    keys = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row, column, value, unit, scale = json.loads(line)
            amount = Decimal(value)
        except (ValueError, TypeError, InvalidOperation):
            raise DatasetError(
                f"{where}: expected [row, column, value, unit, scale] with a numeric value"
            ) from None
        spec = gold_unit(unit, scale)
        if spec is None:
            raise DatasetError(f"{where}: unknown unit {unit!r} or scale {scale!r}")
        keys.append(fact_key(row, column, amount, spec))
    return keys


def predicted_keys(facts: Iterable[CellFact]) -> list[FactKey]:
    return [fact_key(f.row, f.column_key, f.value, f.unit) for f in facts]


@dataclass
class TableScore:
    """One table's matches, with the facts missed and the ones read that are not in the gold."""

    name: str
    shape: str
    matched: int = 0
    predicted: int = 0
    expected: int = 0
    missed: list[str] = field(default_factory=list)
    spurious: list[str] = field(default_factory=list)


def _show(key: FactKey) -> str:
    row, column, value, unit = key
    return f"{row} | {column} | {number_text(value)} {unit}".strip()


def score_table(name: str, predicted: list[FactKey], gold: list[FactKey]) -> TableScore:
    """Set-level matches of one table (a fact read twice counts once)."""
    pred, want = set(predicted), set(gold)
    shape = re.sub(r"_\d+$", "", name)
    score = TableScore(name, shape, len(pred & want), len(pred), len(want))
    score.missed = sorted(_show(k) for k in want - pred)
    score.spurious = sorted(_show(k) for k in pred - want)
    return score


@dataclass(frozen=True)
class Totals:
    matched: int
    predicted: int
    expected: int
    tables: int

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0


def totals(scores: Iterable[TableScore]) -> Totals:
    scores = list(scores)
    return Totals(
        sum(s.matched for s in scores), sum(s.predicted for s in scores),
        sum(s.expected for s in scores), len(scores),
    )  # fmt: skip


def score_folder(folder: Path) -> list[TableScore]:
    """Every `<name>.html` of `folder`, read as the corpus reader reads it (`html_text`, tables
    as markdown grids) and scored against `<name>.facts.jsonl`."""
    from qwenlong.synth.corpus.ingest import html_text
    from qwenlong.synth.extract.tables import table_facts

    scores = []
    for page in sorted(folder.glob("*.html")):
        gold = page.with_name(f"{page.stem}.facts.jsonl")
        if not gold.exists():
            raise DatasetError(f"{page}: no gold facts file {gold.name} beside it")
        text, _ = html_text(page.read_text(encoding="utf-8"))
        facts = [fact for table in table_facts(text) for fact in table]
        scores.append(score_table(page.stem, predicted_keys(facts), load_gold(gold)))
    if not scores:
        raise DatasetError(f"{folder}: no .html tables to score")
    return scores
