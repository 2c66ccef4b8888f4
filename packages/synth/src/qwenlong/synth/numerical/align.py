"""Schema alignment: tables from many documents become one long table of facts.

Every figure becomes one row `(entity, doc_id, year, metric, value, unit)`. Four table layouts
are recognised, tried in the order of `LAYOUTS` (the first that matches reads the table):

| layout          | header                               | rows are  | entity from          |
|-----------------|--------------------------------------|-----------|----------------------|
| metric_by_year  | label, then year columns             | metrics   | the document         |
| entity_by_year  | entity word ("Company"), year columns| entities  | the row              |
| year_rows       | a "Year" column, metric columns      | years     | entity column or doc |
| entity_snapshot | entity word, metric columns          | entities  | the row (year: the   |
|                 |                                      |           | one year in caption) |

Entity of a document (rule, in order): an entity column of the table; the document's title; its
first heading (markdown `#` or HTML `<h1>`-`<h6>`); each cleaned of report words and years by
`clean_entity_name` ("Acme Corp - Annual Report 2023" -> "Acme Corp"). Tables with no entity by
this rule are skipped. For `entity_by_year`, the metric is the caption's (else the heading's).

Unit of a figure (most specific first): a currency or scale written in the cell; the row label
(or column header) "(USD million)"; a "Unit" column; the first header cell; the caption; the
section heading. Count metrics (head counts) inherit only table-level units without a
currency or percent, so an "in USD million" caption does not turn employees into dollars.
Units are then aligned per metric by `align_units`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from qwenlong.core.records import Document
from qwenlong.synth.extract.headers import read_grid
from qwenlong.synth.extract.report_cells import read_cells
from qwenlong.synth.numerical.tables import ParsedTable, parse_number, parse_year
from qwenlong.synth.numerical.units import (
    UnitSpec,
    canonical_metric,
    clean_entity_name,
    entity_key,
    find_unit,
    is_count_metric,
    normalise_label,
    parse_unit,
    strip_unit,
)

ENTITY_HEADERS = frozenset(
    [
        "company",
        "companies",
        "entity",
        "entities",
        "name",
        "organisation",
        "organization",
        "firm",
        "issuer",
        "country",
        "subsidiary",
        "segment",
    ]
)
"""Normalised first-column headers that mark rows as entities."""

YEAR_HEADERS = frozenset({"year", "fiscal year", "fy", "period", "financial year"})
UNIT_HEADERS = frozenset({"unit", "units"})
_CAPTION_TAIL = re.compile(
    r"\s+(?:by|per|for each|across)\s+(?:year|years|company|companies|entity|entities|"
    r"fiscal year)\b.*$|\s+(?:over time|trend|history)$",
    re.IGNORECASE,
)
"""What follows the metric in a caption such as "Revenue by year" or "Net income per company"."""
_ANY_YEAR = re.compile(r"\b(?:FY\s?)?((?:19|20)\d{2})\b", re.IGNORECASE)


@dataclass(frozen=True)
class RawFact:
    """One figure as read from a table or from prose, before units are aligned."""

    entity: str
    doc_id: str
    year: int
    metric: str
    """Canonical metric name (`canonical_metric` of the label)."""
    value: Decimal
    """The value in `unit` (cell scale words already applied)."""
    unit: UnitSpec | None
    where: str
    """Location for audits: "table 2 row 3 col 4" or "prose"."""


def header_year(cell: str) -> tuple[int | None, UnitSpec | None]:
    """A year header and any unit beside it ("2021", "FY2022 (USD m)", "USD million 2021")."""
    years = _ANY_YEAR.findall(cell)
    if len(years) != 1:
        return None, None
    rest = _ANY_YEAR.sub(" ", cell).strip(" ()[]*")
    if not rest:
        return int(years[0]), None
    unit = parse_unit(rest) or find_unit(rest)
    return (int(years[0]), unit) if unit is not None else (None, None)


def document_entity(doc: Document) -> str:
    """The entity a document reports on: its title, else its first heading, cleaned."""
    candidates = [doc.title]
    first_heading = re.search(r"^\s{0,3}#\s+(.+)$|<h1[^>]*>(.*?)</h1>", doc.text, re.M | re.I)
    if first_heading:
        candidates.append(first_heading.group(1) or re.sub(r"<[^>]+>", "", first_heading.group(2)))
    for candidate in candidates:
        name = clean_entity_name(candidate or "")
        if name:
            return name
    return ""


@dataclass
class _Reader:
    """Shared state while one table is read."""

    table: ParsedTable
    entity: str
    facts: list[RawFact] = field(default_factory=list)

    @property
    def table_units(self) -> list[UnitSpec | None]:
        """Table-level units, most specific first: first header cell, caption, heading."""
        t = self.table
        return [
            find_unit(t.header[0]) or parse_unit(t.header[0]),
            find_unit(t.caption),
            find_unit(t.heading),
        ]

    def add(
        self,
        entity: str,
        year: int,
        metric: str,
        cell: str,
        units: list[UnitSpec | None],
        where: tuple[int, int],
    ) -> None:
        """Record one cell if it is a number; `units` are the label-level candidates."""
        parsed = parse_number(cell)
        if parsed is None or not entity or not metric:
            return
        inherited = self.table_units
        if is_count_metric(metric):
            inherited = [u for u in inherited if u and u.currency is None and not u.percent]
        unit = next((u for u in [*units, *inherited] if u is not None), None)
        if parsed.percent:
            unit = UnitSpec(percent=True)
        elif parsed.scale is not None or parsed.currency is not None:
            base = unit or UnitSpec()
            unit = UnitSpec(
                parsed.currency or base.currency, parsed.scale or base.scale, False, base.label
            )
        row, col = where
        self.facts.append(
            RawFact(
                entity,
                self.table.doc_id,
                year,
                metric,
                parsed.value,
                unit,
                f"table {self.table.index} row {row} col {col}",
            )
        )


def _first_header(table: ParsedTable) -> str:
    return normalise_label(table.header[0]) if table.header else ""


def _year_columns(table: ParsedTable) -> dict[int, tuple[int, UnitSpec | None]]:
    found = {}
    for col, cell in enumerate(table.header[1:], start=1):
        year, unit = header_year(cell)
        if year is not None:
            found[col] = (year, unit)
    return found


def _unit_column(table: ParsedTable) -> int | None:
    for col, cell in enumerate(table.header):
        if normalise_label(cell) in UNIT_HEADERS:
            return col
    return None


def read_metric_by_year(reader: _Reader) -> bool:
    """Rows are metrics, columns are periods; the entity is the document's.

    Read by the report-table reader the rule extractor uses (`extract.headers`,
    `extract.report_cells`): several header rows, "(in millions, except per share data)",
    "$" on the first row only, fiscal years and balance-sheet dates. Only plain period
    columns give facts: a "2019 over 2018" or "% of revenue" column is not the year's figure.
    """
    table = reader.table
    if _first_header(table) in ENTITY_HEADERS or not reader.entity:
        return False
    grid = [list(row) for row in table.grid or (table.header, *table.rows)]
    layout = read_grid(grid, table.caption)
    if normalise_label(layout.label_header) in YEAR_HEADERS:
        return False
    if not any(c.period is not None and not c.label for c in layout.columns):
        return False
    layout = replace(layout, unit_texts=[*layout.unit_texts, table.heading])
    for fact in read_cells(layout):
        period = fact.column.period
        if period is None or fact.column.label:
            continue
        reader.facts.append(
            RawFact(
                reader.entity, table.doc_id, period.year, canonical_metric(fact.row),
                fact.value, fact.unit if fact.unit != UnitSpec() else None,
                f"table {table.index} row {fact.row_index} col {fact.column.index}",
            )
        )  # fmt: skip
    return True


def read_entity_by_year(reader: _Reader) -> bool:
    """Rows are entities, columns are years; the metric is named by the caption or heading."""
    table = reader.table
    years = _year_columns(table)
    if not years or _first_header(table) not in ENTITY_HEADERS:
        return False
    label = table.caption or table.heading
    metric = canonical_metric(_CAPTION_TAIL.sub("", strip_unit(label)))
    unit = find_unit(label)
    for r, row in enumerate(table.rows):
        entity = clean_entity_name(row[0])
        for col, (year, header_unit) in years.items():
            reader.add(entity, year, metric, row[col], [header_unit, unit], (r, col))
    return bool(metric)


def read_year_rows(reader: _Reader) -> bool:
    """Rows are years (a "Year" column); other columns are metrics, one may name the entity."""
    table = reader.table
    labels = [normalise_label(h) for h in table.header]
    year_cols = [i for i, label in enumerate(labels) if label in YEAR_HEADERS]
    if not year_cols:
        return False
    entity_col = next((i for i, label in enumerate(labels) if label in ENTITY_HEADERS), None)
    if entity_col is None and not reader.entity:
        return False
    skip = {year_cols[0], entity_col, _unit_column(table)}
    metric_cols = [i for i in range(len(table.header)) if i not in skip]
    for r, row in enumerate(table.rows):
        year = parse_year(row[year_cols[0]])
        if year is None:
            continue
        entity = reader.entity if entity_col is None else clean_entity_name(row[entity_col])
        for col in metric_cols:
            header = table.header[col]
            reader.add(
                entity, year, canonical_metric(header), row[col], [find_unit(header)], (r, col)
            )
    return True


def read_entity_snapshot(reader: _Reader) -> bool:
    """Rows are entities, columns metrics, for the single year the caption or heading names."""
    table = reader.table
    if _first_header(table) not in ENTITY_HEADERS or _year_columns(table):
        return False
    years = {int(y) for y in _ANY_YEAR.findall(table.caption)} or {
        int(y) for y in _ANY_YEAR.findall(table.heading)
    }
    if len(years) != 1:
        return False
    (year,) = years
    for r, row in enumerate(table.rows):
        entity = clean_entity_name(row[0])
        for col in range(1, len(table.header)):
            header = table.header[col]
            reader.add(
                entity, year, canonical_metric(header), row[col], [find_unit(header)], (r, col)
            )
    return True


LAYOUTS: tuple[tuple[str, Callable[[_Reader], bool]], ...] = (
    ("metric_by_year", read_metric_by_year),
    ("entity_by_year", read_entity_by_year),
    ("year_rows", read_year_rows),
    ("entity_snapshot", read_entity_snapshot),
)
"""Layout readers in the order they are tried; each returns False when the table is not its
layout. Ordered, not a registry: the first match wins, so order is part of the rule."""


def read_table(table: ParsedTable, doc_entity: str) -> tuple[str | None, list[RawFact]]:
    """The facts of one table and the layout that read it (None: no layout matched)."""
    if not table.header:
        return None, []
    for name, read in LAYOUTS:
        reader = _Reader(table, doc_entity)
        if read(reader):
            return name, reader.facts
    return None, []


# --- unit alignment -------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignedFact:
    """One row of the cross-document long table."""

    entity: str
    doc_id: str
    year: int
    metric: str
    value: float
    unit: str
    exact: Decimal
    """The value as an exact decimal in `unit` (what `value` was rounded from)."""


@dataclass
class Alignment:
    """The long table and what alignment did to get it."""

    facts: list[AlignedFact]
    units: dict[str, str]
    """Metric -> the one unit its values are stored in."""
    rescaled: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(metric, from unit, to unit) -> number of figures rescaled."""
    dropped: Counter[str] = field(default_factory=Counter)
    """Reason -> figures left out: "unit conflict" (another currency or dimension than the
    metric's majority) and "no unit" where the metric's other figures have one."""


def align_units(raw: list[RawFact]) -> Alignment:
    """One unit per metric; one spelling per entity.

    Per metric the majority dimension (currency, percent, unit word; ties broken by sort
    order) is kept; figures of another dimension cannot be converted without exchange rates or
    conversion factors and are dropped (counted). A figure without a unit joins a metric whose
    other figures are unitless, and a head count without a unit joins counts in "persons";
    otherwise it is dropped as ambiguous. Within the dimension the most common scale is the
    target (ties: the smallest, so fewer values become fractions) and every figure is rescaled
    exactly in decimal arithmetic. Entities are merged by `entity_key`; the display name is the
    most frequent spelling (ties: alphabetical first).
    """
    spelling: dict[str, Counter[str]] = {}
    for fact in raw:
        spelling.setdefault(entity_key(fact.entity), Counter())[fact.entity] += 1
    display = {key: min(c, key=lambda name: (-c[name], name)) for key, c in spelling.items()}
    by_metric: dict[str, list[RawFact]] = {}
    for fact in raw:
        by_metric.setdefault(fact.metric, []).append(fact)
    result = Alignment([], {})
    for metric in sorted(by_metric):
        _align_metric(metric, by_metric[metric], display, result)
    return result


def _align_metric(
    metric: str, facts: list[RawFact], display: dict[str, str], result: Alignment
) -> None:
    dims = Counter(f.unit.dimension for f in facts if f.unit is not None)
    dim = min(dims, key=lambda d: (-dims[d], d)) if dims else UnitSpec().dimension
    currency, percent, label = dim
    plain = dim == UnitSpec().dimension or (
        is_count_metric(metric) and not currency and not percent
    )
    units = [f.unit or (UnitSpec(label=label) if plain else None) for f in facts]
    scales = Counter(u.scale for u in units if u is not None and u.dimension == dim)
    scale = min(scales, key=lambda s: (-scales[s], s))
    target = UnitSpec(currency or None, scale, percent, label)
    result.units[metric] = target.render()
    for fact, unit in zip(facts, units, strict=True):
        if unit is None:
            result.dropped["no unit"] += 1
            continue
        if unit.dimension != dim:
            result.dropped["unit conflict"] += 1
            continue
        exact = fact.value * unit.scale / scale
        if unit.scale != scale:
            result.rescaled[(metric, unit.render(), target.render())] += 1
        name = display[entity_key(fact.entity)]
        result.facts.append(
            AlignedFact(name, fact.doc_id, fact.year, metric, float(exact), target.render(), exact)
        )
