"""The facts of one table: every figure with its row, column, period and resolved unit.

`read_cells` turns a `GridLayout` into `CellFact`s. Each figure gets one canonical value: the
number as printed (sign and decimals kept, grouping and currency signs gone) plus a `UnitSpec`
(currency, scale, percent or unit word), resolved most specific first:

1. the cell itself: "191%", "$ 4,781", "1.2bn";
2. the row label ("Margin (%)", "Cost (EUR thousand)", a "Unit" column) and the column header
   ("(in thousands)", "$", "% of total");
3. the currency printed elsewhere in the row, or in the column when columns are measures (a
   10-K prints "$" on the first row and the totals only); "%" printed in a column headed by a
   rate ("Yield/ Rate") makes its bare cells percentages;
4. the table: its "(in millions, except per share data)" line, the label column's header, the
   caption or lead-in ("(Expressed in thousands of Canadian dollars)"); when columns are
   periods, the currency printed on the body's first row of figures.

A table stating a dollar other than the US one reads its bare "$" as that dollar; a table
printing "1.234,56" is read in that convention throughout (`extract.number_format`).

A figure printed with its own unit word ("4.6 pts", "120 bps") is in that unit, whatever the
column says. Per-share figures and prices never take the table's scale ("except per share data"
says so, and a reader applies it even when a table forgets to); counts (employees, shares,
options, homes, operating days: "Shares used in per share calculations") never take a currency,
and take the table's unit only when it names none, and not even then when the except clause
sets counts apart ("except customer counts", "except ... operating data"); amounts about shares
("Share-based compensation") are money like any other; rows the except clause names ("except
RevPAR and ADR") take no scale. Which label is which is `extract.label_kinds`' call.

Rows labelled only by a section ("Basic", "Diluted", "Other", or any label printed twice) are
qualified with the section row above them: "Earnings per share: Basic"; a label printed once is
kept as printed; an unlabelled subtotal takes the section's name. A section row is one with no
cells of its own, empty or its label spanning the width. Empty cells, dashes and "n/a" state
nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from qwenlong.synth.extract.headers import Column, GridLayout
from qwenlong.synth.extract.label_kinds import (
    PER_UNIT,
    SHARE_COUNTS,
    figure_kind,
    is_excepted,
    label_head,
    names_counts,
)
from qwenlong.synth.extract.units import (
    UnitSpec,
    find_unit,
    is_unit_text,
    parse_unit,
    strip_unit,
    table_unit,
)
from qwenlong.synth.extract.values import NumericCell, number_text, parse_number

SUB_LABELS = frozenset(
    {"basic", "diluted", "other", "total", "current", "non-current", "noncurrent", "net", "gross"}
)
"""Row labels that only mean something under their section row."""

PHYSICAL = re.compile(
    r"\([^()]*\b(?:barrels|boe|mboe|tonnes|tons|mwh|gwh|kwh|vehicles|units|kg|km|ha)\b[^()]*\)",
    re.IGNORECASE,
)
"""A physical unit in a row label's brackets ("(barrels per day)"): no currency applies."""

PERCENT_LABEL = re.compile(r"%|\bpercent(?:age)?\b|\bper cent\b", re.IGNORECASE)
UNIT_COLUMNS = frozenset({"unit", "units"})

RATE_HEADER = re.compile(r"\b(?:yields?|rates?|margins?|ratios?|returns?|growth)\b", re.I)
"""Column headers naming a rate ("Yield/ Rate", "Margin"): with "%" printed on some of their
cells and no currency on any, the bare cells are percentages too, as a "$" printed on a
column's first row and totals covers the cells between."""

LOCAL_DOLLARS = frozenset({"CAD", "AUD", "NZD", "HKD", "SGD"})
"""Dollars a table states in words or code ("(Expressed in thousands of Canadian dollars)")
while printing a bare "$" on its figures: that "$" is the stated dollar, not USD."""

Reader = Callable[[str], NumericCell | None]


@dataclass(frozen=True)
class CellFact:
    """One figure of a table: (row, column/period, value), with the text it was read from."""

    row: str
    """Row label: footnote marks and units removed, qualified by its section when needed."""
    column: Column
    value: Decimal
    """The number as printed, sign applied, in `unit` (not multiplied out)."""
    unit: UnitSpec
    original: str
    """The cell as printed ("$ (1,234)"): the evidence."""
    row_index: int
    """Body row (0 = the first row below the header)."""

    @property
    def column_key(self) -> str:
        """The period ("2021", "2021-12-31"), with the column's qualifier if any; else its label."""
        period = self.column.period
        if period is None:
            return self.column.label
        return f"{period.text} {self.column.label}".strip()

    @property
    def value_text(self) -> str:
        """Canonical value: "4781 USD million", "-12.5%", "950 persons", "3100"."""
        if self.unit.percent:
            return f"{number_text(self.value)}%"
        unit = self.unit.render()
        return f"{number_text(self.value)} {unit}".strip()


@dataclass(frozen=True)
class _Context:
    """Table-level facts every cell may inherit."""

    unit: UnitSpec | None
    exceptions: str
    body_currency: str | None
    by_period: bool
    """Columns are periods (units follow rows); else columns are measures."""
    read: Reader
    """How this table's cells read (`cell_reader`)."""
    percent_columns: frozenset[int] = frozenset()
    """Columns whose bare cells are percentages (`RATE_HEADER`)."""


def cell_reader(decimal_comma: bool, dollar: str | None) -> Reader:
    """`parse_number` in the table's number format, a bare "$" read as the table's stated
    dollar (`LOCAL_DOLLARS`); "US$" and "USD" stay US dollars."""

    def read(text: str) -> NumericCell | None:
        cell = parse_number(text, decimal_comma)
        if cell is not None and dollar and cell.currency == "USD" and "us" not in text.lower():
            return replace(cell, currency=dollar)
        return cell

    return read


def _table_context(layout: GridLayout) -> _Context:
    """The table's unit and except clause, how its cells read, and the currency its body
    prints: the one on its first row of figures or on two rows or more, as a 10-K prints "$"
    on the first row and the totals. A currency printed on one row further down is that row's
    own ("Average fuel price per gallon $ 2.96" among operating statistics)."""
    unit, exceptions = None, ""
    for text in layout.unit_texts:
        found, why = table_unit(text)
        exceptions = exceptions or why
        if found is not None and unit is None:
            unit = found
    dollar = unit.currency if unit is not None and unit.currency in LOCAL_DOLLARS else None
    read = cell_reader(layout.decimal_comma, dollar)
    printed = [row for row in layout.body if any(read(c) for c in row[1:])]
    currencies = Counter(_row_currency(row, read) for row in printed)
    currencies.pop(None, None)
    body = next(iter(currencies), None) if len(currencies) == 1 else None
    if body is not None and currencies[body] < 2 and _row_currency(printed[0], read) != body:
        body = None
    by_period = any(c.period is not None for c in layout.columns)
    percent = frozenset(c.index for c in layout.columns if _percent_column(layout, c, read))
    return _Context(unit, exceptions, body, by_period, read, percent)


def _percent_column(layout: GridLayout, column: Column, read: Reader) -> bool:
    if not RATE_HEADER.search(column.label):
        return False
    cells = [p for row in layout.body if (p := read(row[column.index]))]
    return any(p.percent for p in cells) and not any(p.currency for p in cells)


def _row_currency(row: list[str], read: Reader) -> str | None:
    found = {p.currency for c in row[1:] if (p := read(c)) and p.currency}
    return found.pop() if len(found) == 1 else None


def _column_currency(body: list[list[str]], index: int, read: Reader) -> str | None:
    return _row_currency(["", *(row[index] for row in body)], read)


def resolve_unit(
    cell: NumericCell, row_label: str, own: list[UnitSpec], column: Column,
    row_currency: str | None, column_currency: str | None, table: _Context,
) -> UnitSpec:  # fmt: skip
    """The unit of one figure by the order in the module docstring.

    `row_label` is the row's label with its section; `own` the units the row label and column
    header state, the one that labels the figure first (the row's for period columns). What
    the labels say of the figure (per share, a count, named in the except clause) is
    `extract.label_kinds`'.
    """
    subject = row_label if table.by_period else f"{column.label} {row_label}"
    if cell.label:
        return UnitSpec(label=cell.label)
    if cell.percent or any(u.percent for u in own):
        return UnitSpec(percent=True)
    if column.index in table.percent_columns and not cell.currency:
        return UnitSpec(percent=True)
    if not own and PERCENT_LABEL.search(f"{subject} {column.label}") and not cell.currency:
        return UnitSpec(percent=True)
    kind = figure_kind(column.label, row_label)
    count = kind == "count" or bool(PHYSICAL.search(subject))
    per_unit = kind == "per unit"
    inherit = table.unit
    if count and inherit is not None and (inherit.currency or inherit.percent):
        inherit = None
    worded = next((u for u in own if u.label), None)
    currency = cell.currency or next((u.currency for u in own if u.currency), None)
    if worded is not None or count:
        currency = cell.currency or (worded.currency if worded else None)
    elif currency is None:
        currency = row_currency or (column_currency if not table.by_period else None)
        currency = currency or (inherit.currency if inherit else None) or table.body_currency
    shares_exempt = (
        count
        and bool(SHARE_COUNTS.search(label_head(subject)))
        and bool(SHARE_COUNTS.search(PER_UNIT.sub(" ", table.exceptions)))
    )
    named = any(is_excepted(text, table.exceptions) for text in (column.label, row_label))
    exempt = shares_exempt or named or (count and names_counts(table.exceptions))
    scale = cell.scale or next((u.scale for u in own if u.scale != 1), None)
    if scale is None and not per_unit and not exempt and worded is None:
        scale = inherit.scale if inherit is not None else None
    if per_unit and not cell.scale:
        scale = None
    label = worded.label if worded else (inherit.label if inherit else "")
    return UnitSpec(currency, scale or Decimal(1), False, label)


def _is_section(row: list[str]) -> bool:
    """A row with no cells of its own: empty beside its label, or its label spanning the
    whole width ("Property, plant and equipment:" in a cell of colspan 5)."""
    return all(not c or c == row[0] for c in row[1:])


def row_labels(layout: GridLayout) -> list[str | None]:
    """Each body row's label (None for section and empty rows), qualified where needed."""
    raw = [strip_unit(row[0]).rstrip(":").strip() for row in layout.body]
    seen = Counter(
        label.casefold()
        for label, row in zip(raw, layout.body, strict=True)
        if not _is_section(row)
    )
    out: list[str | None] = []
    section = ""
    for label, row in zip(raw, layout.body, strict=True):
        if _is_section(row):
            section = label or section
            out.append(None)
            continue
        if not label:
            out.append(section or None)  # an unlabelled subtotal closes its section
            continue
        repeated = seen[label.casefold()] > 1 or label.casefold() in SUB_LABELS
        out.append(f"{section}: {label}" if repeated and section else label)
    return out


def _unit_column(layout: GridLayout) -> int | None:
    """A column headed "Unit", or one without a period whose cells all state units."""
    for column in layout.columns:
        if column.period is not None:
            continue
        cells = [row[column.index] for row in layout.body if row[column.index]]
        if column.label.lower() in UNIT_COLUMNS or (cells and all(map(is_unit_text, cells))):
            return column.index
    return None


def read_cells(layout: GridLayout) -> list[CellFact]:
    """Every figure of a table (see the module docstring)."""
    table = _table_context(layout)
    unit_col = _unit_column(layout)
    col_currency = {
        c.index: _column_currency(layout.body, c.index, table.read) for c in layout.columns
    }
    facts = []
    labels = row_labels(layout)
    for r, (row, label) in enumerate(zip(layout.body, labels, strict=True)):
        if not label:
            continue
        row_unit = find_unit(row[0])
        if unit_col is not None:
            row_unit = row_unit or parse_unit(row[unit_col])
        currency = _row_currency(row, table.read)
        for column in layout.columns:
            if column.notes or column.index == unit_col:
                continue
            cell = table.read(row[column.index])
            if cell is None:
                continue
            units = (row_unit, column.unit) if table.by_period else (column.unit, row_unit)
            own = [u for u in units if u is not None]
            unit = resolve_unit(
                cell, label, own, column, currency, col_currency[column.index], table
            )
            facts.append(CellFact(label, column, cell.value, unit, row[column.index], r))
    return facts
