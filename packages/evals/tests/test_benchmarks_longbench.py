"""LongBench v2 (multiple choice) and LongBench v1 QA loading."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.evals.benchmarks import get_benchmark


def _v2(ident: str, **extra: object) -> dict:
    record = {
        "_id": ident,
        "domain": "Single-Document QA",
        "sub_domain": "Legal",
        "difficulty": "hard",
        "length": "long",
        "question": "Which clause applies?",
        "choice_A": "first",
        "choice_B": "second",
        "choice_C": "third",
        "choice_D": "fourth",
        "answer": "C",
        "context": "A long contract.",
    }
    record.update(extra)
    return record


def _v1(ident: str, dataset: str = "hotpotqa", **extra: object) -> dict:
    record = {
        "input": "Who?",
        "context": "Passage 1:\nSomeone did it.",
        "answers": ["Someone"],
        "length": 5,
        "dataset": dataset,
        "language": "en",
        "all_classes": None,
        "_id": ident,
    }
    record.update(extra)
    return record


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_v2_record_maps_to_a_choice_sample(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text(json.dumps([_v2("id1")]))
    (sample,) = get_benchmark("longbench_v2").load(tmp_path)
    assert sample.id == "id1"
    assert sample.choices == ["first", "second", "third", "fourth"]
    assert sample.answers == ["C"]
    assert (sample.task_type, sample.answer_kind) == ("mc", "choice")
    assert sample.context == "A long contract." and sample.question == "Which clause applies?"
    assert sample.meta == {
        "difficulty": "hard",
        "length": "long",
        "domain": "Single-Document QA",
        "sub_domain": "Legal",
    }


def test_v2_subsets_filter_by_difficulty_or_length(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    rows = [_v2("a"), _v2("b", difficulty="easy", length="short"), _v2("c", length="medium")]
    path.write_text(json.dumps(rows))
    v2 = get_benchmark("longbench_v2")
    assert [s.id for s in v2.load(path)] == ["a", "b", "c"]
    assert [s.id for s in v2.load(path, "hard")] == ["a", "c"]
    assert [s.id for s in v2.load(path, "Short")] == ["b"]
    with pytest.raises(ConfigError, match="unknown subset 'longest'"):
        v2.load(path, "longest")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"answer": "E"}, "field 'answer' must be one of A, B, C, D, got 'E'"),
        ({"difficulty": "medium"}, "field 'difficulty' must be one of easy, hard"),
        ({"choice_B": 2}, "field 'choice_B' must be a string, got int"),
        ({"_id": None}, "missing field '_id'"),
    ],
)
def test_v2_malformed_records(tmp_path: Path, override: dict, expected: str) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([_v2("ok"), _v2("bad", **override)]))
    with pytest.raises(DatasetError) as err:
        get_benchmark("longbench_v2").load(path)
    assert str(err.value).startswith(f"dataset error: {path} row 1 (0-based): {expected}")


def test_v2_folder_needs_data_json(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"folder has no data\.json"):
        get_benchmark("longbench_v2").load(tmp_path)


def test_v1_folder_of_extracted_files(tmp_path: Path) -> None:
    for name in ("2wikimqa", "hotpotqa", "musique", "narrativeqa", "qasper"):
        _jsonl(tmp_path / "data" / f"{name}.jsonl", [_v1(f"{name}-x", name)])
    v1 = get_benchmark("longbench_v1_qa")
    samples = v1.load(tmp_path)
    assert [s.meta["dataset"] for s in samples] == [
        "2wikimqa",
        "hotpotqa",
        "musique",
        "narrativeqa",
        "qasper",
    ]
    assert [s.task_type for s in samples] == ["multihop"] * 3 + ["reading"] * 2
    first = samples[1]
    assert first.id == "hotpotqa/hotpotqa-x"
    assert (first.question, first.answers, first.context) == (
        "Who?",
        ["Someone"],
        "Passage 1:\nSomeone did it.",
    )
    assert first.meta == {"dataset": "hotpotqa", "language": "en", "length": "5"}
    assert [s.id for s in v1.load(tmp_path, "qasper")] == ["qasper/qasper-x"]


def test_v1_reads_the_published_zip(tmp_path: Path) -> None:
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("data/musique.jsonl", json.dumps(_v1("m1", "musique")) + "\n")
    (sample,) = get_benchmark("longbench_v1_qa").load(archive, "musique")
    assert sample.id == "musique/m1"
    (again,) = get_benchmark("longbench_v1_qa").load(tmp_path, "musique")  # folder holding the zip
    assert again.id == "musique/m1"
    with pytest.raises(DatasetError, match=r"archive has no data/2wikimqa\.jsonl"):
        get_benchmark("longbench_v1_qa").load(archive)


def test_v1_errors_in_a_zip_member_name_the_member_line(tmp_path: Path) -> None:
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("data/qasper.jsonl", json.dumps(_v1("a", "qasper", answers="x")) + "\n")
    with pytest.raises(DatasetError) as err:
        get_benchmark("longbench_v1_qa").load(archive, "qasper")
    assert str(err.value).startswith(
        f"dataset error: {archive}:data/qasper.jsonl line 1: field 'answers' must be a list"
    )
    (tmp_path / "broken.zip").write_bytes(b"PK nonsense")
    with pytest.raises(DatasetError, match="not a readable zip"):
        get_benchmark("longbench_v1_qa").load(tmp_path / "broken.zip", "qasper")


def test_v1_single_file_checks_its_name_and_rows(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "narrativeqa.jsonl", [_v1("n1", "narrativeqa"), _v1("n2", "qasper")])
    with pytest.raises(DatasetError) as err:
        get_benchmark("longbench_v1_qa").load(path)
    assert str(err.value) == (
        f"dataset error: {path} line 2: field 'dataset' is 'qasper' in the narrativeqa file"
    )
    other = _jsonl(tmp_path / "trec.jsonl", [_v1("t", "trec")])
    with pytest.raises(DatasetError, match=r"file name must be one of 2wikimqa\.jsonl"):
        get_benchmark("longbench_v1_qa").load(other)
    with pytest.raises(DatasetError, match="holds 'narrativeqa', not the requested 'qasper'"):
        get_benchmark("longbench_v1_qa").load(path, "qasper")


def test_v1_missing_dataset_file_is_named(tmp_path: Path) -> None:
    _jsonl(tmp_path / "hotpotqa.jsonl", [_v1("h")])
    with pytest.raises(DatasetError, match="no LongBench file for '2wikimqa'"):
        get_benchmark("longbench_v1_qa").load(tmp_path)
