"""Word .docx files as documents: paragraphs and tables in body order, tables as grids.

Library: python-docx (MIT, on lxml). A .docx is XML that states its own reading order and its
tables' structure, so no layout analysis is needed: the body's paragraphs and tables are read
in order (`iter_inner_content`), one paragraph per line and each table rendered by
`table_grid.render_table`. python-docx's `row.cells` already repeats a merged cell (gridSpan
across, vMerge down) in every grid position it covers, which is the span-expanded grid the
renderer takes. A caption paragraph stays the line above its table, as a caption would be.

Not read: headers, footers, footnotes, comments, text boxes, and tables nested in a cell (a
cell's own paragraphs are its text). Pages are not kept: a .docx has no pages until a word
processor lays it out, so unlike a PDF there is no page to trace evidence to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from qwenlong.core.errors import DatasetError, first_line
from qwenlong.synth.corpus.ingest import RawDoc
from qwenlong.synth.corpus.table_grid import render_table

TITLE_STYLES = frozenset({"Title", "Heading 1"})
"""Paragraph styles whose first use titles a document that has no title property."""


def read_docx(path: Path, text_field: str) -> Iterator[RawDoc]:
    """The `READERS` entry for .docx: one document per file (`text_field` is for row formats)."""
    text, title = docx_text(path)
    yield RawDoc(text, None, str(path), title=title or path.stem)


def docx_text(path: Path) -> tuple[str, str]:
    """(body text with one line per paragraph and tables as markdown grids, title) of a file.

    The title is the file's title property, else its first Title or Heading 1 paragraph.
    """
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except Exception as err:  # a bad zip, a missing part, broken XML: all mean the same here
        raise DatasetError(
            f"{path}: unreadable DOCX ({type(err).__name__}: {first_line(err)})"
        ) from None
    blocks: list[str] = []
    headings: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            grid: list[list[str | None]] = [[c.text for c in row.cells] for row in item.rows]
            blocks.append(render_table(grid))
        else:
            blocks.append(" ".join(item.text.split()))
            if item.style is not None and item.style.name in TITLE_STYLES and blocks[-1]:
                headings.append(blocks[-1])
    title = (document.core_properties.title or "").strip() or next(iter(headings), "")
    return "\n".join(b for b in blocks if b), title
