"""Markdown and HTML tables in document text, and the triples the rule extractor reads from them.

Tables are found as markdown pipe tables (the form every corpus reader writes, see
`corpus.table_grid`) and as raw `<table>` markup; both become span-expanded grids, read by
`extract.headers` (which rows are the header, what each column is) and `extract.report_cells`
(every figure with its canonical value and unit). Triples by table shape:

- Period columns, metric rows: the label column's header is generic ("Metric", "Item", empty,
  "(in millions)", a statement title). Head = the document subject, relation = the row label,
  date = the column's period: `| Metric (USD million) | 2019 |` + `| Revenue | 1,234.5 |` ->
  (subject, revenue, "1234.5 USD million", 2019). Change and range columns ("2019 over 2018")
  and qualified columns ("2021 % of revenue") add their label to the relation.
- Period columns, entity rows: the label column's header names the measured quantity. Head =
  the row label, relation = that quantity: `| Revenue (USD million) | 2019 |` + `| Telmora |
  812.0 |` -> (Telmora, revenue, "812.0 USD million", 2019).
- Any other table: head = the row's first cell, relation = the column header, no date; text
  cells become tails as written (dates in ISO form).

Tails are canonical (`CellFact.value_text`): "$ 4,781" in a table "in millions" is "4781 USD
million", "(365,223)" is "-365223", "191%" is "191%". Empty cells and dashes give no triple.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qwenlong.core.records import Document
from qwenlong.synth.corpus.table_grid import html_tables, split_pipe_row
from qwenlong.synth.extract.headers import GENERIC_LABELS, GridLayout, read_grid
from qwenlong.synth.extract.normalise import (
    is_literal,
    normalise_relation,
    normalise_value,
    subject_of,
)
from qwenlong.synth.extract.report_cells import CellFact, read_cells, row_labels
from qwenlong.synth.extract.units import BRACKETS, is_unit_text, strip_unit, table_unit
from qwenlong.synth.extract.values import is_missing
from qwenlong.synth.interfaces import Triple

TITLE_WORDS = re.compile(
    r"\b(?:consolidated|statements?|balance sheets?|summary|selected|highlights|results|"
    r"financial|in (?:millions|thousands|billions))\b",
    re.IGNORECASE,
)
"""Words of a statement title or unit line sitting in the label column's header cell."""

_SEPARATOR = re.compile(r"^:?-{3,}:?$")
_CAPTION_MAX_CHARS = 160


@dataclass(frozen=True)
class Table:
    """A table as a grid of cell strings; `evidence[i]` is the source text of `rows[i]`."""

    rows: tuple[tuple[str, ...], ...]
    """Every row, header rows included (which rows are header is `extract.headers`' call)."""
    evidence: tuple[str, ...]
    caption: str = ""


def parse_markdown_tables(text: str) -> list[Table]:
    """Pipe tables with a `|---|` separator under the first row; the caption is the line just
    above, if any (`lead_in_caption`)."""
    tables = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith("|"):
            i += 1
            continue
        start = i
        while i < len(lines) and lines[i].lstrip().startswith("|"):
            i += 1
        block = [ln.strip() for ln in lines[start:i]]
        separator = split_pipe_row(block[1]) if len(block) > 1 else []
        if len(block) < 3 or not all(_SEPARATOR.match(c) for c in separator if c):
            continue
        above = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
        caption = lead_in_caption(above)
        kept = [block[0], *block[2:]]
        rows = tuple(tuple(split_pipe_row(ln)) for ln in kept)
        tables.append(Table(rows, tuple(kept), caption))
    return tables


def lead_in_caption(line: str) -> str:
    """The caption a table takes from the line above it: the line itself when short, else only
    its bracketed unit statements. A lead-in sentence ("The following table presents ...
    (dollars in thousands):") states the table's unit as a caption would; the rest of a long
    paragraph is prose, not a caption."""
    if len(line) <= _CAPTION_MAX_CHARS:
        return line
    units = [m.group(0) for m in BRACKETS.finditer(line) if table_unit(m.group(0))[0] is not None]
    return " ".join(units)


def parse_tables(text: str) -> list[Table]:
    """Every markdown and HTML table in `text` (markdown first, then HTML, each in order)."""
    tables = parse_markdown_tables(text)
    if "<table" in text.lower():
        for found in html_tables(text):
            rows = tuple(tuple(r) for r in found.rows)
            evidence = tuple("| " + " | ".join(r) + " |" for r in rows)
            tables.append(Table(rows, evidence, found.caption))
    return tables


def _label_column_names_a_quantity(layout: GridLayout) -> str:
    """The quantity the label column's header names ("Revenue"), or "" when it is generic."""
    label = strip_unit(layout.label_header)
    if not label or TITLE_WORDS.search(label) or is_unit_text(layout.label_header):
        return ""
    return "" if normalise_relation(label) in GENERIC_LABELS else label


def _triple(head: str, relation: str, tail: str, doc: Document, date: str | None, ev: str):
    kind = "value" if is_literal(tail) else ""
    return Triple(head, normalise_relation(relation), tail, doc.id, date, ev, "", kind)


def _attribute_triples(table: Table, layout: GridLayout, doc: Document) -> list[Triple]:
    """Rows are things, columns their attributes; text cells count as well as numbers."""
    numbers = {(f.row_index, f.column.index): f.value_text for f in read_cells(layout)}
    triples = []
    for r, (row, head) in enumerate(zip(layout.body, row_labels(layout), strict=True)):
        evidence = table.evidence[layout.sources[r]]
        for column in layout.columns:
            cell = row[column.index]
            if not head or not column.label or is_missing(cell):
                continue
            tail = numbers.get((r, column.index)) or normalise_value(cell)
            triples.append(_triple(head, column.label, tail, doc, None, evidence))
    return triples


def table_triples(doc: Document) -> list[Triple]:
    """Triples from every table of `doc`, by the shapes in the module docstring."""
    triples = []
    subject = subject_of(doc)
    for table in parse_tables(doc.text):
        layout = read_grid([list(r) for r in table.rows], table.caption)
        if not any(c.period is not None for c in layout.columns):
            triples.extend(_attribute_triples(table, layout, doc))
            continue
        quantity = _label_column_names_a_quantity(layout)
        if not quantity and not subject:
            continue  # metric rows with no subject to head them
        for fact in read_cells(layout):
            evidence = table.evidence[layout.sources[fact.row_index]]
            period = fact.column.period
            date = period.text if period is not None else None
            if quantity:
                head, relation = fact.row, f"{quantity} {fact.column.label}"
            else:
                head, relation = subject, f"{fact.row} {fact.column.label}"
            triples.append(_triple(head, relation, fact.value_text, doc, date, evidence))
    return triples


def table_facts(text: str) -> list[list[CellFact]]:
    """The figures of every table in `text`, one list per table, in `parse_tables` order."""
    return [
        read_cells(read_grid([list(r) for r in table.rows], table.caption))
        for table in parse_tables(text)
    ]
