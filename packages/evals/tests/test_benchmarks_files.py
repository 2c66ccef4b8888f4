"""Benchmark file reading: formats, row locations in errors, hub failures, subset names."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.evals.benchmarks import hub
from qwenlong.evals.benchmarks.common import number_text, resolve_subset
from qwenlong.evals.benchmarks.files import Row, find_files, read_rows


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_json_rows_carry_zero_based_positions(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([{"a": 1}, {"a": 2}]))
    rows = list(read_rows(path))
    assert [r.values["a"] for r in rows] == [1, 2]
    assert rows[1].where == f"{path} row 1 (0-based)"


def test_jsonl_skips_blank_lines_and_uses_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    rows = list(read_rows(path))
    assert [r.where for r in rows] == [f"{path} line 1", f"{path} line 3"]


def test_unreadable_jsonl_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    with pytest.raises(DatasetError) as err:
        list(read_rows(path))
    assert f"{path} line 3: unreadable JSON" in _one_line(err)


@pytest.mark.parametrize(
    ("name", "text"),
    [("x.json", ""), ("x.json", "[]"), ("x.jsonl", "\n\n"), ("x.tsv", ""), ("x.tsv", "a\tb\n")],
)
def test_empty_files_fail(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DatasetError, match=r"empty|no rows") as err:
        list(read_rows(path))
    assert str(path) in _one_line(err)


def test_empty_parquet_fails(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), path)
    with pytest.raises(DatasetError, match="no rows"):
        list(read_rows(path))


def test_json_root_must_be_a_list_of_objects(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    with pytest.raises(DatasetError, match="expected a JSON list"):
        list(read_rows(path))
    path.write_text('[{"a": 1}, 3]')
    with pytest.raises(DatasetError, match=r"row 1 \(0-based\): expected a JSON object, got int"):
        list(read_rows(path))


def test_parquet_rows_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pylist([{"q": "a", "n": 1}, {"q": "b", "n": 2}]), path)
    rows = list(read_rows(path))
    assert [(r.values["q"], r.values["n"]) for r in rows] == [("a", 1), ("b", 2)]
    assert rows[1].where.endswith("row 1 (0-based)")


def test_garbage_parquet_is_a_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match="unreadable parquet"):
        list(read_rows(path))


def test_tsv_keeps_quoted_newlines_and_rejects_extra_cells(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text('\tPrompt\n0\t"two\nlines"\n')
    (row,) = list(read_rows(path))
    assert row.values == {"": "0", "Prompt": "two\nlines"}
    path.write_text("a\tb\n1\t2\t3\n")
    with pytest.raises(DatasetError, match=r"row 0 \(0-based\): more cells"):
        list(read_rows(path))


def test_missing_and_unsupported_files_fail_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_rows(tmp_path / "absent.json")
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(DatasetError, match=r"unsupported file type '\.csv'.*\.jsonl"):
        read_rows(tmp_path / "x.csv")


def test_row_accessors_name_the_field() -> None:
    row = Row(
        {"s": "text", "blank": " ", "i": 3, "flag": True, "lst": ["a", 1], "x": None}, "f row 0"
    )
    assert row.text("s") == "text"
    assert row.optional_text("absent") == "" and row.optional_text("x") == ""
    assert row.number("i") == 3.0
    cases = {
        "missing field 'absent'": lambda: row.text("absent"),
        "missing field 'x'": lambda: row.raw("x"),
        "field 'i' must be a string, got int": lambda: row.text("i"),
        "field 'blank' is empty": lambda: row.text("blank"),
        "field 'flag' must be an integer, got bool": lambda: row.integer("flag"),
        "field 'flag' must be a number, got bool": lambda: row.number("flag"),
        "field 'lst' must be a list of strings, got list": lambda: row.text_list("lst"),
        "field 's' must be one of A, B, got 'text'": lambda: row.one_of("s", ("A", "B")),
    }
    for expected, call in cases.items():
        with pytest.raises(DatasetError) as err:
            call()
        assert str(err.value) == f"dataset error: f row 0: {expected}"


def test_find_files_returns_every_shard_of_the_first_matching_pattern(tmp_path: Path) -> None:
    for name in ("a-00001-of-00002.parquet", "a-00000-of-00002.parquet", "a.json"):
        (tmp_path / name).write_text("")
    assert [p.name for p in find_files(tmp_path, ["b.json", "a-*.parquet", "a.json"])] == [
        "a-00000-of-00002.parquet",
        "a-00001-of-00002.parquet",
    ]
    assert find_files(tmp_path, ["zzz*"]) == []


def test_hub_failures_become_one_line_dataset_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import huggingface_hub

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no route to host\nretry details")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DatasetError) as err:
        hub.hub_rows("openai/mrcr", "train")
    assert "openai/mrcr" in _one_line(err) and "ConnectionError: no route to host" in str(err.value)
    assert "pass a local path" in str(err.value)
    with pytest.raises(DatasetError, match=r"data\.zip of THUDM/LongBench") as err:
        hub.hub_file("THUDM/LongBench", "data.zip")
    _one_line(err)


def test_subset_names_fold_case_and_unknown_ones_list_the_known() -> None:
    assert resolve_subset("corpusqa", None, ("128K", "1M"), "128K") == "128K"
    assert resolve_subset("corpusqa", "1m", ("128K", "1M"), "128K") == "1M"
    with pytest.raises(ConfigError, match=r"unknown subset '2M'.*known: 128K, 1M"):
        resolve_subset("corpusqa", "2M", ("128K", "1M"), "128K")


def test_number_text_is_python_repr() -> None:
    assert [number_text(v) for v in (12, 12.0, 0.1, 1e-05, -3.25)] == [
        "12",
        "12.0",
        "0.1",
        "1e-05",
        "-3.25",
    ]
