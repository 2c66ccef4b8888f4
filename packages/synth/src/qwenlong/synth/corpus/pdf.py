"""PDF files as documents: text in reading order, ruled tables as grids, page offsets kept.

Library: pdfplumber (MIT), on pdfminer.six (MIT). pdfminer's layout analysis groups characters
into lines and lines into text boxes and orders the boxes for reading (`boxes_flow`), so a
two-column page reads left column then right column, where a plain top-to-bottom sort of lines
(pdfplumber's own `extract_text`, pypdf) interleaves the columns line by line. pdfplumber adds
table finding from ruling lines, with each cell's box, which is what a merged cell needs to be
spread over the columns it covers. PyMuPDF reads faster but is AGPL; pypdf and pypdfium2 find
no tables; ML layout models (docling) are a heavy download for what ruled tables need.

Each page is a sequence of blocks: pdfminer's text boxes (a box's lines joined into one line)
and tables, each rendered by `table_grid.render_table` and placed after the last text box
above it that it overlaps horizontally, so a table stays between the sentences around it in
its own column. Lines inside a table are dropped from the text flow. A "table" of one row or
one column is a ruled box around text, not a grid, and stays text. Text inside form XObjects
(`all_texts`) counts too: some producers put the whole page there.

Only ruled tables are found: a table set with whitespace alone reads as lines of text.
Unicode is NFKC-normalised, so ligatures ("ﬁ") become letters a question can quote.

`meta["page_starts"]` is a JSON list: the character offset in `text` where each page begins
(see `page_of`). A PDF without a single character on any page (a scan without OCR) gives no
document: it is reported and skipped with the reason `NO_TEXT_LAYER`. Pages without text in a
PDF that has some are listed in `meta["pages_without_text"]`. An encrypted or corrupt file is
a `DatasetError` naming it, like any unreadable corpus file.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from qwenlong.core.errors import DatasetError, first_line
from qwenlong.core.records import Document
from qwenlong.synth.corpus.ingest import RawDoc
from qwenlong.synth.corpus.table_grid import render_table

PAGE_STARTS = "page_starts"
"""`Document.meta` key: JSON list of the character offsets where pages 1, 2, ... begin."""
PAGES_WITHOUT_TEXT = "pages_without_text"
"""`Document.meta` key: comma-separated numbers of pages without text (blank or scanned)."""
NO_TEXT_LAYER = "no text layer"
"""Skip reason of a PDF with no character on any page."""

LAPARAMS: dict[str, Any] = {"all_texts": True}
"""pdfminer layout parameters: its defaults (boxes_flow 0.5, line_margin 0.5), plus text inside
form XObjects."""
EDGE_TOLERANCE = 1.0
"""Cell edges closer than this (points) are one grid line: ruling drawn twice, rounding."""


@dataclass(frozen=True)
class _Block:
    """A text box or a table, where it sits on the page (pdfplumber coordinates)."""

    text: str
    top: float
    bottom: float
    x0: float
    x1: float

    def overlaps(self, other: _Block) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1


def page_of(doc: Document, offset: int) -> int | None:
    """The 1-based page holding character `offset` of `doc.text`; None without page offsets."""
    raw = doc.meta.get(PAGE_STARTS)
    if raw is None:
        return None
    return max(bisect.bisect_right(json.loads(raw), offset), 1)


def read_pdf(path: Path, text_field: str) -> Iterator[RawDoc]:
    """The `READERS` entry for .pdf: one document per file (`text_field` is for row formats)."""
    text, title, meta = pdf_document(path)
    skip = "" if text else NO_TEXT_LAYER
    yield RawDoc(text, None, str(path), title=title or path.stem, meta=meta, skip=skip)


def read_pdf_pages(path: Path) -> tuple[list[str], str]:
    """(text of each page, title from the file's metadata or "") of one PDF."""
    import pdfplumber
    from pdfminer.pdfdocument import PDFPasswordIncorrect
    from pdfplumber.utils.exceptions import PdfminerException

    try:
        with pdfplumber.open(path, laparams=LAPARAMS, unicode_norm="NFKC") as pdf:
            title = str(pdf.metadata.get("Title") or "").strip()
            pages = []
            for page in pdf.pages:
                pages.append(_page_text(page))
                page.close()  # drop its cached objects: memory stays one page deep
    except PdfminerException as err:
        if err.args and isinstance(err.args[0], PDFPasswordIncorrect):
            raise DatasetError(f"{path}: encrypted PDF (needs a password)") from None
        raise DatasetError(f"{path}: unreadable PDF ({first_line(err)})") from None
    except Exception as err:  # pdfminer raises many internal types on malformed files
        raise DatasetError(
            f"{path}: unreadable PDF ({type(err).__name__}: {first_line(err)})"
        ) from None
    return pages, "" if title.lower() == "untitled" else title


def pdf_document(path: Path) -> tuple[str, str, dict[str, str]]:
    """(text, title, meta) of one PDF; text is "" when it has no text layer."""
    pages, title = read_pdf_pages(path)
    starts, parts, offset = [], [], 0
    for page in pages:
        starts.append(offset)
        if page:
            parts.append(page)
            offset += len(page) + 1
    if not parts:
        return "", title, {}
    meta = {PAGE_STARTS: json.dumps(starts)}
    empty = [str(i) for i, page in enumerate(pages, start=1) if not page]
    if empty:
        meta[PAGES_WITHOUT_TEXT] = ",".join(empty)
    return "\n".join(parts), title, meta


def _page_text(page: Any) -> str:
    """One page's blocks in reading order, one per line (tables: several lines)."""
    found = page.find_tables() if _has_rulings(page.layout) else []
    tables = [t for t in map(_table_block, found) if t is not None]
    flow = [b for b in _text_blocks(page, page.layout, tables) if b.text]
    for table in tables:
        above = [i for i, b in enumerate(flow) if b.bottom <= table.top + 1 and b.overlaps(table)]
        below = [i for i, b in enumerate(flow) if b.top >= table.bottom - 1 and b.overlaps(table)]
        at = above[-1] + 1 if above else below[0] if below else len(flow)
        flow.insert(at, table)
    return "\n".join(b.text for b in flow)


def _has_rulings(container: Any) -> bool:
    """Whether any line, rectangle or curve is drawn: without one there is no ruled table.

    Checked first because table finding turns every character of the page into a dict
    (pdfplumber's `objects`), which costs more than reading the page; most pages have no rule.
    """
    from pdfminer.layout import LTCurve, LTFigure

    return any(
        isinstance(item, LTCurve) or (isinstance(item, LTFigure) and _has_rulings(item))
        for item in container
    )


def _text_blocks(page: Any, container: Any, tables: Sequence[_Block]) -> Iterator[_Block]:
    """The text boxes of `container` in pdfminer's reading order, lines inside tables dropped.

    Figures (form XObjects) come after the page's own boxes, as pdfminer lists them.
    """
    from pdfminer.layout import LTFigure, LTTextBox

    for item in container:
        if isinstance(item, LTFigure):
            yield from _text_blocks(page, item, tables)
        elif isinstance(item, LTTextBox):
            lines = [page.process_object(line) for line in item]
            lines = [ln for ln in lines if not any(_inside(ln, t) for t in tables)]
            if lines:
                yield _Block(
                    _join_lines([ln["text"] for ln in lines]),
                    min(ln["top"] for ln in lines), max(ln["bottom"] for ln in lines),
                    min(ln["x0"] for ln in lines), max(ln["x1"] for ln in lines),
                )  # fmt: skip


def _inside(obj: dict[str, Any], table: _Block) -> bool:
    x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
    return table.x0 <= x <= table.x1 and table.top <= y <= table.bottom


def _join_lines(lines: Sequence[str]) -> str:
    """A box's lines as one line; a line ending in "-" joins the next without a space."""
    out = ""
    for line in (" ".join(ln.split()) for ln in lines):
        if not line:
            continue
        out = line if not out else out + line if out.endswith("-") else f"{out} {line}"
    return out


def _table_block(table: Any) -> _Block | None:
    """A found table as a rendered block, or None when it is one row or one column."""
    grid = span_grid(table)
    if len(grid) < 2 or len(grid[0]) < 2:
        return None
    x0, top, x1, bottom = table.bbox
    return _Block(render_table(grid), top, bottom, x0, x1)


def span_grid(table: Any) -> list[list[str | None]]:
    """A pdfplumber table's cells on the grid of all its cell edges, merged cells repeated.

    pdfplumber gives a merged cell once, at its top-left position, and None where it extends;
    placing each cell's box on the grid of every distinct edge fills every position it covers.
    """
    texts: dict[tuple[float, ...], str] = {}
    for row, values in zip(table.rows, table.extract(), strict=True):
        for box, value in zip(row.cells, values, strict=True):
            if box is not None:
                texts[tuple(box)] = value or ""
    xs = _edges([v for box in texts for v in (box[0], box[2])])
    ys = _edges([v for box in texts for v in (box[1], box[3])])
    grid: list[list[str | None]] = []
    for top, bottom in pairwise(ys):
        y = (top + bottom) / 2
        row: list[str | None] = []
        for left, right in pairwise(xs):
            x = (left + right) / 2
            box = next((b for b in texts if b[0] <= x <= b[2] and b[1] <= y <= b[3]), None)
            row.append(None if box is None else texts[box])
        grid.append(row)
    return grid


def _edges(values: Sequence[float]) -> list[float]:
    """Sorted distinct values, those within EDGE_TOLERANCE of the previous kept one merged."""
    edges: list[float] = []
    for value in sorted(values):
        if not edges or value - edges[-1] > EDGE_TOLERANCE:
            edges.append(value)
    return edges
