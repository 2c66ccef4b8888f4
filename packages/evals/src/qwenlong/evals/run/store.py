"""Append-only JSONL of finished predictions, keyed by sample id: what makes eval runs resumable.

Each finished chunk of questions is appended and flushed at once, so a killed run loses at most
the chunk in flight. On reopening, a torn last line (the kill landed mid-write) is cut off and
its questions count as pending; a corrupt line anywhere else is an error, since silently
dropping finished work would make the resumed scores differ from an uninterrupted run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qwenlong.core.errors import DatasetError


class PredictionStore:
    """Predictions of one benchmark run: `{"id": ..., "outputs": [...], ...}` per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, dict[str, Any]] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        good_bytes = 0
        for number, line in enumerate(lines, start=1):
            is_last = number == len(lines)
            if not line.strip():
                good_bytes += len(line) + (0 if is_last else 1)
                continue
            try:
                record = json.loads(line)
                sample_id = record["id"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                if is_last:  # torn by a kill mid-write: drop it, those questions are pending
                    break
                raise DatasetError(
                    f"{self.path}:{number}: corrupt prediction line ({err})"
                ) from err
            if is_last:  # a complete JSON object without its newline: keep it, mend the file
                self._records[sample_id] = record
                good_bytes += len(line)
                with self.path.open("ab") as handle:
                    handle.write(b"\n")
                good_bytes += 1
                break
            self._records[sample_id] = record
            good_bytes += len(line) + 1
        if good_bytes < len(raw):
            with self.path.open("r+b") as handle:
                handle.truncate(good_bytes)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._records

    def __len__(self) -> int:
        return len(self._records)

    def get(self, sample_id: str) -> dict[str, Any] | None:
        return self._records.get(sample_id)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Write finished records durably (flush + fsync) before they count as done."""
        fresh = [r for r in records if r["id"] not in self._records]
        if not fresh:
            return
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fresh)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        for record in fresh:
            self._records[record["id"]] = record
