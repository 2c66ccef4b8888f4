"""What each type of source document gave a synthesis run, and why some documents gave nothing.

A corpus mixes the fictional world with ingested txt, html, pdf, docx, jsonl... files. Whether a
type is worth feeding the pipeline shows in what it yields: triples extracted from its
documents, questions (candidates) resting on them, and questions kept in the final dataset.
A question counts once for every type among its `provenance.source_documents`; dialogue
samples, which rest on no corpus document, count for none.

Every document that gave no kept question is counted under the first reason that applies:
it was skipped on reading (the reader's reason: "no text layer", or "no text"), extraction
found no triple in it and no generator used it ("no triples extracted"), no generator drew a
question from it ("no question drew on it"), or every question drawn from it was dropped by a
filter or verification ("all its questions dropped").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenlong.core.records import Document, TaskSample
from qwenlong.synth.corpus.ingest import SOURCE_TYPE, SkippedDoc

FICTIONAL = "fictional"
"""Source type of the fictional world's documents (their `source` is "fictional-world:<seed>")."""
NO_TRIPLES = "no triples extracted"
NOT_USED = "no question drew on it"
ALL_DROPPED = "all its questions dropped"


@dataclass
class SourceYield:
    """One source type's documents and what they gave."""

    documents: int = 0
    """Documents of this type in the corpus."""
    skipped: int = 0
    """Files or rows of this type that gave no document (see `none` for why)."""
    triples: int | None = None
    """Triples extracted from these documents; None when extraction read none of them."""
    questions: int = 0
    """Candidate questions resting on at least one document of this type."""
    kept: int = 0
    """Of those, the ones in the final dataset."""
    none: Counter[str] = field(default_factory=Counter)
    """Reason -> documents (and skipped files) of this type that gave no kept question."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents, "skipped": self.skipped, "triples": self.triples,
            "questions": self.questions, "kept": self.kept, "gave_none": dict(self.none),
        }  # fmt: skip


def source_type(doc: Document) -> str:
    """The type a document is counted under: its reader's, else fictional, else "other"."""
    if SOURCE_TYPE in doc.meta:
        return doc.meta[SOURCE_TYPE]
    return FICTIONAL if doc.source.startswith("fictional-world") else "other"


def yield_by_source(
    documents: Sequence[Document],
    skipped: Sequence[SkippedDoc],
    triples: Mapping[str, int],
    candidates: Sequence[TaskSample],
    kept: Sequence[TaskSample],
) -> dict[str, SourceYield]:
    """Source type -> its yield, types sorted by name.

    `triples` maps the id of every document extraction read to its triple count; documents
    missing from it were not extracted (extraction off, or its only consumer disabled).
    """
    types = {doc.id: source_type(doc) for doc in documents}
    asked, held = _uses(candidates, types), _uses(kept, types)
    table: dict[str, SourceYield] = {}
    for doc in documents:
        row = table.setdefault(types[doc.id], SourceYield())
        row.documents += 1
        if doc.id in triples:
            row.triples = (row.triples or 0) + triples[doc.id]
        if held[doc.id]:
            continue
        if asked[doc.id]:
            row.none[ALL_DROPPED] += 1
        elif triples.get(doc.id) == 0:
            row.none[NO_TRIPLES] += 1
        else:
            row.none[NOT_USED] += 1
    for skip in skipped:
        row = table.setdefault(skip.source_type, SourceYield())
        row.skipped += 1
        row.none[skip.reason] += 1
    for samples, attr in ((candidates, "questions"), (kept, "kept")):
        for kind, n in _per_type(samples, types).items():
            row = table.setdefault(kind, SourceYield())
            setattr(row, attr, n)
    return dict(sorted(table.items()))


def _uses(samples: Sequence[TaskSample], types: Mapping[str, str]) -> Counter[str]:
    """Document id -> samples resting on it (ids outside the corpus ignored)."""
    return Counter(
        d for s in samples for d in set(s.provenance.source_documents) if d in types
    )  # fmt: skip


def _per_type(samples: Sequence[TaskSample], types: Mapping[str, str]) -> Counter[str]:
    """Source type -> samples resting on at least one document of that type."""
    return Counter(
        kind
        for s in samples
        for kind in {types[d] for d in s.provenance.source_documents if d in types}
    )
