"""PDF reading: pages in order with their offsets kept, two columns in reading order, ruled
tables as span-expanded grids in place, scans without text skipped and reported, bad files named.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pdf_fixtures as fx
import pytest

from qwenlong.core.dataset_io import read_documents, write_documents
from qwenlong.core.errors import DatasetError
from qwenlong.synth.corpus import IngestConfig, ingest, ingest_folder
from qwenlong.synth.corpus.ingest import SkippedDoc
from qwenlong.synth.corpus.pdf import PAGE_STARTS, PAGES_WITHOUT_TEXT, page_of, pdf_document
from qwenlong.synth.corpus.table_grid import render_table

PAGES = [
    ["The river Lenn runs for ninety miles.", "It rises in the Aster hills."],
    ["The bridge at Corvel was built in 1821."],
    ["Its keeper was Mara Holt."],
]
LEFT = [f"Left {i}: the harbour holds {i} boats." for i in range(6)]
RIGHT = [f"Right {i}: the mill grinds {i} sacks." for i in range(6)]
HEADER = ["Region", "2021", "2022"]
ROWS = [["North", "10", "12"], ["South", "7", "9"]]


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each kind of PDF once, in its own folder (name -> file)."""
    root = tmp_path_factory.mktemp("pdfs")

    def at(name: str) -> Path:
        (root / name).mkdir()
        return root / name / f"{name}.pdf"

    return {
        "pages": fx.multipage_pdf(at("pages"), PAGES),
        "columns": fx.two_column_pdf(at("columns"), "Twin Towns", LEFT, RIGHT),
        "table": fx.table_pdf(
            at("table"),
            "Revenue grew in both years.",
            "Table 1: Revenue by region",
            HEADER,
            ROWS,
            "Both regions grew.",
            merged_label="Year ended Dec 31",
        ),
        "scan": fx.scanned_pdf(at("scan"), pages=2),
        "mixed": fx.multipage_pdf(at("mixed"), [PAGES[0], None, PAGES[1]]),
        "encrypted": fx.encrypted_pdf(at("encrypted"), PAGES[0]),
    }


def test_pages_keep_their_order_and_offsets_through_the_corpus_file(
    pdfs: dict[str, Path], tmp_path: Path
) -> None:
    (doc,) = ingest_folder(pdfs["pages"].parent)
    assert doc.text.splitlines() == [" ".join(PAGES[0]), PAGES[1][0], PAGES[2][0]]
    assert doc.meta["source_type"] == "pdf" and doc.title == "pages"
    assert page_of(doc, 0) == 1
    assert page_of(doc, doc.text.index("Corvel")) == 2
    assert page_of(doc, doc.text.index("Mara")) == 3
    assert page_of(doc, len(doc.text) - 1) == 3
    write_documents([doc], tmp_path / "documents.parquet")
    (back,) = read_documents(tmp_path / "documents.parquet")
    assert back.meta == doc.meta and page_of(back, back.text.index("Corvel")) == 2


def test_two_columns_read_left_then_right(pdfs: dict[str, Path]) -> None:
    text, _, _ = pdf_document(pdfs["columns"])
    lines = text.splitlines()
    assert lines == ["Twin Towns", " ".join(LEFT), " ".join(RIGHT)]


def test_ruled_table_is_a_span_expanded_grid_between_its_sentences(pdfs: dict[str, Path]) -> None:
    text, _, _ = pdf_document(pdfs["table"])
    merged = ["", "Year ended Dec 31", "Year ended Dec 31"]  # one cell over both year columns
    table = render_table([merged, HEADER, *ROWS])
    assert text == "\n".join(
        ["Revenue grew in both years.", "Table 1: Revenue by region", table, "Both regions grew."]
    )
    assert text.count("North") == 1  # the cells are not also read as running text


def test_scan_without_text_is_reported_and_skipped(
    pdfs: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "notes.txt").write_text("A note.")
    (folder / "scan.pdf").write_bytes(pdfs["scan"].read_bytes())
    skipped: list[SkippedDoc] = []
    with caplog.at_level(logging.WARNING):
        docs = ingest_folder(folder, skipped=skipped)
    assert [d.source for d in docs] == ["notes.txt"]
    assert skipped == [SkippedDoc("scan.pdf", "pdf", "no text layer")]
    assert [r.getMessage() for r in caplog.records] == [
        f"{folder / 'scan.pdf'}: no text layer; skipped"
    ]


def test_a_folder_of_scans_only_is_a_dataset_error(pdfs: dict[str, Path]) -> None:
    config = IngestConfig(folders=(str(pdfs["scan"].parent),))
    with pytest.raises(
        DatasetError, match=r"no document with text \(1 skipped: scan.pdf: no text layer\)"
    ):
        ingest(config)


def test_pages_without_text_in_a_pdf_with_text_are_listed(pdfs: dict[str, Path]) -> None:
    text, _, meta = pdf_document(pdfs["mixed"])
    assert text.splitlines() == [" ".join(PAGES[0]), PAGES[1][0]]
    assert meta[PAGES_WITHOUT_TEXT] == "2"
    starts = json.loads(meta[PAGE_STARTS])
    assert starts[1] == starts[2] == text.index("The bridge")  # the empty page holds no text


def test_encrypted_and_corrupt_pdfs_name_themselves(pdfs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"encrypted.pdf: encrypted PDF \(needs a password\)"):
        ingest_folder(pdfs["encrypted"].parent)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really")
    with pytest.raises(DatasetError, match=r"broken.pdf: unreadable PDF \(.+\)$"):
        ingest_folder(tmp_path)
