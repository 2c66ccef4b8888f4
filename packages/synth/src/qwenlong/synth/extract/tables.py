"""Markdown and HTML tables, and the triples the rule extractor reads from them.

Triples by table shape (the header row is the first row; a trailing "(unit)" on a header or
row label is the unit, appended to every value it covers: "1234.5 USD million"):

- Year columns, metric rows: the first header cell is generic ("Metric", "Item", "Indicator",
  empty...). Head = the document subject, relation = the row label, date = the column's year:
  `| Metric (USD million) | 2019 |` + `| Revenue | 1,234.5 |` -> (subject, revenue, "1234.5 USD
  million", 2019).
- Year columns, entity rows: the first header cell names the measured quantity. Head = the row
  label, relation = that quantity: `| Revenue (USD million) | 2019 |` + `| Telmora | 812.0 |` ->
  (Telmora, revenue, "812.0 USD million", 2019).
- Any other table: head = the row's first cell, relation = the column header, no date.

Empty cells and dashes ("-", "—", "n/a") state nothing and give no triple.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from qwenlong.core.records import Document
from qwenlong.synth.extract.normalise import (
    is_literal,
    normalise_relation,
    normalise_value,
    subject_of,
)
from qwenlong.synth.interfaces import Triple

GENERIC_ROW_HEADERS = frozenset(
    {"", "metric", "item", "indicator", "measure", "figure", "line_item"}
)
"""First header cells that mean "rows are metrics of the document subject"."""

EMPTY_CELLS = frozenset({"", "-", "—", "–", "n/a", "na", "..."})

_SEPARATOR = re.compile(r"^:?-{3,}:?$")
_UNIT = re.compile(r"^(?P<label>.*?)\s*\((?P<unit>[^()]+)\)$")
_YEAR = re.compile(r"^(?:FY\s?)?(\d{4})$")


@dataclass(frozen=True)
class Table:
    """A table as cell strings; `evidence[i]` is the source text of `rows[i]`."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    evidence: tuple[str, ...]
    caption: str = ""


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_markdown_tables(text: str) -> list[Table]:
    """Pipe tables with a `|---|` separator under the header row."""
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
        block = lines[start:i]
        if len(block) < 3 or not all(_SEPARATOR.match(c) for c in _cells(block[1]) if c):
            continue
        caption = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
        rows = tuple(tuple(_cells(ln)) for ln in block[2:])
        tables.append(
            Table(tuple(_cells(block[0])), rows, tuple(ln.strip() for ln in block[2:]), caption)
        )
    return tables


class _HTMLTables(HTMLParser):
    """Collects `<table>`s (nested ones separately) as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[dict] = []
        self.tables: list[Table] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.stack.append({"rows": [], "row": None, "cell": None, "caption": None})
        elif not self.stack:
            return
        elif tag == "tr":
            self.stack[-1]["row"] = []
        elif tag in ("td", "th"):
            self.stack[-1]["cell"] = []
        elif tag == "caption":
            self.stack[-1]["caption"] = []
        elif tag == "br":
            self.handle_data(" ")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            return
        top = self.stack[-1]
        if tag in ("td", "th") and top["cell"] is not None and top["row"] is not None:
            top["row"].append(" ".join("".join(top["cell"]).split()))
            top["cell"] = None
        elif tag == "tr" and top["row"] is not None:
            if top["row"]:
                top["rows"].append(top["row"])
            top["row"] = None
        elif tag == "caption" and top["caption"] is not None:
            top["caption"] = " ".join("".join(top["caption"]).split())
        elif tag == "table":
            self.stack.pop()
            rows = top["rows"]
            caption = top["caption"] if isinstance(top["caption"], str) else ""
            if len(rows) >= 2:
                body = tuple(tuple(r) for r in rows[1:])
                self.tables.append(
                    Table(tuple(rows[0]), body, tuple(" | ".join(r) for r in body), caption)
                )

    def handle_data(self, data: str) -> None:
        if not self.stack:
            return
        top = self.stack[-1]
        for key in ("cell", "caption"):
            if isinstance(top[key], list):
                top[key].append(data)
                return


def parse_html_tables(text: str) -> list[Table]:
    parser = _HTMLTables()
    parser.feed(text)
    parser.close()
    return parser.tables


def parse_tables(text: str) -> list[Table]:
    """Every markdown and HTML table in `text` (markdown first, then HTML, each in order)."""
    html = parse_html_tables(text) if "<table" in text.lower() else []
    return parse_markdown_tables(text) + html


def _split_unit(label: str) -> tuple[str, str]:
    match = _UNIT.match(label.strip())
    return (match["label"], match["unit"].strip()) if match else (label.strip(), "")


def _tail(cell: str, unit: str) -> str:
    value = normalise_value(cell)
    return f"{value} {unit}" if unit else value


def _triple(
    head: str, relation: str, tail: str, doc: Document, date: str | None, evidence: str
) -> Triple:
    return Triple(
        head, relation, tail, doc.id, date, evidence, "", "value" if is_literal(tail) else ""
    )


def _shape(table: Table, subject: str) -> tuple[str, str, list[str | None]]:
    """(shape, first-header label, year per column), shape one of "metric_rows", "entity_rows",
    "attributes", or "headless" for a metric table in a document with no subject to head it."""
    first, _ = _split_unit(table.header[0]) if table.header else ("", "")
    matches = [_YEAR.match(h.strip()) for h in table.header[1:]]
    if not matches or not all(matches):
        return "attributes", first, [None] * len(matches)
    years: list[str | None] = [m[1] for m in matches if m]
    if normalise_relation(first) not in GENERIC_ROW_HEADERS:
        return "entity_rows", first, years
    return ("metric_rows" if subject else "headless"), first, years


def table_triples(doc: Document) -> list[Triple]:
    """Triples from every table of `doc`, by the shapes in the module docstring."""
    triples = []
    subject = subject_of(doc)
    for table in parse_tables(doc.text):
        shape, first, years = _shape(table, subject)
        if shape == "headless":
            continue
        header_unit = _split_unit(table.header[0])[1] if table.header else ""
        for row, evidence in zip(table.rows, table.evidence, strict=True):
            label, row_unit = _split_unit(row[0]) if row else ("", "")
            if not label:
                continue
            for j, cell in enumerate(row[1 : len(table.header)], start=1):
                if cell.strip().lower() in EMPTY_CELLS:
                    continue
                if shape == "metric_rows":
                    head, relation, unit = (
                        subject,
                        normalise_relation(label),
                        row_unit or header_unit,
                    )
                elif shape == "entity_rows":
                    head, relation, unit = label, normalise_relation(first), row_unit or header_unit
                else:
                    column, unit = _split_unit(table.header[j])
                    head, relation = label, normalise_relation(column)
                tail = _tail(cell, unit)
                triples.append(_triple(head, relation, tail, doc, years[j - 1], evidence))
    return triples
