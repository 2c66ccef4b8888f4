"""Tables as every corpus reader writes them into document text: a span-expanded grid.

One interface for html, pdf and docx readers alike, so the extractors downstream read one shape:
a caption line (when the table has one), then a markdown pipe table whose first row is simply
the first grid row. The first row is not promised to be "the header": real reports stack a
caption row, a period row and an "(in millions)" row above the figures, and the table
extractors decide which rows are headers (`extract.headers`).

Spans are expanded by repeating the spanning cell's text in every position it covers, so a
"Year ended December 31" spanning three year columns labels each of them, and a row label
spanning two rows labels both.

`GridBuilder` is the HTML side: it is fed the tag events of one `<table>` (by `html_tables`
here, or by the visible-text parser of `corpus.ingest`, which renders each table in place).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

MAX_SPAN = 1000
"""A colspan or rowspan above this is treated as this: a malformed page cannot make a grid of
millions of cells. Our choice."""


FOOTNOTE_MARK = re.compile(r"\(?(?:(?:[Nn]otes?\s*)?\d{1,2}|[a-z]|[ivx]{1,4}|[*†‡§]{1,3})\)?")
"""A superscript that marks a footnote, not a value: dropped from cells ("Total assets¹",
"Millions of U.S. dollars<sup>(Note 1)</sup>")."""


def clean_cell(text: str | None) -> str:
    """One cell as a pipe table holds it: whitespace and newlines collapsed, "|" escaped."""
    return " ".join((text or "").split()).replace("|", "\\|")


def render_table(rows: list[list[str | None]], caption: str = "") -> str:
    """The markdown block of a span-expanded grid: caption line, first row, separator, the rest.

    Rows are padded to the widest row with empty cells; a grid with no cells renders as its
    caption alone (possibly "").
    """
    width = max((len(row) for row in rows), default=0)
    caption = clean_cell(caption)
    if width == 0:
        return caption
    lines = [caption] if caption else []
    for i, row in enumerate(rows):
        cells = [clean_cell(cell) for cell in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + " --- |" * width)
    return "\n".join(lines)


def split_pipe_row(line: str) -> list[str]:
    """Cells of a markdown pipe row, the inverse of `render_table`: `\\|` is a literal pipe."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells = re.split(r"(?<!\\)\|", body)
    return [cell.replace("\\|", "|").strip() for cell in cells]


def _span(value: str | None) -> int:
    """A colspan/rowspan attribute as a count: missing, 0, negative or junk mean 1."""
    try:
        n = int((value or "1").strip())
    except ValueError:
        return 1
    return min(max(n, 1), MAX_SPAN)


@dataclass
class _Cell:
    text: list[str] = field(default_factory=list)
    colspan: int = 1
    rowspan: int = 1


@dataclass
class GridBuilder:
    """Collects one `<table>`'s cells from parser events and expands its spans into a grid.

    Nested tables are read as text of the enclosing cell (their words kept apart by spaces):
    a layout table inside a cell is prose to the outer table, not a second grid.
    """

    rows: list[list[_Cell]] = field(default_factory=list)
    caption: list[str] | None = None
    depth: int = 1
    """Open `<table>` tags, this one included; 0 once the table has closed."""
    _cell: _Cell | None = None
    _in_caption: bool = False
    _sup: list[str] | None = None
    """Text of an open `<sup>`: dropped when it is a footnote mark ("(1)", "a", "*")."""

    def starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.depth += 1
        if self.depth > 1:
            self.data(" ")
            return
        if tag == "tr":
            self._close_cell()
            self.rows.append([])
        elif tag in ("td", "th"):
            self._close_cell()
            if not self.rows:
                self.rows.append([])
            values = dict(attrs)
            self._cell = _Cell([], _span(values.get("colspan")), _span(values.get("rowspan")))
        elif tag == "caption":
            self._close_cell()
            self._in_caption, self.caption = True, self.caption or []
        elif tag == "sup":
            self._sup = []
        elif tag in ("br", "p", "div", "li"):
            self.data(" ")

    def endtag(self, tag: str) -> None:
        """Feed a closing tag; `depth` drops to 0 when the table itself closes."""
        if tag == "table":
            self.depth -= 1
            if self.depth == 0:
                self._close_cell()
            else:
                self.data(" ")
            return
        if self.depth > 1:
            return
        if tag in ("td", "th", "tr"):
            self._close_cell()
        elif tag == "caption":
            self._in_caption = False
        elif tag == "sup" and self._sup is not None:
            text, self._sup = "".join(self._sup), None
            if not FOOTNOTE_MARK.fullmatch(text.strip()):
                self.data(text)

    def data(self, text: str) -> None:
        if self._sup is not None:
            self._sup.append(text)
        elif self._in_caption and self.caption is not None:
            self.caption.append(text)
        elif self._cell is not None:
            self._cell.text.append(text)

    def _close_cell(self) -> None:
        if self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None

    def caption_text(self) -> str:
        return " ".join("".join(self.caption or []).split())

    def grid(self) -> list[list[str]]:
        """Rows of cell texts with colspan and rowspan expanded (every row the same width).

        A rowspan reaching past the last row is cut there; rows that are empty after
        expansion (a bare `<tr></tr>`) are dropped. A cell still open (the page ended inside
        the table) is closed first.
        """
        self._close_cell()
        placed: dict[tuple[int, int], str] = {}
        for r, cells in enumerate(self.rows):
            col = 0
            for cell in cells:
                while (r, col) in placed:
                    col += 1
                text = " ".join("".join(cell.text).split())
                for dr in range(min(cell.rowspan, len(self.rows) - r)):
                    for dc in range(cell.colspan):
                        placed[(r + dr, col + dc)] = text
                col += cell.colspan
        width = max((c for _, c in placed), default=-1) + 1
        grid = [[placed.get((r, c), "") for c in range(width)] for r in range(len(self.rows))]
        return [row for r, row in enumerate(grid) if any((r, c) in placed for c in range(width))]


@dataclass(frozen=True)
class HtmlTable:
    """One top-level `<table>`: its caption and its span-expanded grid."""

    caption: str
    rows: list[list[str]]

    def render(self) -> str:
        return render_table(list(self.rows), self.caption)


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.current: GridBuilder | None = None
        self.tables: list[HtmlTable] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.current is not None:
            self.current.starttag(tag, attrs)
        elif tag == "table":
            self.current = GridBuilder()

    def handle_endtag(self, tag: str) -> None:
        if self.current is None:
            return
        self.current.endtag(tag)
        if self.current.depth == 0:
            self.tables.append(HtmlTable(self.current.caption_text(), self.current.grid()))
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.current.data(data)


def html_tables(markup: str) -> list[HtmlTable]:
    """Every top-level `<table>` of an HTML page, in order (an unclosed last table included)."""
    parser = _TableParser()
    parser.feed(markup)
    parser.close()
    if parser.current is not None:
        parser.tables.append(HtmlTable(parser.current.caption_text(), parser.current.grid()))
    return parser.tables
