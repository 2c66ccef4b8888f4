"""Extracted triples on disk, appended per batch of documents: extraction resumes by document id.

Extraction is the stage that costs LLM calls per document, so it is the one that must never be
repeated for a finished document after a kill. Each line holds one document's triples (possibly
none), written after the whole batch came back.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from qwenlong.core.errors import DatasetError
from qwenlong.synth.interfaces import Triple


class TripleStore:
    """`{"doc_id": ..., "triples": [...]}` per line; a torn last line is cut off on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._by_doc: dict[str, list[Triple]] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        keep = 0
        for number, line in enumerate(raw.splitlines(keepends=True), start=1):
            if not line.endswith(b"\n"):  # torn by a kill: those documents are extracted again
                break
            try:
                record = json.loads(line)
                self._by_doc[record["doc_id"]] = [Triple(**t) for t in record["triples"]]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise DatasetError(f"{self.path}:{number}: corrupt triple record ({err})") from err
            keep += len(line)
        if keep < len(raw):
            with self.path.open("r+b") as handle:
                handle.truncate(keep)

    def done(self, doc_id: str) -> bool:
        return doc_id in self._by_doc

    def append(self, doc_ids: Sequence[str], triples: Sequence[Sequence[Triple]]) -> None:
        lines = [
            json.dumps({"doc_id": d, "triples": [dataclasses.asdict(t) for t in ts]}) + "\n"
            for d, ts in zip(doc_ids, triples, strict=True)
        ]
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        self._by_doc.update(zip(doc_ids, (list(ts) for ts in triples), strict=True))

    def triples(self, doc_ids: Iterable[str] | None = None) -> list[Triple]:
        """All stored triples, in the order of `doc_ids` (default: insertion order)."""
        order = self._by_doc if doc_ids is None else doc_ids
        return [t for d in order for t in self._by_doc.get(d, [])]
