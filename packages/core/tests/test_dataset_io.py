"""TaskSample/Document parquet round trips and the one-line errors of validation on load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from qwenlong.core import dataset_io
from qwenlong.core.dataset_io import (
    DOCUMENT_FEATURES,
    SAMPLE_FEATURES,
    dataset_to_samples,
    iter_samples,
    read_documents,
    read_samples,
    samples_to_dataset,
    write_documents,
    write_samples,
)
from qwenlong.core.errors import DatasetError
from qwenlong.core.records import SCHEMA_VERSION, Document, Provenance, TaskSample

FULL = TaskSample(
    id="kg-0001",
    task_type="multihop",
    question="Which river flows through the city where Ada was born?",
    answers=["Thames", "River Thames"],
    answer_kind="text",
    instruction="Answer with the name only.",
    context="Ada was born in London. Ünïcode ✓.",
    documents=["doc a", "doc b"],
    choices=["A) x", "B) y"],
    provenance=Provenance(
        generator="kg_multihop",
        source_documents=["d1", "d2"],
        reasoning_chain=["Ada -born in-> London", "London -river-> Thames"],
        sql="SELECT 1",
    ),
    context_tokens=12345,
    difficulty=0.25,
    meta={"z": "last key first", "a": "1", "empty": ""},
)


def sample(i: int, **changes: object) -> TaskSample:
    base = TaskSample(id=f"s{i}", task_type="mc", question=f"q{i}", answers=["A"])
    return dataclasses.replace(base, **changes)


def arrow_table(samples: list[TaskSample]) -> pa.Table:
    return samples_to_dataset(samples).with_format("arrow")[:]


def with_column(table: pa.Table, name: str, values: list[object], type: pa.DataType) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, name, pa.array(values, type=type))


def load_error(table: pa.Table, path: Path) -> str:
    pq.write_table(table, path)
    with pytest.raises(DatasetError) as info:
        read_samples(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"dataset error: {path}")
    return message


def test_round_trip_every_field_set(tmp_path: Path) -> None:
    path = write_samples([FULL], tmp_path / "full.parquet")
    [back] = read_samples(path)
    assert back == FULL
    assert list(back.meta) == ["z", "a", "empty"]  # insertion order survives


def test_round_trip_defaults_keep_none(tmp_path: Path) -> None:
    numerical = TaskSample(id="n", task_type="numerical", question="How many?", answers=[])
    path = write_samples([sample(0), numerical], tmp_path / "d.parquet")
    back = read_samples(path)
    assert back == [sample(0), numerical]
    assert back[1].context_tokens is None and back[1].difficulty is None
    assert back[1].answers == [] and back[1].provenance == Provenance()


def test_schema_covers_every_record_field_plus_version() -> None:
    sample_fields = {f.name for f in dataclasses.fields(TaskSample)}
    assert set(SAMPLE_FEATURES) == sample_fields | {"schema_version"}
    assert set(SAMPLE_FEATURES["provenance"]) == {f.name for f in dataclasses.fields(Provenance)}
    assert set(DOCUMENT_FEATURES) == {f.name for f in dataclasses.fields(Document)} | {
        "schema_version"
    }


def test_file_carries_version_and_hf_features(tmp_path: Path) -> None:
    path = write_samples([FULL, sample(1)], tmp_path / "x.parquet")
    table = pq.read_table(path)
    assert table["schema_version"].to_pylist() == [SCHEMA_VERSION] * 2
    ds = load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "c"))
    assert ds.features == SAMPLE_FEATURES
    assert dataset_to_samples(ds, "hub:x") == [FULL, sample(1)]


def test_writer_streams_in_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_io, "WRITE_BATCH_ROWS", 4)
    path = write_samples((sample(i) for i in range(10)), tmp_path / "g.parquet")
    assert pq.ParquetFile(path).metadata.num_row_groups == 3  # 4 + 4 + 2
    assert [s.id for s in read_samples(path)] == [f"s{i}" for i in range(10)]


def test_empty_iterable_writes_a_readable_empty_file(tmp_path: Path) -> None:
    path = write_samples([], tmp_path / "empty.parquet")
    assert read_samples(path) == []


def test_directory_of_shards_is_read_in_sorted_order(tmp_path: Path) -> None:
    data = tmp_path / "ds" / "data"
    write_samples([sample(2), sample(3)], data / "train-00001-of-00002.parquet")
    write_samples([sample(0), sample(1)], data / "train-00000-of-00002.parquet")
    write_samples([sample(9)], tmp_path / "ds" / ".cache" / "stale.parquet")  # hidden: skipped
    assert [s.id for s in read_samples(tmp_path / "ds")] == ["s0", "s1", "s2", "s3"]
    assert [s.id for s in iter_samples(data)] == ["s0", "s1", "s2", "s3"]


def test_error_in_a_shard_names_that_shard_and_its_own_row(tmp_path: Path) -> None:
    write_samples([sample(0)], tmp_path / "a.parquet")
    bad = arrow_table([sample(1), sample(2)])
    bad = with_column(bad, "task_type", ["mc", ""], pa.string())
    pq.write_table(bad, tmp_path / "b.parquet")
    with pytest.raises(DatasetError, match=r"b\.parquet row 1: field 'task_type' is empty"):
        read_samples(tmp_path)


def test_hf_dataset_round_trip_respects_selection() -> None:
    ds = samples_to_dataset([sample(0), FULL, sample(2)])
    assert dataset_to_samples(ds, "mem") == [sample(0), FULL, sample(2)]
    assert dataset_to_samples(ds.select([2, 1]), "mem") == [sample(2), FULL]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        read_samples(tmp_path / "x.parquet")
    assert str(info.value) == f"dataset error: {tmp_path / 'x.parquet'}: no such file"


def test_directory_without_parquet_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no data here")
    with pytest.raises(DatasetError, match="no parquet files in this directory"):
        read_samples(tmp_path)


def test_not_parquet(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("id,question\n")
    with pytest.raises(DatasetError, match="not a readable parquet file"):
        read_samples(tmp_path / "x.parquet")


def test_missing_column(tmp_path: Path) -> None:
    table = arrow_table([sample(0)]).drop_columns(["answers"])
    assert load_error(table, tmp_path / "t.parquet").endswith(": field 'answers' is missing")


def test_column_of_wrong_type(tmp_path: Path) -> None:
    table = with_column(arrow_table([sample(0)]), "answers", ["A"], pa.string())
    message = load_error(table, tmp_path / "t.parquet")
    assert message.endswith("field 'answers' has type string, expected list<string>")


def test_struct_field_missing(tmp_path: Path) -> None:
    prov = pa.array([{"generator": "g", "source_documents": [], "reasoning_chain": []}])
    table = with_column(arrow_table([sample(0)]), "provenance", prov.to_pylist(), prov.type)
    assert load_error(table, tmp_path / "t.parquet").endswith("field 'provenance.sql' is missing")


def test_unknown_columns_are_named(tmp_path: Path) -> None:
    table = arrow_table([sample(0)]).append_column("extra", pa.array([1]))
    assert load_error(table, tmp_path / "t.parquet").endswith("unknown field 'extra'")


def test_null_in_required_field_names_the_row(tmp_path: Path) -> None:
    questions: list[str | None] = [f"q{i}" for i in range(8)]
    questions[7] = None
    table = with_column(
        arrow_table([sample(i) for i in range(8)]), "question", questions, pa.string()
    )
    assert load_error(table, tmp_path / "t.parquet").endswith("row 7: field 'question' is null")


def test_empty_string_where_not_allowed(tmp_path: Path) -> None:
    kinds = ["mc", "mc", "mc", "", "mc"]
    table = with_column(arrow_table([sample(i) for i in range(5)]), "task_type", kinds, pa.string())
    assert load_error(table, tmp_path / "t.parquet").endswith("row 3: field 'task_type' is empty")


def test_answer_kind_outside_the_known_kinds(tmp_path: Path) -> None:
    kinds = ["text", "choice", "float"]
    table = with_column(
        arrow_table([sample(i) for i in range(3)]), "answer_kind", kinds, pa.string()
    )
    message = load_error(table, tmp_path / "t.parquet")
    assert message.endswith(
        "row 2: answer_kind 'float' is not one of text, choice, number, sequence"
    )


def test_empty_answers_only_for_numerical(tmp_path: Path) -> None:
    samples = [sample(0, task_type="numerical", answers=[]), sample(1, task_type="multihop")]
    answers: list[list[str]] = [[], []]
    table = with_column(arrow_table(samples), "answers", answers, pa.list_(pa.string()))
    message = load_error(table, tmp_path / "t.parquet")
    assert message.endswith("row 1: field 'answers' is empty for task 'multihop'")


def test_null_list_item(tmp_path: Path) -> None:
    answers = [["A"], ["B"], ["C", None]]
    table = with_column(
        arrow_table([sample(i) for i in range(3)]), "answers", answers, pa.list_(pa.string())
    )
    assert load_error(table, tmp_path / "t.parquet").endswith(
        "row 2: field 'answers' has a null item"
    )


def test_duplicate_meta_key(tmp_path: Path) -> None:
    meta = [[{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]]
    table = with_column(
        arrow_table([sample(0)]), "meta", meta, SAMPLE_FEATURES.arrow_schema.field("meta").type
    )
    assert load_error(table, tmp_path / "t.parquet").endswith(
        "row 0: field 'meta' has key 'k' twice"
    )


def test_negative_token_count(tmp_path: Path) -> None:
    table = with_column(arrow_table([sample(0), sample(1)]), "context_tokens", [5, -3], pa.int64())
    message = load_error(table, tmp_path / "t.parquet")
    assert message.endswith("row 1: field 'context_tokens' is negative (-3)")


def test_newer_schema_version(tmp_path: Path) -> None:
    table = with_column(
        arrow_table([sample(0)]), "schema_version", [SCHEMA_VERSION + 1], pa.int64()
    )
    message = load_error(table, tmp_path / "t.parquet")
    assert (
        message
        == f"dataset error: {tmp_path / 't.parquet'}: schema_version 2 is newer than this code (1)"
    )


def test_row_numbers_count_across_read_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataset_io, "READ_BATCH_ROWS", 4)
    kinds = ["mc"] * 10
    kinds[9] = ""
    table = with_column(
        arrow_table([sample(i) for i in range(10)]), "task_type", kinds, pa.string()
    )
    assert load_error(table, tmp_path / "t.parquet").endswith("row 9: field 'task_type' is empty")


def test_wider_physical_types_are_accepted(tmp_path: Path) -> None:
    table = arrow_table([sample(0, context_tokens=7)])
    table = with_column(table, "context", [""], pa.large_string())
    table = with_column(table, "context_tokens", [7], pa.int32())
    table = with_column(table, "difficulty", [None], pa.null())
    pq.write_table(table, tmp_path / "t.parquet")
    assert read_samples(tmp_path / "t.parquet") == [sample(0, context_tokens=7)]


def test_bad_record_fails_at_write_and_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    with pytest.raises(DatasetError) as info:
        write_samples([sample(0), sample(1, answers="Paris")], target)
    assert str(info.value) == (
        f"dataset error: {target} row 1: field 'answers' has type str, expected list<string>"
    )
    assert list(tmp_path.iterdir()) == []


def test_write_names_mistyped_nested_field(tmp_path: Path) -> None:
    bad = sample(0, provenance=Provenance(source_documents=[1, 2]))  # type: ignore[list-item]
    with pytest.raises(
        DatasetError, match=r"row 0: field 'provenance\.source_documents' has type list"
    ):
        write_samples([bad], tmp_path / "o.parquet")
    with pytest.raises(
        DatasetError, match="row 0: field 'context_tokens' has type str, expected int64"
    ):
        write_samples([sample(0, context_tokens="5")], tmp_path / "o.parquet")


def test_in_memory_dataset_errors_name_their_source() -> None:
    with pytest.raises(
        DatasetError, match=r"^dataset error: hub:foo row 0: field 'question' is empty"
    ):
        dataset_to_samples(
            samples_to_dataset([sample(0)]).map(lambda r: {"question": ""}), "hub:foo"
        )


def test_documents_round_trip_and_validation(tmp_path: Path) -> None:
    docs = [
        Document(
            id="d1",
            text="Body.",
            domain="code",
            title="T",
            source="a.py",
            n_tokens=3,
            meta={"lang": "py"},
        ),
        Document(id="d2", text=""),
    ]
    assert read_documents(write_documents(docs, tmp_path / "docs.parquet")) == docs
    with pytest.raises(DatasetError, match=r"row 0: field 'id' is empty"):
        write_documents([Document(id="", text="x")], tmp_path / "bad.parquet")
    with pytest.raises(DatasetError, match="field 'task_type' is missing"):
        read_samples(tmp_path / "docs.parquet")


def test_a_killed_writers_temporary_file_goes_with_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    killed = tmp_path / ".data.parquet.tmp-999999"  # a writer killed mid-write leaves this
    killed.write_bytes(b"half a parquet file")
    write_samples([FULL], path)
    assert read_samples(path) == [FULL]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.parquet"]
