"""Statistical tables read out of documents: markdown pipe tables and HTML `<table>`s.

CorpusQA keeps "documents with rich statistical tables" (RECIPE.md section 1, generator B); this
module finds the tables, splits them into a header (one or several rows, `extract.headers`)
and body rows of raw cell strings, and records the caption and section heading a reader would
use to know what a table is about. Which column holds years, which entity a table describes and
what unit a figure is in are decided in `align`.

Numbers are parsed with `decimal.Decimal` so that rescaling thousands to millions later is exact
(1234.5 thousand becomes 1.2345 million, not 1.2345000000000002).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from qwenlong.core.records import Document
from qwenlong.synth.corpus.table_grid import split_pipe_row
from qwenlong.synth.extract.headers import read_grid
from qwenlong.synth.extract.values import (  # noqa: F401 (re-exported: one way to read numbers)
    CURRENCY_SYMBOLS,
    SCALE_WORDS,
    NumericCell,
    parse_number,
)

_YEAR = re.compile(r"^(?:FY\s?)?((?:19|20)\d{2})[*†]?$", re.IGNORECASE)


def parse_year(text: str) -> int | None:
    """A fiscal-year header or cell ("2021", "FY2021", "FY 2021", "2021*"), else None."""
    match = _YEAR.match(text.strip())
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class ParsedTable:
    """One table of one document, as raw strings, with what a reader sees around it."""

    doc_id: str
    index: int
    """Position among the document's tables (0-based, in reading order)."""
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    """Body rows, each padded or cut to the header's width."""
    caption: str = ""
    """The `<caption>`, or the short line just above a markdown table ("Table 2: Key figures")."""
    heading: str = ""
    """The nearest section heading above the table (markdown `#` line or HTML `<h1>`-`<h6>`)."""
    kind: str = "markdown"
    """"markdown" or "html"."""
    grid: tuple[tuple[str, ...], ...] = ()
    """Every row as printed, header rows included: what `extract.headers` reads report tables
    from (several header rows, unit rows, "$" cells). Empty: `header` + `rows`."""

    @property
    def numeric_cells(self) -> int:
        """Body cells that parse as numbers: how "statistical" the table is."""
        return sum(parse_number(cell) is not None for row in self.rows for cell in row)


def from_grid(
    doc_id: str, grid: list[list[str]], caption: str, heading: str, kind: str
) -> ParsedTable | None:
    """A table whose header rows `extract.headers` finds: `header` holds each column's header
    cells joined top down, `rows` the body below them ("$" and ")" cells joined to figures).
    None when no row is a header (the first row already holds figures)."""
    layout = read_grid(list(grid), caption)
    if layout.header_rows == 0:
        return None
    header = (layout.label_header, *(c.header for c in layout.columns))
    rows = tuple(tuple(row) for row in layout.body)
    printed = tuple(tuple(row) for row in grid)
    return ParsedTable(doc_id, 0, header, rows, caption, heading, kind, printed)


# --- markdown -------------------------------------------------------------------------------

_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_CAPTION_MAX_CHARS = 160
"""A line longer than this above a table is prose, not a caption. Our choice."""


def _clean_caption(line: str) -> str:
    return line.strip().strip("*_").strip()


def extract_markdown_tables(doc_id: str, text: str) -> list[tuple[int, ParsedTable]]:
    """Pipe tables of `text` with the line each starts on; index is filled in by the caller.

    A table is a first row, a separator row of dashes, and the following rows that contain a
    pipe; the header rows among them (one or several) are found by `extract.headers`. The caption is the nearest non-blank line above the header when it is short and not
    a heading; the heading is the last `#` line above the table.
    """
    lines = text.splitlines()
    found: list[tuple[int, ParsedTable]] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        heading_match = _HEADING.match(line)
        if heading_match:
            heading = heading_match.group(1)
        next_is_separator = i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1])
        if "|" not in line or not next_is_separator:
            i += 1
            continue
        grid = [split_pipe_row(line)]
        j = i + 2
        while j < len(lines) and "|" in lines[j] and lines[j].strip():
            grid.append(split_pipe_row(lines[j]))
            j += 1
        caption = _caption_above(lines, i)
        table = from_grid(doc_id, grid, caption, heading, "markdown")
        if table is not None:
            found.append((i + 1, table))
        i = j
    return found


def _caption_above(lines: list[str], header_line: int) -> str:
    for k in range(header_line - 1, max(header_line - 3, -1), -1):
        candidate = lines[k].strip()
        if not candidate:
            continue
        if _HEADING.match(candidate) or "|" in candidate or len(candidate) > _CAPTION_MAX_CHARS:
            return ""
        return _clean_caption(candidate)
    return ""


# --- HTML -----------------------------------------------------------------------------------


class _TableCollector(HTMLParser):
    """Collects top-level `<table>`s with their caption, header rows and the heading above.

    The caption is the table's `<caption>`, else the last short line of text before it
    ("Table 1: Key figures").
    Nested tables are read as text of the enclosing cell. Rows in `<thead>` or made of `<th>`
    cells come first; which rows are the header is then decided from the text, as for
    markdown (`extract.headers`). `colspan` repeats a cell.
    Markdown `#` lines in text outside tables count as headings too, so HTML tables embedded in
    a markdown document get the right section heading.
    """

    _HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[int, str, str, list[list[str]], list[list[str]]]] = []
        self.heading = ""
        self._depth = 0
        self._last_line = ""
        """The last non-blank line of text outside tables: a caption when a table follows."""
        self._in_heading = False
        self._heading_text: list[str] = []
        self._start_line = 0
        self._caption: list[str] | None = None
        self._caption_text = ""
        self._in_thead = False
        self._header: list[list[str]] = []
        self._body: list[list[str]] = []
        self._row: list[str] | None = None
        self._row_all_th = True
        self._cell: list[str] | None = None
        self._colspan = 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._depth >= 1 and tag in ("table", "tr", "td", "th") and self._cell is not None:
            self._cell.append(" ")  # nested table: keep its words apart in the outer cell
        if tag == "table":
            self._depth += 1
            if self._depth == 1:
                self._start_line = self.getpos()[0]
                self._header, self._body = [], []
                short = len(self._last_line) <= _CAPTION_MAX_CHARS
                self._caption_text = _clean_caption(self._last_line) if short else ""
            return
        if self._depth == 0:
            if tag in self._HEADINGS:
                self._in_heading, self._heading_text = True, []
            return
        if self._depth > 1:
            return
        if tag == "caption":
            self._caption = []
        elif tag == "thead":
            self._in_thead = True
        elif tag in ("tbody", "tfoot"):
            self._in_thead = False
        elif tag == "tr":
            self._finish_row()
            self._row, self._row_all_th = [], True
        elif tag in ("td", "th"):
            self._finish_cell()
            if self._row is None:
                self._row, self._row_all_th = [], True
            self._cell = []
            self._row_all_th = self._row_all_th and tag == "th"
            span = dict(attrs).get("colspan") or "1"
            self._colspan = int(span) if span.isdigit() and int(span) > 0 else 1
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            if self._depth == 1:
                self._finish_row()
                self._in_thead = False
                self.tables.append(
                    (self._start_line, self._caption_text, self.heading, self._header, self._body)
                )
            self._depth = max(self._depth - 1, 0)
            self._last_line = ""
            return
        if self._depth == 0:
            if tag in self._HEADINGS and self._in_heading:
                self._in_heading = False
                self.heading = " ".join("".join(self._heading_text).split())
                self._last_line = ""
            return
        if self._depth > 1:
            return
        if tag == "caption" and self._caption is not None:
            self._caption_text = " ".join("".join(self._caption).split())
            self._caption = None
        elif tag == "thead":
            self._in_thead = False
        elif tag in ("td", "th"):
            self._finish_cell()
        elif tag == "tr":
            self._finish_row()

    def _finish_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            text = " ".join("".join(self._cell).split())
            self._row.extend([text] * self._colspan)
        self._cell = None

    def _finish_row(self) -> None:
        self._finish_cell()
        if self._row is None:
            return
        if self._row:
            is_header = self._in_thead or (self._row_all_th and not self._body)
            (self._header if is_header else self._body).append(self._row)
        self._row = None

    def handle_data(self, data: str) -> None:
        if self._depth == 0:
            if self._in_heading:
                self._heading_text.append(data)
                return
            for line in data.splitlines():
                match = _HEADING.match(line)
                if match:
                    self.heading, self._last_line = match.group(1), ""
                elif line.strip():
                    self._last_line = line.strip()
        elif self._caption is not None:
            self._caption.append(data)
        elif self._cell is not None:
            self._cell.append(data)


def extract_html_tables(doc_id: str, text: str) -> list[tuple[int, ParsedTable]]:
    """HTML tables of `text` with the line each starts on (index filled in by the caller)."""
    if "<table" not in text.lower():
        return []
    collector = _TableCollector()
    collector.feed(text)
    collector.close()
    found = []
    for line, caption, heading, header_rows, body in collector.tables:
        table = from_grid(doc_id, header_rows + body, caption, heading, "html")
        if table is not None:
            found.append((line, table))
    return found


def extract_tables(doc: Document) -> list[ParsedTable]:
    """Every markdown and HTML table of `doc`, in reading order, indexed from 0."""
    located = extract_markdown_tables(doc.id, doc.text) + extract_html_tables(doc.id, doc.text)
    located.sort(key=lambda item: item[0])
    return [
        ParsedTable(t.doc_id, i, t.header, t.rows, t.caption, t.heading, t.kind, t.grid)
        for i, (_, t) in enumerate(located)
    ]


def is_statistical(tables: list[ParsedTable], min_numeric_cells: int) -> bool:
    """CorpusQA's document filter: the document's tables hold at least `min_numeric_cells` numbers."""
    return sum(t.numeric_cells for t in tables) >= min_numeric_cells
