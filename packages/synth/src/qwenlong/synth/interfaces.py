"""The seams of qwenlong.synth: corpus in, verifiable `TaskSample`s out.

    corpus (Documents)  ->  generators  ->  candidate TaskSamples (question, answers, provenance)
                        ->  assembly    ->  long contexts at target token lengths, evidence spread
                        ->  verification, difficulty balancing, dedup, decontamination
                        ->  HF dataset of TaskSamples + report

Generators never see a corpus's ground truth (the fictional world keeps one for tests and
measures); they read documents, as they would a real corpus, and every answer they write is
re-derivable from the documents alone: a graph path, an SQL query, a verified model answer.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from qwenlong.core.interfaces import ChatModel
from qwenlong.core.records import Document, TaskSample

CountTokens = Callable[[str], int]
"""Length of a text in the target tokenizer's tokens."""
CountBatch = Callable[[Sequence[str]], list[int]]
"""Lengths of many texts at once, in order: one call a fast tokenizer spreads over every core."""


@dataclass(frozen=True)
class Triple:
    """One extracted fact: (head, relation, tail) as surface strings, with where it was read."""

    head: str
    relation: str
    """Relation label as written or normalised by the extractor (e.g. "employer", "born in")."""
    tail: str
    doc_id: str
    date: str | None = None
    """When the fact holds or happened, as found in the text (ISO year or date), if any."""
    evidence: str = ""
    """The sentence or infobox line the fact was read from."""
    head_kind: str = ""
    """Entity kind of the head when the source says it (person, organisation, place, event)."""
    tail_kind: str = ""
    """Entity kind of the tail, or "value" for literals (dates, numbers, descriptions)."""


class TripleExtractor(Protocol):
    """Reads facts from a document: a rule extractor for semi-structured text, or an LLM."""

    name: str

    def extract(self, docs: Sequence[Document]) -> list[list[Triple]]:
        """Triples per document, in input order. Batched so LLM extractors run concurrently."""
        ...


@dataclass
class Corpus:
    """The documents synthesis reads, indexed by id, with token counts in the target tokenizer."""

    documents: list[Document]
    count_tokens: CountTokens
    count_batch: CountBatch | None = None
    """Counts many texts in one call; None counts them one at a time with `count_tokens`."""
    additive_at_word_ends: bool = False
    """Whether count(x + y) == count(x) + count(y) whenever x ends with an ASCII letter and y
    starts with a space or a newline. Then assembly counts a finished context from its
    documents' known counts and the text around each join instead of encoding it whole
    (`assemble.joins`), trusting the documents' cached `n_tokens` as exact.
    `assemble.word_ends.tokenizer_corpus` sets it only for tokenizers whose structure proves
    it; a wrong True gives wrong lengths."""
    by_id: dict[str, Document] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {d.id: d for d in self.documents}

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Token counts of `texts`, in one batch call where the corpus has one."""
        if self.count_batch is not None:
            return self.count_batch(texts)
        return [self.count_tokens(text) for text in texts]

    def tokens(self, doc: Document) -> int:
        if doc.n_tokens is None:
            doc.n_tokens = self.count_tokens(doc.text)
        return doc.n_tokens


@dataclass
class GenerationContext:
    """What every generator receives besides the corpus."""

    rng: random.Random
    llm: ChatModel | None = None
    """When None, generators use their rule and template paths only."""
    log: Callable[[str], None] = print


class GeneratorStats(Protocol):
    """What a generator counted in its last run, as written to candidates/<name>.json."""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready counts in a stable order, so a rerun writes an identical file."""
        ...


class Counts(Counter[str]):
    """Named counts as `GeneratorStats`: a Counter whose `as_dict` keeps insertion order.

    For generators whose statistics are plain tallies (made per task type, draws discarded per
    reason), and empty for generators that have nothing to count.
    """

    def as_dict(self) -> dict[str, object]:
        return dict(self)


class Generator(Protocol):
    """Turns a corpus into candidate samples (context not yet assembled).

    Candidates name the documents their answer rests on in `provenance.source_documents`; the
    assembly stage builds the long context from those plus distractors. A generator that makes
    its own long input (dialogue memory) fills `context` and leaves `source_documents` empty.

    The pipeline reads `mode` and `stats` once `generate` has been consumed, for the report and
    the candidates/<name>.json file that lets a resumed run skip the generator.
    """

    name: str

    @property
    def mode(self) -> str:
        """How the last run went, e.g. "template", "template+llm_rewrite", "skipped (no LLM)"."""
        ...

    @property
    def stats(self) -> GeneratorStats:
        """What the last run counted (empty `Counts` when the generator counts nothing)."""
        ...

    def generate(self, corpus: Corpus, ctx: GenerationContext) -> Iterator[TaskSample]: ...


DROP_REASONS = (
    "too_long",
    "short_corpus",
    "length_mismatch",
    "grounding",
    "robustness",
    "unbalanced",
    "duplicate",
    "contaminated",
)
"""Reasons the assembly, verification and filter stages give, in pipeline order. Other stages
may use their own reason strings; the report lists every reason it is given."""


@dataclass(frozen=True)
class Drop:
    """A sample removed by a stage, and why: one row of the report's drop table."""

    sample_id: str
    reason: str
    """One of DROP_REASONS, or a stage's own reason."""
    stage: str
    """The stage that removed it: assemble, verify, balance, dedup, decontam, ..."""
    detail: str = ""
    """Specifics for auditing: the duplicate's id, the overlapping n-gram, the pass count."""
    task_type: str = ""
    generator: str = ""

    @classmethod
    def of(cls, sample: TaskSample, reason: str, stage: str, detail: str = "") -> Drop:
        """A drop of `sample`, carrying its task type and generator for the report's breakdowns."""
        return cls(sample.id, reason, stage, detail, sample.task_type, sample.provenance.generator)
