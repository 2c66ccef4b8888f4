"""Reading benchmark files (json, jsonl, parquet, tsv) into rows that know where they came from.

Every benchmark ships in a different container, and a malformed record deep inside a 2 GB file
must fail with a message a person can act on: which file, which record, which field. `Row`
carries its location and raises `DatasetError` with that location from its typed accessors, so
the loaders never format error locations themselves.

Locations are written the same way everywhere: jsonl records by their 1-based line number
("line 12"); json, parquet and tsv records by their 0-based position among the records, with
"(0-based)" spelled out in the message.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenlong.core.errors import DatasetError, first_line
from qwenlong.core.registry import Registry

_MISSING = object()


@dataclass(frozen=True)
class Row:
    """One record of a benchmark file, plus where it is, for error messages."""

    values: Mapping[str, Any]
    where: str
    """"data.json row 3 (0-based)" or "hotpotqa.jsonl line 12": prefixed to every error."""

    def error(self, message: str) -> DatasetError:
        """A `DatasetError` that names this row; the caller raises it."""
        return DatasetError(f"{self.where}: {message}")

    def has(self, key: str) -> bool:
        return key in self.values and self.values[key] is not None

    def raw(self, key: str) -> Any:
        """The value of a required field, of any type."""
        value = self.values.get(key, _MISSING)
        if value is _MISSING or value is None:
            raise self.error(f"missing field {key!r}")
        return value

    def text(self, key: str, *, allow_empty: bool = False) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise self.error(f"field {key!r} must be a string, got {_type_name(value)}")
        if not allow_empty and not value.strip():
            raise self.error(f"field {key!r} is empty")
        return value

    def optional_text(self, key: str) -> str:
        """A string field that may be absent or null (then ""); other types are still errors."""
        if not self.has(key):
            return ""
        value = self.values[key]
        if not isinstance(value, str):
            raise self.error(f"field {key!r} must be a string, got {_type_name(value)}")
        return value

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"field {key!r} must be an integer, got {_type_name(value)}")
        return value

    def number(self, key: str) -> float:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"field {key!r} must be a number, got {_type_name(value)}")
        return float(value)

    def text_list(self, key: str, *, allow_empty: bool = False) -> list[str]:
        value = self.raw(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(f"field {key!r} must be a list of strings, got {_type_name(value)}")
        if not allow_empty and not value:
            raise self.error(f"field {key!r} is an empty list")
        return value

    def one_of(self, key: str, allowed: Iterable[str]) -> str:
        value = self.text(key)
        options = tuple(allowed)
        if value not in options:
            raise self.error(f"field {key!r} must be one of {', '.join(options)}, got {value!r}")
        return value


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _as_record(value: Any, where: str) -> Row:
    if not isinstance(value, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {_type_name(value)}")
    return Row(value, where)


def jsonl_rows(lines: Iterable[str], label: str) -> Iterator[Row]:
    """Rows of JSON Lines text; `label` names the source ("x.jsonl" or "data.zip:data/x.jsonl").

    Blank lines are skipped; a source with no record at all is an error, since every benchmark
    file the loaders read is supposed to hold at least one question.
    """
    count = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{label} line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{where}: unreadable JSON ({err.msg}, column {err.colno})") from err
        count += 1
        yield _as_record(value, where)
    if count == 0:
        raise DatasetError(f"{label}: file is empty")


def _read_jsonl(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8") as handle:
        yield from jsonl_rows(handle, str(path))


def _read_json(path: Path) -> Iterator[Row]:
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise DatasetError(f"{path}: file is empty")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetError(
            f"{path}: unreadable JSON ({err.msg}, line {err.lineno} column {err.colno})"
        ) from err
    if not isinstance(value, list):
        raise DatasetError(f"{path}: expected a JSON list of records, got {_type_name(value)}")
    if not value:
        raise DatasetError(f"{path}: file is empty (an empty JSON list)")
    for index, item in enumerate(value):
        yield _as_record(item, f"{path} row {index} (0-based)")


def _read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"{path}: unreadable parquet ({first_line(err)})") from err
    if parquet.metadata.num_rows == 0:
        raise DatasetError(f"{path}: file is empty (no rows)")
    index = 0
    # Batches keep memory bounded: MRCR shards are ~0.5 GB of text each.
    for batch in parquet.iter_batches(batch_size=64):
        for record in batch.to_pylist():
            yield Row(record, f"{path} row {index} (0-based)")
            index += 1


def _read_tsv(path: Path) -> Iterator[Row]:
    # Frames prompts and answers are long and may hold quoted newlines.
    csv.field_size_limit(2**31 - 1)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if not reader.fieldnames:
            raise DatasetError(f"{path}: file is empty")
        count = 0
        for index, record in enumerate(reader):
            if None in record:
                raise DatasetError(
                    f"{path} row {index} (0-based): more cells than the header has columns"
                )
            count += 1
            yield Row(record, f"{path} row {index} (0-based)")
        if count == 0:
            raise DatasetError(f"{path}: file has a header but no rows")


READERS: Registry[Callable[[Path], Iterator[Row]]] = Registry("benchmark file format")
READERS.add(".json", _read_json)
READERS.add(".jsonl", _read_jsonl)
READERS.add(".parquet", _read_parquet)
READERS.add(".tsv", _read_tsv)


def read_rows(path: Path) -> Iterator[Row]:
    """Rows of one benchmark file, chosen by its extension (see `READERS`).

    Checks run before the first row is produced, so a missing file or an unknown format fails
    at the call, not at the first iteration.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise DatasetError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; "
            f"expected one of {', '.join(READERS.names())}"
        )
    return READERS.get(suffix)(path)


def require_path(path: Path, what: str) -> Path:
    """`path` itself if it exists; otherwise a `DatasetError` naming what was expected there."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder (expected {what})")
    return path


def find_files(folder: Path, candidates: Iterable[str]) -> list[Path]:
    """All files matching the first of `candidates` (glob patterns under `folder`) that matches.

    Candidates are tried in order, so a loader lists the published layout first and the
    fallbacks after it; sharded parquet (`x-00000-of-00002.parquet`, ...) comes back whole.
    """
    for pattern in candidates:
        matches = sorted(p for p in folder.glob(pattern) if p.is_file())
        if matches:
            return matches
    return []
