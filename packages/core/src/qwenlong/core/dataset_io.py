"""TaskSample and Document records as parquet, written through HF `datasets`, validated on load.

One row per record, one column per dataclass field, plus `schema_version` (records.SCHEMA_VERSION)
so a file written by newer code is refused rather than misread. `Provenance` is a struct column.
`meta` (a dict whose keys vary row to row) is stored as a list of `{key, value}` structs: unlike a
JSON string it stays typed and queryable in pyarrow/DuckDB, and unlike a struct it needs no fixed
key set; insertion order is kept, so it round-trips exactly. Files carry HF feature metadata, so
`load_dataset("parquet", ...)` sees the same types.

Validation runs on every batch read (and on every batch written, so bad data fails at its
source): column types against the pyarrow schema once per file, then per-row rules as vectorised
pyarrow compute calls, so 100K rows cost a few hundred array operations, not a Python loop of
checks. Every failure is one `DatasetError` line naming the file, the 0-based row and the field.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets import Dataset, Features, List, Value
from datasets.arrow_writer import ParquetWriter

from qwenlong.core.errors import DatasetError, first_line
from qwenlong.core.records import ANSWER_KINDS, SCHEMA_VERSION, Document, Provenance, TaskSample

R = TypeVar("R")

WRITE_BATCH_ROWS = 256
"""Rows per write batch and parquet row group. Long-context samples are ~0.5 MB each, so this
bounds writer memory near 128 MB while keeping row groups large enough to read fast."""
READ_BATCH_ROWS = 512
"""Rows per validated read batch: large enough that vectorised checks dominate, small enough
that a file of long contexts is never held whole in memory by `iter_samples`."""


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t)


def _is_meta(t: pa.DataType) -> bool:
    item = t.value_type if _is_list(t) else None
    fields = list(item) if item is not None and pa.types.is_struct(item) else []
    return [f.name for f in fields] == ["key", "value"] and all(_is_string(f.type) for f in fields)


class _Kind(NamedTuple):
    expected: str
    """The type as error messages name it."""
    accepts: Callable[[pa.DataType], bool]
    """Arrow types read without complaint. Wider physical types (large_string, int32, ...) pass:
    other writers pick them, and the values are the same."""
    feature: Any
    """The HF feature written (None for struct, built from the children)."""


_KINDS: dict[str, _Kind] = {
    "string": _Kind("string", _is_string, Value("string")),
    "strings": _Kind(
        "list<string>", lambda t: _is_list(t) and _is_string(t.value_type), List(Value("string"))
    ),
    "int": _Kind("int", pa.types.is_integer, Value("int64")),
    "float": _Kind(
        "float", lambda t: pa.types.is_floating(t) or pa.types.is_integer(t), Value("float64")
    ),
    "meta": _Kind(
        "list<struct<key: string, value: string>>",
        _is_meta,
        List({"key": Value("string"), "value": Value("string")}),
    ),
    "struct": _Kind("struct", pa.types.is_struct, None),
}


def _type_name(t: pa.DataType) -> str:
    """Arrow type in the same short notation as the expected types (`list<string>`)."""
    if _is_list(t):
        return f"list<{_type_name(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(f"{f.name}: {_type_name(f.type)}" for f in t) + ">"
    return str(t)


@dataclass(frozen=True)
class _Column:
    """What one column must hold. `children` are the fields of a struct column."""

    name: str
    kind: str
    nullable: bool = False
    nonempty: bool = False
    nonnegative: bool = False
    children: tuple[_Column, ...] = ()

    @property
    def feature(self) -> Any:
        if self.children:
            return {child.name: child.feature for child in self.children}
        return _KINDS[self.kind].feature


def _fail(where: str, row: int | None, message: str) -> DatasetError:
    return DatasetError(f"{where}: {message}" if row is None else f"{where} row {row}: {message}")


def _first(mask: pa.ChunkedArray | pa.Array) -> int:
    """Index of the first True in a boolean array (nulls count as False), or -1."""
    return pc.index(mask, True).as_py()


def _check_type(col: _Column, t: pa.DataType, where: str, name: str) -> None:
    if col.nullable and pa.types.is_null(t):
        return
    if not _KINDS[col.kind].accepts(t):
        expected = _KINDS[col.kind].expected
        if col.children:
            expected = "struct<" + ", ".join(c.name for c in col.children) + ">"
        raise _fail(where, None, f"field {name!r} has type {_type_name(t)}, expected {expected}")
    if col.children:
        have = {f.name: f.type for f in t}
        _check_names([c.name for c in col.children], list(have), where, prefix=f"{name}.")
        for child in col.children:
            _check_type(child, have[child.name], where, f"{name}.{child.name}")


def _check_names(expected: list[str], present: list[str], where: str, prefix: str = "") -> None:
    missing = [n for n in expected if n not in present]
    if missing:
        raise _fail(where, None, f"field '{prefix}{missing[0]}' is missing")
    unknown = [f"'{prefix}{n}'" for n in present if n not in expected]
    if unknown:
        raise _fail(
            where, None, f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
        )


def _check_values(col: _Column, arr: pa.ChunkedArray, where: str, offset: int, name: str) -> None:
    """Per-row checks of one column, each a vectorised pass; raises at the first bad row."""
    if not col.nullable and arr.null_count:
        raise _fail(where, offset + _first(pc.is_null(arr)), f"field {name!r} is null")
    if pa.types.is_null(arr.type):
        return
    if col.nonempty and (row := _first(pc.equal(pc.utf8_length(arr), 0))) >= 0:
        raise _fail(where, offset + row, f"field {name!r} is empty")
    if col.nonnegative and (row := _first(pc.less(arr, 0))) >= 0:
        raise _fail(where, offset + row, f"field {name!r} is negative ({arr[row].as_py()})")
    if col.kind in ("strings", "meta"):
        items = pc.list_flatten(arr)
        problems = [("item", pc.is_null(items))]
        if col.kind == "meta":
            problems += [
                (part, pc.is_null(pc.struct_field(items, part))) for part in ("key", "value")
            ]
        for what, mask in problems:
            if (item := _first(mask)) >= 0:
                row = pc.list_parent_indices(arr)[item].as_py()
                raise _fail(where, offset + row, f"field {name!r} has a null {what}")
    for child in col.children:
        child_arr = pc.struct_field(arr, child.name)
        _check_values(child, child_arr, where, offset, f"{name}.{child.name}")


def _check_version(arr: pa.ChunkedArray, where: str) -> None:
    bounds = pc.min_max(arr)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if high is not None and high > SCHEMA_VERSION:
        raise _fail(
            where, None, f"schema_version {high} is newer than this code ({SCHEMA_VERSION})"
        )
    if low is not None and low < SCHEMA_VERSION:
        message = f"schema_version {low} is older than this code ({SCHEMA_VERSION}); no migration"
        raise _fail(where, None, message)


def _answer_kind_rule(table: pa.Table, where: str, offset: int) -> None:
    allowed = pc.is_in(table["answer_kind"], value_set=pa.array(ANSWER_KINDS))
    if (row := _first(pc.invert(allowed))) >= 0:
        kind = table["answer_kind"][row].as_py()
        raise _fail(
            where, offset + row, f"answer_kind {kind!r} is not one of {', '.join(ANSWER_KINDS)}"
        )


def _answers_rule(table: pa.Table, where: str, offset: int) -> None:
    """Only a numerical question whose SQL returned nothing may have no gold answer."""
    empty = pc.and_(
        pc.equal(pc.list_value_length(table["answers"]), 0),
        pc.not_equal(table["task_type"], "numerical"),
    )
    if (row := _first(empty)) >= 0:
        task = table["task_type"][row].as_py()
        raise _fail(where, offset + row, f"field 'answers' is empty for task {task!r}")


_VERSION = _Column("schema_version", "int")
_META_COL = _Column("meta", "meta")


def _meta_dict(items: list[dict[str, str]], where: str, row: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if item["key"] in out:
            raise _fail(where, row, f"field 'meta' has key {item['key']!r} twice")
        out[item["key"]] = item["value"]
    return out


@dataclass(frozen=True)
class _Format(Generic[R]):
    """What differs between record types (the I/O code is shared). `columns` follow the
    record's fields in order and end with the schema_version column."""

    record: type[R]
    columns: tuple[_Column, ...]
    structs: Mapping[str, type] = dataclasses.field(default_factory=dict)
    """Struct columns and the dataclass each row of them becomes."""
    row_rules: tuple[Callable[[pa.Table, str, int], None], ...] = ()

    @cached_property
    def features(self) -> Features:
        return Features({col.name: col.feature for col in self.columns})

    @cached_property
    def schema(self) -> pa.Schema:
        return self.features.arrow_schema

    def to_row(self, record: R, where: str, row: int) -> dict[str, Any]:
        """One record as a row dict; shallow (arrow copies the values), so cheap per record."""
        if not isinstance(record, self.record):
            got = type(record).__name__
            raise _fail(where, row, f"got a {got}, expected {self.record.__name__}")
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for col in self.columns[:-1]:
            value = getattr(record, col.name)
            if col.children:
                if not isinstance(value, self.structs[col.name]):
                    got, cls = type(value).__name__, self.structs[col.name].__name__
                    raise _fail(where, row, f"field {col.name!r} has type {got}, expected {cls}")
                value = {child.name: getattr(value, child.name) for child in col.children}
            # Arrow turns a string given for a list<string> into a list of characters; refuse it.
            for child in col.children or (col,):
                inner = value[child.name] if col.children else value
                if child.kind == "strings" and isinstance(inner, str):
                    name = f"{col.name}.{child.name}" if col.children else col.name
                    raise _fail(where, row, f"field {name!r} has type str, expected list<string>")
            out[col.name] = value
        out["meta"] = [{"key": k, "value": v} for k, v in record.meta.items()]  # type: ignore[attr-defined]
        return out

    def from_columns(self, c: dict[str, list[Any]], i: int, where: str, row: int) -> R:
        """Record `i` of a batch held as Python lists per column; `row` is its number in the file."""
        kwargs = {col.name: c[col.name][i] for col in self.columns[:-1]}
        for name, cls in self.structs.items():
            kwargs[name] = cls(**kwargs[name])
        kwargs["meta"] = _meta_dict(kwargs["meta"], where, row)
        return self.record(**kwargs)


SAMPLES = _Format[TaskSample](
    record=TaskSample,
    columns=(
        _Column("id", "string", nonempty=True),
        _Column("task_type", "string", nonempty=True),
        _Column("question", "string", nonempty=True),
        _Column("answers", "strings"),
        _Column("answer_kind", "string"),
        _Column("instruction", "string"),
        _Column("context", "string"),
        _Column("documents", "strings"),
        _Column("choices", "strings"),
        _Column(
            "provenance",
            "struct",
            children=(
                _Column("generator", "string"),
                _Column("source_documents", "strings"),
                _Column("reasoning_chain", "strings"),
                _Column("sql", "string"),
            ),
        ),
        _Column("context_tokens", "int", nullable=True, nonnegative=True),
        _Column("difficulty", "float", nullable=True),
        _META_COL,
        _VERSION,
    ),
    structs={"provenance": Provenance},
    row_rules=(_answer_kind_rule, _answers_rule),
)

DOCUMENTS = _Format[Document](
    record=Document,
    columns=(
        _Column("id", "string", nonempty=True),
        _Column("text", "string"),
        _Column("domain", "string", nonempty=True),
        _Column("title", "string"),
        _Column("source", "string"),
        _Column("n_tokens", "int", nullable=True, nonnegative=True),
        _META_COL,
        _VERSION,
    ),
)


SAMPLE_FEATURES = SAMPLES.features
"""The on-disk schema of a TaskSample file, as HF features (`load_dataset(..., features=...)`)."""
DOCUMENT_FEATURES = DOCUMENTS.features
"""The on-disk schema of a Document file; the same SCHEMA_VERSION covers both record files."""


def _check_schema(fmt: _Format[Any], schema: pa.Schema, where: str) -> None:
    _check_names([c.name for c in fmt.columns], schema.names, where)
    for col in fmt.columns:
        _check_type(col, schema.field(col.name).type, where, col.name)


def _validate(fmt: _Format[Any], table: pa.Table, where: str, offset: int) -> None:
    """Per-row checks of a batch whose schema already passed `_check_schema`."""
    for col in fmt.columns:
        _check_values(col, table[col.name], where, offset, col.name)
    _check_version(table["schema_version"], where)
    for rule in fmt.row_rules:
        rule(table, where, offset)


def _records(fmt: _Format[R], table: pa.Table, where: str, offset: int) -> Iterator[R]:
    _validate(fmt, table, where, offset)
    cols = {c.name: table[c.name].to_pylist() for c in fmt.columns}
    for i in range(table.num_rows):
        yield fmt.from_columns(cols, i, where, offset + i)


def _to_table(fmt: _Format[R], records: list[R], where: str, offset: int) -> pa.Table:
    rows = [fmt.to_row(r, where, offset + i) for i, r in enumerate(records)]
    try:
        table = pa.Table.from_pylist(rows, schema=fmt.schema)
    except _CONVERSION_ERRORS as err:
        # Slow path, taken only once a batch has failed: find the row and field to blame.
        for i, row in enumerate(rows):
            for field in fmt.schema:
                if problem := _blame(row[field.name], field.type, field.name):
                    raise _fail(where, offset + i, problem) from None
        raise _fail(where, offset, f"cannot convert records ({err})") from None
    _validate(fmt, table, where, offset)
    return table


_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError)


def _blame(value: Any, t: pa.DataType, name: str) -> str | None:
    """Why `value` cannot become arrow type `t`, naming the innermost struct field, or None."""
    if pa.types.is_struct(t) and isinstance(value, Mapping):
        for child in t:
            if problem := _blame(value.get(child.name), child.type, f"{name}.{child.name}"):
                return problem
        return None
    try:
        pa.array([value], type=t)
    except _CONVERSION_ERRORS:
        return f"field {name!r} has type {type(value).__name__}, expected {_type_name(t)}"
    return None


def _write(fmt: _Format[R], records: Iterable[R], path: str | Path) -> Path:
    """Stream `records` to `path` in row groups of WRITE_BATCH_ROWS, atomically.

    The file appears under its name only once complete (written to a temporary name, then
    renamed), so a killed writer never leaves a truncated file that looks finished; the
    temporary files of killed writers of the same path are removed once this one is in place
    (one writer per run folder: the run lock).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    writer = ParquetWriter(features=fmt.features, path=str(tmp), writer_batch_size=WRITE_BATCH_ROWS)
    try:
        iterator, offset = iter(records), 0
        while batch := list(islice(iterator, WRITE_BATCH_ROWS)):
            writer.write_table(_to_table(fmt, batch, str(path), offset))
            offset += len(batch)
        writer.finalize()
    except BaseException:
        writer.stream.close()
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    for leftover in path.parent.glob(f".{path.name}.tmp-*"):
        leftover.unlink(missing_ok=True)
    return path


def _parquet_files(path: Path) -> list[Path]:
    """A file, or every *.parquet under a directory (hidden folders skipped) in sorted order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise _fail(str(path), None, "no such file")
    files = sorted(
        p
        for p in path.rglob("*.parquet")
        if not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise _fail(str(path), None, "no parquet files in this directory")
    return files


def _iter(fmt: _Format[R], path: str | Path) -> Iterator[R]:
    for file in _parquet_files(Path(path)):
        where = str(file)
        try:
            parquet = pq.ParquetFile(file)
        except (pa.ArrowInvalid, OSError) as err:
            raise _fail(where, None, f"not a readable parquet file ({first_line(err)})") from None
        _check_schema(fmt, parquet.schema_arrow, where)
        offset = 0
        columns = [c.name for c in fmt.columns]
        for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns):
            yield from _records(fmt, pa.Table.from_batches([batch]), where, offset)
            offset += batch.num_rows


def _from_dataset(fmt: _Format[R], ds: Dataset, where: str) -> list[R]:
    _check_schema(fmt, ds.features.arrow_schema, where)
    out: list[R] = []
    for table in ds.with_format("arrow").iter(batch_size=READ_BATCH_ROWS):
        out.extend(_records(fmt, table, where, len(out)))
    return out


def _to_dataset(fmt: _Format[R], records: Iterable[R], where: str) -> Dataset:
    iterator, tables, offset = iter(records), [], 0
    while batch := list(islice(iterator, WRITE_BATCH_ROWS)):
        tables.append(_to_table(fmt, batch, where, offset))
        offset += len(batch)
    table = pa.concat_tables(tables) if tables else fmt.schema.empty_table()
    return Dataset(table)


def write_samples(samples: Iterable[TaskSample], path: str | Path) -> Path:
    """Write samples to one parquet file (streamed; any iterable, of any length). Returns `path`."""
    return _write(SAMPLES, samples, path)


def iter_samples(path: str | Path) -> Iterator[TaskSample]:
    """Stream validated samples from a parquet file or a directory of parquet shards."""
    return _iter(SAMPLES, path)


def read_samples(path: str | Path) -> list[TaskSample]:
    """All samples of a parquet file or a directory of shards (sorted by path), validated."""
    return list(iter_samples(path))


def samples_to_dataset(samples: Iterable[TaskSample], where: str = "<samples>") -> Dataset:
    """An in-memory HF `Dataset` with the on-disk schema, for `push_to_hub`, `map` and friends."""
    return _to_dataset(SAMPLES, samples, where)


def dataset_to_samples(ds: Dataset, where: str) -> list[TaskSample]:
    """Validate an HF `Dataset` (from `load_dataset`, say); `where` names it in errors."""
    return _from_dataset(SAMPLES, ds, where)


def write_documents(docs: Iterable[Document], path: str | Path) -> Path:
    """Write corpus documents to one parquet file, streamed and atomic. Returns `path`."""
    return _write(DOCUMENTS, docs, path)


def iter_documents(path: str | Path) -> Iterator[Document]:
    """Stream validated documents from a parquet file or a directory of shards."""
    return _iter(DOCUMENTS, path)


def read_documents(path: str | Path) -> list[Document]:
    """All documents of a parquet file or a directory of shards, validated."""
    return list(iter_documents(path))
