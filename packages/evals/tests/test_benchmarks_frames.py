"""FRAMES loading: the published TSV, wiki_items records, the local page store, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.evals.benchmarks import get_benchmark
from qwenlong.evals.benchmarks.frames import title_key, url_key

HEADER = ["", "Prompt", "Answer", "wikipedia_link_1", "wikipedia_link_2", "wikipedia_link_11+"]
HEADER += ["reasoning_types", "wiki_links"]


def _tsv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _pages(path: Path, pages: list[dict]) -> None:
    path.write_text("".join(json.dumps(p) + "\n" for p in pages))


LINKS = [
    "https://en.wikipedia.org/wiki/Caf%C3%A9_Tortoni",
    "http://en.m.wikipedia.org/wiki/Ada_Lovelace",
]


def test_url_and_title_keys_ignore_spelling_variants() -> None:
    assert url_key("https://en.wikipedia.org/wiki/Caf%C3%A9_Tortoni") == url_key(
        "http://en.m.wikipedia.org/wiki/Café Tortoni#History"
    )
    assert title_key("Ada_Lovelace ") == title_key("ada lovelace")


def test_tsv_with_page_store_builds_the_context(tmp_path: Path) -> None:
    row = ["7", "Who?", "Ada", LINKS[0], LINKS[1], "", "Multiple constraints", str(LINKS)]
    _tsv(tmp_path / "test.tsv", [row])
    _pages(
        tmp_path / "wiki_pages.jsonl",
        [
            {
                "url": "https://en.wikipedia.org/wiki/Café_Tortoni",
                "title": "Café Tortoni",
                "text": "A café.",
            },
            {"title": "Ada Lovelace", "text": "A mathematician."},  # matched by the URL's title
        ],
    )
    (sample,) = get_benchmark("frames").load(tmp_path)
    assert sample.id == "frames-7"
    assert sample.context == "Café Tortoni\nA café.\nAda Lovelace\nA mathematician."
    assert (sample.question, sample.answers) == ("Who?", ["Ada"])
    assert (sample.task_type, sample.answer_kind) == ("multihop", "text")
    assert sample.meta == {
        "reasoning_types": "Multiple constraints",
        "context_source": "wiki_pages",
        "pages_missing": "0",
    }
    assert sample.provenance.source_documents == LINKS


def test_pages_the_store_lacks_are_counted(tmp_path: Path) -> None:
    _tsv(tmp_path / "test.tsv", [["0", "Q", "A", LINKS[0], LINKS[1], "", "Temporal", str(LINKS)]])
    _pages(tmp_path / "wiki_pages.jsonl", [{"title": "Ada Lovelace", "text": "Text."}])
    (sample,) = get_benchmark("frames").load(tmp_path / "test.tsv")
    assert sample.context == "Ada Lovelace\nText."
    assert sample.meta["pages_missing"] == "1"


def test_link_columns_are_used_in_numeric_order_without_wiki_links(tmp_path: Path) -> None:
    header = ["", "Prompt", "Answer", "wikipedia_link_2", "wikipedia_link_10", "wikipedia_link_1"]
    _tsv(tmp_path / "test.tsv", [["0", "Q", "A", "u2", "u10", "u1"]], header)
    (sample,) = get_benchmark("frames").load(tmp_path)
    assert sample.provenance.source_documents == ["u1", "u2", "u10"]
    assert sample.meta["context_source"] == "none" and sample.context == ""


def test_wiki_items_records_carry_their_own_context(tmp_path: Path) -> None:
    record = {
        "Prompt": "Q?",
        "Answer": "A",
        "reasoning_types": "Numerical reasoning",
        "wiki_links": LINKS,
        "wiki_items": [{"title": "T1", "text": "one"}, {"title": "T2", "text": "two"}],
    }
    (tmp_path / "test.jsonl").write_text(json.dumps(record) + "\n")
    (sample,) = get_benchmark("frames").load(tmp_path)
    assert sample.id == "frames-0"  # no index column: the row position
    assert sample.context == "T1\none\nT2\ntwo"
    assert sample.meta["context_source"] == "wiki_items"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"wiki_items": [{"title": "T"}]},
            "field 'wiki_items' item 0 needs string 'title' and 'text'",
        ),
        ({"wiki_links": "[unclosed"}, "field 'wiki_links' is not a list literal"),
        ({"wiki_links": "[1, 2]"}, "field 'wiki_links' must be a list of URLs"),
        ({"Answer": ""}, "field 'Answer' is empty"),
    ],
)
def test_malformed_rows_name_file_line_and_field(
    tmp_path: Path, record: dict, expected: str
) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps({"Prompt": "Q", "Answer": "A", **record}) + "\n")
    with pytest.raises(DatasetError) as err:
        get_benchmark("frames").load(path)
    assert str(err.value) == f"dataset error: {path} line 1: {expected}"


def test_page_store_rows_need_a_url_or_title(tmp_path: Path) -> None:
    _tsv(tmp_path / "test.tsv", [["0", "Q", "A", LINKS[0], "", "", "", str(LINKS[:1])]])
    _pages(tmp_path / "wiki_pages.jsonl", [{"text": "orphan"}])
    with pytest.raises(
        DatasetError, match=r"wiki_pages\.jsonl line 1: a page needs a 'url' or a 'title'"
    ):
        get_benchmark("frames").load(tmp_path)


def test_folder_without_questions_fails(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"folder has none of test\.jsonl, test\.tsv"):
        get_benchmark("frames").load(tmp_path)
