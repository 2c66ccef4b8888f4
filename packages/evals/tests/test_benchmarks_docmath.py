"""DocMath-Eval testmini loading: layouts, subsets, gold formatting, malformed records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.evals.benchmarks import get_benchmark
from qwenlong.evals.benchmarks.examples import write_examples


def _record(qid: str, ground_truth: object = 12, **extra: object) -> dict:
    record = {
        "question_id": qid,
        "question": "What is the total?",
        "paragraphs": ["Revenue rose.", "| Year | Value |\n|---|---|\n| 2020 | 12 |"],
        "table_evidence": [1],
        "paragraph_evidence": [0],
        "python_solution": "def solution():\n    return 12",
        "ground_truth": ground_truth,
    }
    record.update(extra)
    return record


def _write(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


def test_hand_written_file_maps_to_samples(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "simpshort_testmini.json",
        [_record("q-0", 12), _record("q-1", 0.1, tables=["| a |"])],
    )
    first, second = get_benchmark("docmath").load(path)
    assert first.id == "simpshort/q-0"
    assert first.answers == ["12.0"]  # the official code compares against float(ground_truth)
    assert second.answers == ["0.1"]
    assert first.context == "Revenue rose.\n| Year | Value |\n|---|---|\n| 2020 | 12 |"
    assert second.context.endswith("| 2020 | 12 |\n| a |")  # separate tables follow paragraphs
    assert (first.task_type, first.answer_kind, first.instruction) == ("numerical", "number", "")
    assert first.meta == {"subset": "simpshort", "question_id": "q-0"}


def test_hub_layout_folder_loads_each_subset(tmp_path: Path) -> None:
    root = write_examples(tmp_path, seed=3, n=8)["docmath"]
    docmath = get_benchmark("docmath")
    samples = docmath.load(root)
    assert len(samples) == 8
    assert {s.meta["subset"] for s in samples} == {"complong", "compshort", "simplong", "simpshort"}
    only = docmath.load(root, "simplong")
    assert len(only) == 2 and {s.meta["subset"] for s in only} == {"simplong"}


def test_github_layout_with_json_files(tmp_path: Path) -> None:
    for subset in ("complong", "compshort", "simplong", "simpshort"):
        _write(tmp_path / "data" / f"{subset}_testmini.json", [_record(f"{subset}-0")])
    samples = get_benchmark("docmath").load(tmp_path)
    assert [s.id for s in samples] == [
        "complong/complong-0",
        "compshort/compshort-0",
        "simplong/simplong-0",
        "simpshort/simpshort-0",
    ]


def test_missing_subset_file_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "complong_testmini.json", [_record("a")])
    with pytest.raises(DatasetError, match="no file for DocMath subset 'compshort'"):
        get_benchmark("docmath").load(tmp_path)
    assert len(get_benchmark("docmath").load(tmp_path, "complong")) == 1


def test_single_file_subset_comes_from_name_or_argument(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.json", [_record("a")])
    with pytest.raises(DatasetError, match="cannot tell the DocMath subset"):
        get_benchmark("docmath").load(path)
    (sample,) = get_benchmark("docmath").load(path, "compshort")
    assert sample.meta["subset"] == "compshort"
    named = _write(tmp_path / "simplong_testmini.json", [_record("a")])
    with pytest.raises(DatasetError, match="holds DocMath subset 'simplong', not the requested"):
        get_benchmark("docmath").load(named, "complong")


def test_unknown_subset_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="known: all, complong"):
        get_benchmark("docmath").load(tmp_path, "testmini")


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {k: v for k, v in _record("a").items() if k != "ground_truth"},
            "missing field 'ground_truth'",
        ),
        (_record("a", "12"), "field 'ground_truth' must be a number, got str"),
        (_record("a", paragraphs="one"), "field 'paragraphs' must be a list of strings"),
    ],
)
def test_malformed_records_name_file_row_and_field(
    tmp_path: Path, record: dict, expected: str
) -> None:
    path = _write(tmp_path / "complong_testmini.json", [_record("ok"), record])
    with pytest.raises(DatasetError) as err:
        get_benchmark("docmath").load(path)
    assert str(err.value).startswith(f"dataset error: {path} row 1 (0-based): {expected}")
