"""The per-sample trace: every memory and plan the agent wrote, as JSONL, resumable by sample id.

    {"kind": "step", "sample_id": ..., "lane": 0, "step": 3, "memory": ..., "plan": ..., ...}
    {"kind": "result", "id": ..., "outputs": [{"lane": 0, "text": ..., "n_steps": 9, ...}]}

Steps are appended and flushed as they happen, so a long run can be inspected while it goes and
the agent never holds a sample's history in memory. A sample counts as done when its result
line is on disk (flushed and fsynced). Reopening drops what an interrupted run left half-done,
the step lines of samples without a result and a torn last line, streaming the file line by
line, so a resumed run appends to a trace that reads like an uninterrupted one's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qwenlong.core.atomic_files import atomic_writer
from qwenlong.core.errors import DatasetError
from qwenlong.memagent.interfaces import AgentResult, AgentStep


def result_to_dict(result: AgentResult) -> dict[str, Any]:
    """An `AgentResult` without its step list (steps are separate trace lines), JSON-ready."""
    record = asdict(result)
    del record["steps"], record["sample_id"]
    return record


class TraceStore:
    """RUN/trace.jsonl, a `StepObserver`: appends steps and results, knows which ids are done."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._results: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()
        self._handle = self.path.open("a", encoding="utf-8")

    def on_step(self, step: AgentStep) -> None:
        """Append one step line and flush it (visible to readers at once)."""
        self._write({"kind": "step", **step.to_dict()})
        self._handle.flush()

    def on_result(self, sample_id: str, results: Sequence[AgentResult]) -> None:
        """Append the sample's result line durably: from now on the sample is done."""
        record = {
            "kind": "result",
            "id": sample_id,
            "outputs": [result_to_dict(r) for r in results],
        }
        self._write(record)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._results[sample_id] = record

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._results

    def __len__(self) -> int:
        return len(self._results)

    def result(self, sample_id: str) -> dict[str, Any] | None:
        """The result line of a finished sample, or None."""
        return self._results.get(sample_id)

    def iter_steps(self, sample_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Step lines in file order (of one sample when `sample_id` is given), streamed."""
        self._handle.flush()
        for _, record in _read_lines(self.path):
            if record["kind"] == "step" and sample_id in (None, record["sample_id"]):
                yield record

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _load(self) -> None:
        """Find the finished samples, then rewrite the file without unfinished work if any."""
        for _, record in _read_lines(self.path):
            if record["kind"] == "result":
                self._results[record["id"]] = record
        finished = self._finished
        unfinished = any(not finished(record) for _, record in _read_lines(self.path))
        if not unfinished and _ends_with_newline(self.path):
            return
        records = [record for _, record in _read_lines(self.path) if finished(record)]
        with atomic_writer(self.path) as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _finished(self, record: dict[str, Any]) -> bool:
        """A result line, or a step of a sample whose result line exists."""
        return record["kind"] == "result" or record["sample_id"] in self._results


def _ends_with_newline(path: Path) -> bool:
    """Whether the file is empty or its last byte is a newline (no torn line at the end)."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of every complete line; a torn last line is skipped, a corrupt
    line elsewhere fails naming the file and line."""
    with path.open("rb") as handle:
        number = 0
        for raw in handle:
            number += 1
            complete = raw.endswith(b"\n")
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                if not complete:
                    return
                raise DatasetError(f"{path}:{number}: corrupt trace line ({err})") from None
            if not isinstance(record, dict) or record.get("kind") not in ("step", "result"):
                raise DatasetError(f"{path}:{number}: not a trace record (kind step or result)")
            yield number, record
