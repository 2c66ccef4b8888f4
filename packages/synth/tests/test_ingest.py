"""Folder and HF dataset ingestion into Documents: formats, ids, domains, token counts, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from qwenlong.core.errors import DatasetError
from qwenlong.synth.corpus import (
    IngestConfig,
    html_text,
    ingest,
    ingest_folder,
    ingest_hf_dataset,
    stable_id,
)

HTML = """<html><head><title>Harbour  news</title><style>p {color: red}</style></head>
<body><script>var hidden = 1;</script><h1>Ships</h1><p>Three ships &amp; a tug
arrived.</p><ul><li>One</li><li>Two</li></ul><noscript>enable js</noscript></body></html>"""


def _corpus(root: Path) -> Path:
    (root / "news").mkdir(parents=True)
    (root / "code" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text("Plain text file.\n")
    (root / "news" / "b.md").write_text("intro\n# Market report\nBody.")
    (root / "news" / "c.html").write_text(HTML)
    rows = [
        {"text": "Row zero.", "title": "T0"},
        {"text": "Row one.", "id": "given-1", "domain": "legal"},
        {"text": "   "},
    ]
    (root / "code" / "deep" / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    table = pa.table({"text": ["P0", "P1"], "title": ["x", None], "domain": [None, "academic"]})
    pq.write_table(table, root / "e.parquet")
    (root / ".hidden.txt").write_text("skip me")
    (root / "notes.csv").write_text("skip,me")
    return root


def test_folder_formats_ids_and_domains(tmp_path: Path) -> None:
    docs = ingest_folder(_corpus(tmp_path / "corpus"), count_tokens=lambda t: len(t.split()))
    by_source = {d.source: d for d in docs}
    assert list(by_source) == [
        "a.txt", "code/deep/d.jsonl#0", "code/deep/d.jsonl#1", "e.parquet#0", "e.parquet#1",
        "news/b.md", "news/c.html",
    ]  # fmt: skip
    assert by_source["a.txt"].id == stable_id("a.txt") and by_source["a.txt"].domain == "general"
    assert by_source["code/deep/d.jsonl#0"].id == stable_id("code/deep/d.jsonl#0")
    assert by_source["code/deep/d.jsonl#0"].domain == "code"  # top-level subfolder
    assert by_source["code/deep/d.jsonl#0"].title == "T0"
    assert by_source["code/deep/d.jsonl#1"].id == "given-1"
    assert by_source["code/deep/d.jsonl#1"].domain == "legal"  # the row's own domain wins
    assert by_source["e.parquet#1"].domain == "academic"
    assert (
        by_source["news/b.md"].title == "Market report" and by_source["news/b.md"].domain == "news"
    )
    html = by_source["news/c.html"]
    assert html.title == "Harbour news"
    assert html.text == "Ships\nThree ships & a tug arrived.\nOne\nTwo"
    assert all(d.n_tokens == len(d.text.split()) for d in docs)


def test_ids_are_stable_across_locations_and_domain_argument_wins(tmp_path: Path) -> None:
    first = ingest_folder(_corpus(tmp_path / "one"))
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    second = ingest_folder(tmp_path / "two", domain="literature")
    assert [d.id for d in first] == [d.id for d in second]
    assert {d.domain for d in second} == {"literature"}
    assert all(d.n_tokens is None for d in first)


def test_html_text_drops_hidden_blocks() -> None:
    text, title = html_text(HTML)
    assert "hidden" not in text and "color" not in text and "enable js" not in text
    assert title == "Harbour news"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"text": "ok"}\n{"text": oops}\n', r"bad.jsonl line 2: invalid JSON"),
        ("bad.jsonl", '{"text": "ok"}\n\n{"body": "x"}\n', r"bad.jsonl line 3: no 'text' field"),
        ("bad.jsonl", '{"text": 5}\n', r"bad.jsonl line 1: field 'text' is int, not text"),
        ("bad.jsonl", '["text"]\n', r"bad.jsonl line 1: expected an object, got list"),
        ("bad.jsonl", '{"text": "a", "id": "x"}\n{"text": "b", "id": "x"}\n',
         r"bad.jsonl line 2: id 'x' already used at .*bad.jsonl line 1"),
    ],
)  # fmt: skip
def test_bad_jsonl_names_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(DatasetError, match=message):
        ingest_folder(tmp_path)


def test_bad_files_name_themselves(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"latin.txt: not UTF-8 text \(byte 3\)"):
        ingest_folder(tmp_path)
    (tmp_path / "latin.txt").unlink()
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "t.parquet")
    with pytest.raises(DatasetError, match=r"t.parquet: no 'text' column \(columns: body\)"):
        ingest_folder(tmp_path)
    (tmp_path / "t.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match=r"t.parquet: unreadable parquet"):
        ingest_folder(tmp_path)
    pq.write_table(pa.table({"text": ["a", None]}), tmp_path / "t.parquet")
    with pytest.raises(DatasetError, match=r"t.parquet row 1: field 'text' is NoneType"):
        ingest_folder(tmp_path)
    with pytest.raises(DatasetError, match="not a folder"):
        ingest_folder(tmp_path / "missing")


def test_custom_text_field(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"body": "Hello there."}\n')
    docs = ingest_folder(tmp_path, text_field="body")
    assert [d.text for d in docs] == ["Hello there."]


def test_hf_dataset_from_disk_and_from_a_data_folder(tmp_path: Path) -> None:
    import datasets

    rows = {
        "text": ["First.", "Second.", "Third."],
        "id": ["a", "b", "c"],
        "domain": ["x", "y", "z"],
    }
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "saved"))
    docs = ingest_hf_dataset(str(tmp_path / "saved"), count_tokens=len, limit=2)
    assert [(d.id, d.text, d.domain, d.n_tokens) for d in docs] == [
        ("a", "First.", "x", 6),
        ("b", "Second.", "y", 7),
    ]
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"content": ["Alpha.", "Beta."]}), tmp_path / "data" / "train.parquet")
    again = [
        ingest_hf_dataset(str(tmp_path / "data"), text_field="content", domain="dialogue")
        for _ in range(2)
    ]
    assert [d.id for d in again[0]] == [d.id for d in again[1]]
    assert [d.id for d in again[0]] == [
        stable_id(f"{tmp_path / 'data'}/train#{i}") for i in range(2)
    ]
    assert {d.domain for d in again[0]} == {"dialogue"}
    with pytest.raises(DatasetError, match=r"no 'text' column \(columns: content\)"):
        ingest_hf_dataset(str(tmp_path / "data"))


def test_ingest_config_combines_sources(tmp_path: Path) -> None:
    _corpus(tmp_path / "corpus")
    config = IngestConfig(folders=("corpus",), domain="general")
    docs = ingest(config, base=tmp_path)
    assert len(docs) == 7 and {d.domain for d in docs} == {"general"}
    with pytest.raises(ValidationError):
        IngestConfig(folder=("x",))


def test_skipped_rows_are_listed_and_an_empty_source_is_an_error(tmp_path: Path) -> None:
    from qwenlong.synth.corpus.ingest import SkippedDoc

    skipped: list[SkippedDoc] = []
    _corpus(tmp_path / "corpus")
    docs = ingest(IngestConfig(folders=("corpus",)), base=tmp_path, skipped=skipped)
    assert skipped == [SkippedDoc("code/deep/d.jsonl#2", "jsonl", "no text")]  # the blank row
    assert {d.meta["source_type"] for d in docs} == {"txt", "md", "html", "jsonl", "parquet"}
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.csv").write_text("not,read")
    with pytest.raises(DatasetError, match=r"empty: no document found \(files read: docx, htm"):
        ingest(IngestConfig(folders=("empty",)), base=tmp_path)
