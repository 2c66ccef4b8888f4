"""Which rows of a table grid are its header, and what each column is.

Readers write every table as a span-expanded grid whose first row is simply the first row
(`corpus.table_grid`); published reports stack a caption row, a "Year ended December 31," row,
a year row and an "(in millions)" row above the figures. `read_grid` decides:

- header rows: the rows above the first data row (a row with a number that is not a period)
  down to the last row that looks like a header (an empty row label with text beside it, a row
  of periods, a unit row, a row spanning the whole table above the periods); section rows
  ("ASSETS", "Current assets:"), label-only or spanning the whole width below the periods, are
  body. With no such row, the first row is the header, as in markdown;
- glue: report HTML often puts "$" and the closing ")" or "%" of a figure in cells of their own;
  they are joined to the figure, and columns left empty in every body row are dropped;
- columns: each column's header cells, top down, joined into its header text; from that its
  period (`extract.periods`), its unit words (`extract.units`) and its label (what is left: the
  measure, "% of revenue", "2019 over 2018", "Less than 1 year"; a restatement mark, "2022
  Restated*", is no label: the column is the year). A row spanning every value column
  ("Payments due by period", "December 31,") labels none of them but still dates them ("Year
  ended December 31," makes "2021" a fiscal year, "December 31," makes it 2021-12-31) and may
  state the table's unit. Plain year columns under a caption stating an as-of date ("As at 31
  March 2024") take that date (`extract.periods`);
- table-level unit text: the label column's header cells, spanning and unit rows, the caption;
- number format: decided once per table from its cells (`extract.number_format`), so
  "1.823.103" and "412.380" under "R$" read as thousands-grouped integers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from qwenlong.synth.extract.number_format import uses_decimal_comma
from qwenlong.synth.extract.periods import (
    Period,
    as_of_date,
    find_period,
    names_only_a_year,
    same_day,
)
from qwenlong.synth.extract.units import (
    CURRENCY_SYMBOLS,
    UnitSpec,
    cell_unit,
    find_unit,
    is_unit_text,
    split_unit_token,
    strip_unit,
    table_unit,
)
from qwenlong.synth.extract.values import clean_text, is_missing, parse_number, strip_footnotes

GENERIC_LABELS = frozenset(
    {"", "metric", "metrics", "item", "items", "indicator", "measure", "figure", "figures",
     "line item", "line_item", "key figures", "description", "particulars", "year", "years",
     "fiscal year", "period", "financial year"}
)  # fmt: skip
"""Label-column headers that say "rows are line items", not what they measure."""

NOTES_LABELS = frozenset({"note", "notes", "note(s)", "ref", "ref.", "reference"})
"""Column headers of the note-reference column of IFRS statements: references, not figures."""

COUNT_WORDS = frozenset({"number", "count", "no"})
"""Words of a unit cell that also name the column's measure ("Number '000" is a count)."""

RESTATED = re.compile(r"\(?\b(?:as\s+)?(?:restated|re-presented|unaudited)\b\)?[*†‡]*", re.I)
"""Marks on a period column that say how its figures were prepared, not what they measure:
"2022 Restated*", "2022 (as restated)" is the year 2022, as a reader quoting it would key it."""

_FOOTNOTE_ONLY = re.compile(r"[\d*†‡]{1,2}")
_CLOSERS = frozenset({")", "%", ")%", "%)", ") %"})
_OPENERS = frozenset({*CURRENCY_SYMBOLS, "US$", "(", "$(", "($"})


@dataclass(frozen=True)
class Column:
    """One value column of a table."""

    index: int
    """Position in `GridLayout.body` rows."""
    header: str
    """The column's header cells joined top down (spanning rows included, units kept)."""
    label: str
    """What the column is besides its period and unit: "" for a plain year column, else the
    measure or qualifier ("% of revenue", "2019 over 2018", "Less than 1 year")."""
    period: Period | None
    unit: UnitSpec | None
    """A unit stated in the column's own header cells ("(in thousands)", "$", "%")."""
    notes: bool = False
    """A note-reference column ("Notes"): its numbers are not facts."""


@dataclass(frozen=True)
class GridLayout:
    """A table grid split into header and body, with its columns described."""

    header_rows: int
    body: list[list[str]]
    """Body rows after glueing, the label column first, padded to one width."""
    sources: list[int]
    """For each body row, its row number in the grid given to `read_grid`."""
    columns: list[Column]
    """The value columns (body positions 1 onwards)."""
    label_header: str
    """The label column's header cells joined ("Metric (USD million)", "(in millions)")."""
    unit_texts: list[str]
    """Where a table-level unit may be stated, most specific first: the label column's header,
    unit and spanning header rows, the caption."""
    decimal_comma: bool = False
    """The table prints "1.234,5" (`extract.number_format`): read every figure that way."""


def _is_period_cell(text: str) -> bool:
    period, rest = find_period(strip_footnotes(text))
    return period is not None and (not rest or is_unit_text(rest))


def _is_value(text: str, decimal_comma: bool = False) -> bool:
    parsed = parse_number(text, decimal_comma)
    if parsed is None:
        return False
    return bool(parsed.currency or parsed.percent or parsed.scale) or not _is_period_cell(text)


def _generic(label: str) -> bool:
    base = strip_unit(strip_footnotes(label)).lower().rstrip(":, ")
    if base in GENERIC_LABELS or is_unit_text(label):
        return True
    dated = "ended" in base or base.startswith(("as of", "as at", "at "))
    return dated and find_period(label)[0] is None


def _spans_all(row: list[str]) -> bool:
    values = [c for c in row[1:] if c]
    return len(row) > 2 and len(values) == len(row) - 1 and len(set(values)) == 1


def _header_evidence(
    row: list[str], period_seen: bool, above: list[str] | None, first: bool = False
) -> str:
    """Why a row above the figures is a header row ("" when it is not).

    `above` is the row just above when that one is a header row; `first` says the row is the
    grid's first. A row of periods needs an empty or generic label, a header row above it
    ("EUR thousand" over "Segment | 2021 | 2022") or to be the first row ("Segment | 2023 |
    2023 | 2022" over "Segment | Net premiums earned | Combined ratio | ..."), and a row of
    column names needs a header row above it ("Payments due by period" over "Total | Less
    than 1 year"), so that the first rows of a table of names and year-like counts stay body.
    """
    label, cells = row[0], [c for c in row[1:] if c]
    if not cells:
        return "unit" if label and is_unit_text(label) else ""
    if len(set(row)) == 1:
        # One text across the whole width: above the periods a caption, below them a
        # section heading ("ASSETS", "Current assets:") that opens the body.
        return "unit" if is_unit_text(label) else ("" if period_seen else "caption")
    if not label:
        return "period" if all(_is_period_cell(c) for c in cells) else "labels"
    if all(is_unit_text(c) for c in cells) or is_unit_text(label):
        return "unit"
    if len(row) > 2 and len(cells) == len(row) - 1 and len(set(cells)) == 1:
        return "spanning"
    periods = not period_seen and all(_is_period_cell(c) for c in cells)
    if periods and (above is not None or first or _generic(label)):
        return "period"
    names = len(cells) == len(row) - 1 and not any(is_missing(c) for c in cells)
    return "labels" if names and above is not None else ""


def split_header(grid: list[list[str]], decimal_comma: bool = False) -> int:
    """How many leading rows of `grid` are header rows (see the module docstring)."""
    first_data = next(
        (i for i, row in enumerate(grid) if any(_is_value(c, decimal_comma) for c in row[1:])),
        len(grid),
    )
    last_header, period_seen = -1, False
    for i in range(first_data):
        above = grid[i - 1] if i > 0 and last_header == i - 1 else None
        why = _header_evidence(grid[i], period_seen, above, first=i == 0)
        period_seen = period_seen or why == "period"
        if why:
            last_header = i
    if last_header < 0 and first_data > 0:
        return 1
    return last_header + 1


def glue(row: list[str], decimal_comma: bool = False) -> list[str]:
    """Join a lone ")" or "%" to the figure on its left, then a lone "$" or "(" to the one on
    its right, when the joined text reads as a number ("$", "(365,223", ")" -> "$ (365,223)")."""
    out = list(row)
    for i, cell in enumerate(out):
        left = next((j for j in range(i - 1, 0, -1) if out[j]), None)
        if cell in _CLOSERS and left is not None:
            out[left], out[i] = out[left] + cell.replace(" ", ""), ""
    for i in range(len(out) - 1, 0, -1):
        right = next((j for j in range(i + 1, len(out)) if out[j]), None)
        if out[i] in _OPENERS and right is not None:
            joined = f"{out[i]} {out[right]}"
            if parse_number(joined, decimal_comma) is not None:
                out[right], out[i] = joined, ""
    return out


def _column(index: int, parts: list[str], spanning: list[str]) -> Column:
    header = " ".join(dict.fromkeys(p for p in [*spanning, *parts] if p))
    period, _ = find_period(header)
    own = " ".join(dict.fromkeys(p for p in parts if p))
    unit, words = None, []
    for part in parts:
        found = find_unit(part) or cell_unit(part)
        token, rest = split_unit_token(strip_unit(part))
        unit = unit or found or token
        if is_unit_text(part):
            rest = " ".join(w for w in part.split() if w.lower().strip(".") in COUNT_WORDS)
        if rest:
            words.append(rest)
    label = " ".join(dict.fromkeys(words))
    if period is not None:
        label = find_period(label)[1] if find_period(label)[0] else label
        label = " ".join(RESTATED.sub(" ", label).split())
        label = "" if _FOOTNOTE_ONLY.fullmatch(label) else label
        label = "" if label.lower() in ("amount", "amounts", "actual", "total") else label
    notes = own.lower().strip(" :") in NOTES_LABELS
    return Column(index, header, label, period, unit, notes)


def _caption_dates(columns: list[Column], caption: str) -> list[Column]:
    """Plain year columns dated by the caption's as-of date (`extract.periods`): "As at 31
    March 2024" over "2024 £m | 2023 £m" keys them 2024-03-31 and 2023-03-31. Only when every
    dated column is a plain year and one of them is the caption's year."""
    as_of = as_of_date(caption)
    dated = [c for c in columns if c.period is not None]
    if as_of is None or not dated:
        return columns
    if any(c.label or c.period.is_date or not names_only_a_year(c.header) for c in dated):
        return columns
    if all(c.period.year != as_of.year for c in dated):
        return columns
    return [c if c.period is None else replace(c, period=same_day(as_of, c.period.year))
            for c in columns]  # fmt: skip


def read_grid(rows: list[list[str | None]], caption: str = "") -> GridLayout:
    """Header rows, glued body, described columns and unit texts of one span-expanded grid."""
    width = max((len(r) for r in rows), default=0)
    grid = [[clean_text(c or "") for c in r] + [""] * (width - len(r)) for r in rows]
    comma = uses_decimal_comma((c for r in grid for c in r[1:]), _stated_currency(grid, caption))
    grid = [[strip_footnotes(c) if not _is_value(c, comma) else c for c in r] for r in grid]
    numbered = [(i, r) for i, r in enumerate(grid) if any(r)]
    grid = [r for _, r in numbered]
    n_header = split_header(grid, comma)
    head, body = grid[:n_header], [glue(r, comma) for r in grid[n_header:]]
    sources = [i for i, _ in numbered[n_header:]]
    keep = [0] + [j for j in range(1, width) if any(r[j] for r in body)]
    head = [[r[j] for j in keep] for r in head]
    body = [[r[j] for j in keep] for r in body]
    spanning = [r[1] for r in head if _spans_all(r)]
    columns = [
        _column(j, _dedupe([r[j] for r in head if not _spans_all(r)]), spanning)
        for j in range(1, len(keep))
    ]
    columns = _caption_dates(columns, caption)
    labels = _label_columns(body, columns, comma)
    if labels > 1:
        head, body = _merge_labels(head, labels), _merge_labels(body, labels)
        columns = [replace(c, index=c.index - labels + 1) for c in columns[labels - 1 :]]
    label_header = " ".join(dict.fromkeys(r[0] for r in head if r[0] and not _spans_all(r)))
    unit_texts = [label_header, *(r[0] for r in head if r[0] and r[0] != label_header)]
    unit_texts += [*spanning, caption]
    texts = [t for t in unit_texts if t]
    return GridLayout(n_header, body, sources, columns, label_header, texts, comma)


def _label_columns(body: list[list[str]], columns: list[Column], decimal_comma: bool) -> int:
    """How many leading columns label the rows: a table with period columns may name each row
    in two columns ("Streaming" spanning two rows, then "Revenue", "Operating income")."""
    if not any(c.period is not None for c in columns):
        return 1
    count = 1
    for column in columns:
        cells = [row[column.index] for row in body if row[column.index]]
        if column.period is not None or column.notes or not cells:
            break
        if any(
            parse_number(c, decimal_comma) is not None or is_unit_text(c) or is_missing(c)
            for c in cells
        ):
            break
        count += 1
    return count


def _stated_currency(grid: list[list[str]], caption: str) -> str | None:
    """The currency a table states in its caption or prints in a cell ("R$", "€"), if any: a
    tie-breaker for its number format."""
    stated = table_unit(caption)[0]
    if stated is not None and stated.currency:
        return stated.currency
    cells = " ".join(c for r in grid for c in r).lower()
    return next((code for sign, code in CURRENCY_SYMBOLS.items() if sign in cells), None)


def _merge_labels(rows: list[list[str]], labels: int) -> list[list[str]]:
    return [[" ".join(dict.fromkeys(c for c in r[:labels] if c)), *r[labels:]] for r in rows]


def _dedupe(parts: list[str]) -> list[str]:
    """Consecutive repeats (a rowspan, or a colspan seen twice) kept once."""
    out: list[str] = []
    for part in parts:
        if part and (not out or out[-1] != part):
            out.append(part)
    return out
