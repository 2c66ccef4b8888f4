"""PDF and DOCX files for the corpus reader tests, written on the fly so no binary is committed.

PDFs are drawn with reportlab (a dev dependency only), DOCX files with python-docx (which the
reader uses anyway). Every builder writes one small file and returns its path; the texts are
plain sentences the tests look for, so a reader that drops, repeats or reorders a block fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PAGE_W, PAGE_H = 612.0, 792.0  # US letter, points
MARGIN = 72.0
LEADING = 14.0


def _canvas(path: Path, **kwargs: object):  # -> reportlab Canvas
    from reportlab.pdfgen.canvas import Canvas

    return Canvas(str(path), pagesize=(PAGE_W, PAGE_H), **kwargs)


def _lines(c, x: float, top: float, lines: Sequence[str], size: int = 11) -> float:
    """Draw `lines` downwards from `top`; return the y below the last one."""
    c.setFont("Helvetica", size)
    y = top
    for line in lines:
        c.drawString(x, y, line)
        y -= LEADING
    return y


def multipage_pdf(path: Path, pages: Sequence[Sequence[str] | None]) -> Path:
    """One page per item of `pages`: lines of running text, or None for a scanned-in picture."""
    c = _canvas(path)
    for lines in pages:
        if lines is None:
            c.drawImage(_grey_image(), MARGIN, MARGIN, PAGE_W - 2 * MARGIN, PAGE_H - 2 * MARGIN)
        else:
            _lines(c, MARGIN, PAGE_H - MARGIN, lines)
        c.showPage()
    c.save()
    return path


def two_column_pdf(path: Path, title: str, left: Sequence[str], right: Sequence[str]) -> Path:
    """A full-width title over two columns of short lines, as a journal page sets them."""
    c = _canvas(path)
    c.setFont("Helvetica-Bold", 16)
    c.drawString(MARGIN, PAGE_H - MARGIN, title)
    top = PAGE_H - MARGIN - 3 * LEADING
    _lines(c, MARGIN, top, left)
    _lines(c, PAGE_W / 2 + 18, top, right)
    c.showPage()
    c.save()
    return path


def table_pdf(
    path: Path,
    before: str,
    caption: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    after: str,
    merged_label: str = "",
) -> Path:
    """A sentence, a caption, a ruled table, a sentence, top to bottom on one page.

    With `merged_label`, an extra first row holds one cell spanning every column but the first
    (a "Year ended" header over the year columns): ruled around, not between, its columns.
    """
    c = _canvas(path)
    y = _lines(c, MARGIN, PAGE_H - MARGIN, [before, "", caption])
    col_w, row_h = 100.0, 20.0
    n_cols = len(header)
    grid = ([["", merged_label]] if merged_label else []) + [list(header), *map(list, rows)]
    top = y - 4
    bottom = top - row_h * len(grid)
    right = MARGIN + col_w * n_cols
    c.setLineWidth(0.8)
    for i in range(len(grid) + 1):  # horizontal rules
        c.line(MARGIN, top - i * row_h, right, top - i * row_h)
    for j in range(n_cols + 1):  # vertical rules; inside the merged cell only the first one
        first_row_end = top - row_h if merged_label and 1 < j < n_cols else top
        c.line(MARGIN + j * col_w, first_row_end, MARGIN + j * col_w, bottom)
    c.setFont("Helvetica", 10)
    for i, cells in enumerate(grid):
        for j, cell in enumerate(cells):
            c.drawString(MARGIN + j * col_w + 5, top - (i + 1) * row_h + 6, cell)
    _lines(c, MARGIN, bottom - 2 * LEADING, [after])
    c.showPage()
    c.save()
    return path


def scanned_pdf(path: Path, pages: int = 1) -> Path:
    """Pages holding only a picture, as a scanner writes them: no text layer at all."""
    return multipage_pdf(path, [None] * pages)


def _grey_image():  # -> reportlab ImageReader
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    return ImageReader(Image.new("L", (40, 50), color=200))


def encrypted_pdf(path: Path, lines: Sequence[str]) -> Path:
    """Text behind a user password: unreadable without it."""
    c = _canvas(path, encrypt="secret")
    _lines(c, MARGIN, PAGE_H - MARGIN, lines)
    c.showPage()
    c.save()
    return path


def docx_file(
    path: Path,
    title: str,
    paragraphs: Sequence[str],
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    merged_label: str,
) -> Path:
    """A heading, paragraphs, then a table whose first row merges every column but the first."""
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for text in paragraphs[:1]:
        document.add_paragraph(text)
    table = document.add_table(rows=2 + len(rows), cols=len(header))
    merged = table.cell(0, 1).merge(table.cell(0, len(header) - 1))
    merged.text = merged_label
    for j, cell in enumerate(header):
        table.cell(1, j).text = cell
    for i, cells in enumerate(rows):
        for j, cell in enumerate(cells):
            table.cell(2 + i, j).text = cell
    for text in paragraphs[1:]:
        document.add_paragraph(text)
    document.save(str(path))
    return path
