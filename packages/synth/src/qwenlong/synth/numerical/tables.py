"""Statistical tables read out of documents: markdown pipe tables and HTML `<table>`s.

CorpusQA keeps "documents with rich statistical tables" (RECIPE.md section 1, generator B); this
module finds the tables, splits them into a header and body rows of raw cell strings, and
records the caption and section heading a reader would use to know what a table is about. It
interprets nothing beyond that: which column holds years, which entity a table describes and
what unit a figure is in are decided in `align`.

Numbers are parsed with `decimal.Decimal` so that rescaling thousands to millions later is exact
(1234.5 thousand becomes 1.2345 million, not 1.2345000000000002).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser

from qwenlong.core.records import Document

SCALE_WORDS: dict[str, Decimal] = {
    "thousand": Decimal(1000),
    "thousands": Decimal(1000),
    "k": Decimal(1000),
    "'000": Decimal(1000),
    "000s": Decimal(1000),
    "million": Decimal(10**6),
    "millions": Decimal(10**6),
    "mn": Decimal(10**6),
    "mio": Decimal(10**6),
    "m": Decimal(10**6),
    "billion": Decimal(10**9),
    "billions": Decimal(10**9),
    "bn": Decimal(10**9),
    "b": Decimal(10**9),
}
"""Multipliers a header, caption or cell may name ("USD million", "€ thousands", "1.2bn")."""

CURRENCY_SYMBOLS: dict[str, str] = {
    "us$": "USD",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
}
"""Currency signs -> ISO codes. "$" is read as USD and "¥" as JPY: a corpus in other dollars
or in yuan must name the code ("CAD", "CNY"), which `align` reads directly."""

_MINUS_SIGNS = "-−–"  # hyphen-minus, U+2212 minus, en dash (typeset negatives)
_FOOTNOTE_MARKS = "*†‡¹²³⁴⁵⁶⁷⁸⁹⁰"
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]+")
_PLAIN = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_CELL_SCALE = re.compile(r"^(.*?\d)\s*(thousand|million|billion|bn|mn|k|m|b)$", re.IGNORECASE)
_MISSING = {"", "-", "—", "–", "n/a", "na", "n.a.", "nm", "n.m.", "..."}
_YEAR = re.compile(r"^(?:FY\s?)?((?:19|20)\d{2})[*†]?$", re.IGNORECASE)


@dataclass(frozen=True)
class NumericCell:
    """A parsed table cell: the number as printed, its own scale word, and whether it is a percent."""

    value: Decimal
    """The printed number with its sign, before any scale ("1.2bn" gives 1.2)."""
    scale: Decimal | None = None
    """Multiplier written in the cell itself ("bn" -> 1e9), None when the cell has none."""
    percent: bool = False
    currency: str | None = None
    """ISO code of a currency sign or code written in the cell, if any."""


def parse_number(text: str) -> NumericCell | None:
    """Read one cell as a number, or None when it is text or a missing-value mark.

    Accepted forms: "1234", "1,234.5" (comma thousands separators, well formed only: "1,2"
    is text), "1 234" (space or thin-space separators), "-5", "−5" and "(5)" (accounting
    negative), "12.5%", "$1,234", "USD 1,234", "€ 3.1", "1.2bn", and trailing footnote marks
    ("1,234*"). Dashes, "n/a" and empty cells are missing values, not zeros.
    """
    s = _SPACES.sub(" ", text).strip().rstrip(_FOOTNOTE_MARKS).strip()
    if s.lower() in _MISSING:
        return None
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1].strip()
    if s and s[0] in _MINUS_SIGNS:
        negative, s = True, s[1:].strip()
    percent = s.endswith("%")
    if percent:
        s = s[:-1].strip()
    currency, s = _strip_currency(s)
    if s and s[0] in _MINUS_SIGNS and not negative:
        negative, s = True, s[1:].strip()
    scale = None
    match = _CELL_SCALE.match(s)
    if match and not percent:
        s, scale = match.group(1).strip(), SCALE_WORDS[match.group(2).lower()]
    digits = _group_digits(s)
    if digits is None:
        return None
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return None
    return NumericCell(-value if negative else value, scale, percent, currency)


def _strip_currency(s: str) -> tuple[str | None, str]:
    """Remove one leading or trailing currency sign or three-letter code."""
    lowered = s.lower()
    for sign, code in CURRENCY_SYMBOLS.items():
        if lowered.startswith(sign):
            return code, s[len(sign) :].strip()
        if lowered.endswith(sign):
            return code, s[: -len(sign)].strip()
    match = re.match(r"^([A-Z]{3})\s+(.*)$", s) or re.match(r"^(.*?)\s+([A-Z]{3})$", s)
    if match:
        code_first = match.group(1).isalpha() and match.group(1).isupper()
        code, rest = (match.group(1), match.group(2)) if code_first else match.group(2, 1)
        return code, rest.strip()
    return None, s


def _group_digits(s: str) -> str | None:
    """The digits of a plain or well-grouped number with separators removed, else None."""
    if _PLAIN.fullmatch(s):
        return s
    if _GROUPED.fullmatch(s):
        return s.replace(",", "")
    spaced = re.fullmatch(r"\d{1,3}(?: \d{3})+(?:\.\d+)?", s)
    return s.replace(" ", "") if spaced else None


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

    @property
    def numeric_cells(self) -> int:
        """Body cells that parse as numbers: how "statistical" the table is."""
        return sum(parse_number(cell) is not None for row in self.rows for cell in row)


def _pad(cells: list[str], width: int) -> tuple[str, ...]:
    return tuple((cells + [""] * width)[:width])


# --- markdown -------------------------------------------------------------------------------

_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_CAPTION_MAX_CHARS = 160
"""A line longer than this above a table is prose, not a caption. Our choice."""


def split_pipe_row(line: str) -> list[str]:
    """Cells of a markdown pipe row; `\\|` is a literal pipe inside a cell."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells = re.split(r"(?<!\\)\|", body)
    return [cell.replace("\\|", "|").strip() for cell in cells]


def _clean_caption(line: str) -> str:
    return line.strip().strip("*_").strip()


def extract_markdown_tables(doc_id: str, text: str) -> list[tuple[int, ParsedTable]]:
    """Pipe tables of `text` with the line each starts on; index is filled in by the caller.

    A table is a header row, a separator row of dashes, and the following rows that contain a
    pipe. The caption is the nearest non-blank line above the header when it is short and not
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
        header = split_pipe_row(line)
        body: list[tuple[str, ...]] = []
        j = i + 2
        while j < len(lines) and "|" in lines[j] and lines[j].strip():
            body.append(_pad(split_pipe_row(lines[j]), len(header)))
            j += 1
        caption = _caption_above(lines, i)
        table = ParsedTable(doc_id, 0, tuple(header), tuple(body), caption, heading, "markdown")
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
    Nested tables are read as text of the enclosing cell. A row is a header row when it sits in
    `<thead>` or all its cells are `<th>`; several header rows are joined per column (a spanning
    "USD million" above "2021 | 2022" yields "USD million 2021"). `colspan` repeats a cell.
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


def _looks_like_header(row: list[str]) -> bool:
    """A first row without th cells is a header unless it holds a number that is not a year."""
    return all(parse_number(c) is None or parse_year(c) is not None for c in row)


def _merge_header_rows(rows: list[list[str]]) -> list[str]:
    width = max(len(r) for r in rows)
    merged = []
    for col in range(width):
        parts: list[str] = []
        for row in rows:
            cell = row[col] if col < len(row) else ""
            if cell and (not parts or parts[-1] != cell):
                parts.append(cell)
        merged.append(" ".join(parts))
    return merged


def extract_html_tables(doc_id: str, text: str) -> list[tuple[int, ParsedTable]]:
    """HTML tables of `text` with the line each starts on (index filled in by the caller)."""
    if "<table" not in text.lower():
        return []
    collector = _TableCollector()
    collector.feed(text)
    collector.close()
    found = []
    for line, caption, heading, header_rows, body in collector.tables:
        if not header_rows and body and _looks_like_header(body[0]):
            header_rows, body = [body[0]], body[1:]
        if not header_rows:
            continue
        header = _merge_header_rows(header_rows)
        rows = tuple(_pad(row, len(header)) for row in body)
        found.append((line, ParsedTable(doc_id, 0, tuple(header), rows, caption, heading, "html")))
    return found


def extract_tables(doc: Document) -> list[ParsedTable]:
    """Every markdown and HTML table of `doc`, in reading order, indexed from 0."""
    located = extract_markdown_tables(doc.id, doc.text) + extract_html_tables(doc.id, doc.text)
    located.sort(key=lambda item: item[0])
    return [
        ParsedTable(t.doc_id, i, t.header, t.rows, t.caption, t.heading, t.kind)
        for i, (_, t) in enumerate(located)
    ]


def is_statistical(tables: list[ParsedTable], min_numeric_cells: int) -> bool:
    """CorpusQA's document filter: the document's tables hold at least `min_numeric_cells` numbers."""
    return sum(t.numeric_cells for t in tables) >= min_numeric_cells
