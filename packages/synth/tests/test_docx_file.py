"""DOCX reading: paragraphs and tables in body order, merged cells spread over their grid."""

from __future__ import annotations

from pathlib import Path

import pdf_fixtures as fx
import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.synth.corpus import ingest_folder
from qwenlong.synth.corpus.table_grid import render_table

PARAGRAPHS = ["The mill opened in 1790.", "It closed in 1902 after the flood."]
HEADER = ["Region", "2021", "2022"]
ROWS = [["North", "10", "12"], ["South", "7", "9"]]


def test_paragraphs_and_merged_table_in_body_order(tmp_path: Path) -> None:
    fx.docx_file(tmp_path / "mill.docx", "Mill history", PARAGRAPHS, HEADER, ROWS, "Output")
    (doc,) = ingest_folder(tmp_path)
    table = render_table([["", "Output", "Output"], HEADER, *ROWS])
    assert doc.text == "\n".join(["Mill history", PARAGRAPHS[0], table, PARAGRAPHS[1]])
    assert doc.title == "Mill history" and doc.meta == {"source_type": "docx"}


def test_corrupt_docx_names_itself(tmp_path: Path) -> None:
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(DatasetError, match=r"broken.docx: unreadable DOCX \(.+\)$"):
        ingest_folder(tmp_path)
