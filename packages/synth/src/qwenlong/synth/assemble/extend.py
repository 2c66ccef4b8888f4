"""Context extension: a candidate's evidence documents padded with distractors to a token target.

    evidence (the sample's source documents)  +  distractors (other corpus documents)
      -> evidence spread over the context (one per stratum of the distractor tokens)
      -> joined by the separator, the last distractor cut so the total hits the target
      -> one exact count of the whole context, which must be within the tolerance

Lengths are planned from per-document token counts (cached on the `Document`, counted once per
corpus) plus the separator's count. The exact count of the finished context comes from
`assemble.joins`: with a tokenizer additive at word ends, the planned counts plus the text
around each join, encoded in one batch call; otherwise the whole context, encoded with the
other contexts of its batch in one call. Tokens can merge across a separator, which makes the
plan and the exact count differ by a few tokens; when that gap exceeds the tolerance, the cut
distractor is re-cut by the gap and the context counted again (`AssemblyConfig.max_corrections`).

Evidence positions are recorded in `meta["evidence_positions"]`: a JSON list, in
`provenance.source_documents` order (repeats removed; for a sample extended around its own
input, in `[context]` or `documents` order), of `[start_token, end_token)` spans of each evidence
piece in the planned token layout (per-document counts and separators summed; the exact
tokenization of the joined text may shift them by the few tokens that merge across separators).
`meta["evidence_chars"]` holds the same pieces as exact `[start, end)` character offsets into
the context, whatever the tokenizer: `context[start:end]` is the evidence document's text.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Document, TaskSample
from qwenlong.core.registry import Registry
from qwenlong.core.seeding import derive_rng
from qwenlong.evals.prompts import render_context
from qwenlong.synth.assemble.config import AssemblyConfig
from qwenlong.synth.assemble.joins import ContextCounter, Counted
from qwenlong.synth.interfaces import Corpus, CountTokens, Drop

TargetAssigner = Callable[[int, Sequence[int], random.Random], int]
"""(position of the sample in the batch, target lengths, the sample's rng) -> its target."""

TARGET_ASSIGNMENTS: Registry[TargetAssigner] = Registry("target-length assignment")

BATCH_TOKENS = 1 << 20
"""Target tokens of the samples whose contexts are counted in one call: enough contexts to keep
every core busy when they are encoded whole (eight of 128K), whose encodings then peak at about
200 MB (measured with the tiny model's tokenizer). Counted by joins, a batch holds only short
texts. Results do not depend on it."""


@TARGET_ASSIGNMENTS.register("round_robin")
def round_robin_target(index: int, lengths: Sequence[int], rng: random.Random) -> int:
    """Cycle through the lengths in input order, so each gets an equal share of the samples."""
    return lengths[index % len(lengths)]


@TARGET_ASSIGNMENTS.register("random")
def random_target(index: int, lengths: Sequence[int], rng: random.Random) -> int:
    """One length drawn uniformly per sample."""
    return rng.choice(lengths)


class AssemblySkip(Exception):
    """A sample that cannot reach its target length. Expected, not bad input: it becomes a drop."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        """A report drop reason: too_long, short_corpus or length_mismatch."""
        self.detail = detail


@dataclass
class _Piece:
    """One document in the context being planned."""

    doc_id: str
    """Corpus id; "" for a sample's own context or documents."""
    text: str
    tokens: int
    evidence: bool
    full_text: str = ""
    """For the cut distractor: its uncut text, so it can be re-cut longer or shorter."""
    full_tokens: int = 0
    rank: int = -1
    """For evidence: its index in the evidence list, which follows the source order."""
    exact: bool = True
    """Whether `tokens` is this text's count in the corpus's tokenizer; False for a sample's
    own context whose carried `context_tokens` planned it, so the final count encodes it."""


@dataclass
class _Plan:
    """A sample's context laid out to its target, before its exact count."""

    sample: TaskSample
    target: int
    pieces: list[_Piece]
    adjustable: _Piece | None
    """The last distractor drawn, re-cut when the exact count misses the tolerance."""

    def counted(self) -> list[Counted]:
        return [(p.text, p.tokens if p.exact else None) for p in self.pieces]


def _random_order(pool: Sequence[Document], rng: random.Random) -> Iterator[Document]:
    """Every document of `pool` once, in random order, lazily.

    A context needs a few dozen distractors out of a corpus of thousands, so drawing indices and
    skipping repeats costs O(drawn); once half the pool is drawn the rest is shuffled, so the
    worst case stays O(len(pool)).
    """
    seen: set[int] = set()
    while len(seen) < len(pool) // 2:
        i = rng.randrange(len(pool))
        if i not in seen:
            seen.add(i)
            yield pool[i]
    rest = [i for i in range(len(pool)) if i not in seen]
    rng.shuffle(rest)
    for i in rest:
        yield pool[i]


def cut_to_tokens(text: str, max_tokens: int, count_tokens: CountTokens) -> tuple[str, int]:
    """The longest prefix of `text` ending at a word end with at most `max_tokens` tokens.

    Binary search over word ends with the target tokenizer's own counts, so the cut is exact in
    that tokenizer without access to its offsets; it needs about log2(words) counts of text no
    longer than `text`. Returns the prefix and its token count ("" and 0 when no word fits).
    """
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    lo, hi = 0, len(ends)  # invariant: prefixes of lo words fit; prefixes of hi + 1 words do not
    best_tokens = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        n = count_tokens(text[: ends[mid - 1]])
        if n <= max_tokens:
            lo, best_tokens = mid, n
        else:
            hi = mid - 1
    return (text[: ends[lo - 1]], best_tokens) if lo else ("", 0)


class Assembler:
    """Extends many samples over one corpus, with the corpus indexed by domain once."""

    def __init__(self, corpus: Corpus, config: AssemblyConfig = AssemblyConfig()) -> None:
        self.corpus = corpus
        self.config = config
        self.separator_tokens = corpus.count_tokens(config.separator)
        self._by_domain: dict[str, list[Document]] = {}
        for doc in corpus.documents:
            self._by_domain.setdefault(doc.domain, []).append(doc)
        self._lowered: dict[str, str] = {}
        self._counter = ContextCounter(corpus, config.separator)

    def extend(self, sample: TaskSample, target: int, rng: random.Random) -> TaskSample:
        """`sample` with its context built to `target` tokens; raises `AssemblySkip` when it can't."""
        (built,) = self.extend_batch([(sample, target, rng)])
        if isinstance(built, AssemblySkip):
            raise built
        return built

    def extend_batch(
        self, jobs: Sequence[tuple[TaskSample, int, random.Random]]
    ) -> list[TaskSample | AssemblySkip]:
        """Each (sample, target, rng) extended, or the `AssemblySkip` saying why it could not be.

        Every context is planned first and all are counted in one call, which is what lets a
        fast tokenizer use every core; each sample draws only from its own rng, so the result
        is the same as extending them one by one.
        """
        planned: list[TaskSample | AssemblySkip | _Plan] = []
        for sample, target, rng in jobs:
            try:
                planned.append(self._plan(sample, target, rng))
            except AssemblySkip as skip:
                planned.append(skip)
        plans = [p for p in planned if isinstance(p, _Plan)]
        exact = iter(self._counter.count([plan.counted() for plan in plans]))
        built: list[TaskSample | AssemblySkip] = []
        for item in planned:
            if not isinstance(item, _Plan):
                built.append(item)
                continue
            try:
                built.append(self._settle(item, next(exact)))
            except AssemblySkip as skip:
                built.append(skip)
        return built

    def _plan(self, sample: TaskSample, target: int, rng: random.Random) -> TaskSample | _Plan:
        """The context's layout, or the sample itself when it passes through unextended."""
        own_input = not sample.provenance.source_documents and (
            bool(sample.context) or bool(sample.documents)
        )
        if own_input and not self.config.extend_own_context:
            if sample.context_tokens is not None:
                return sample
            counted = self.corpus.count_tokens(render_context(sample))
            return dataclasses.replace(sample, context_tokens=counted)
        evidence = self._evidence(sample)
        sep = self.separator_tokens
        evidence_tokens = sum(p.tokens for p in evidence) + sep * (len(evidence) - 1)
        upper = target * (1 + self.config.tolerance)
        if evidence_tokens > upper:
            raise AssemblySkip(
                "too_long", f"evidence is {evidence_tokens} tokens, over the target {target}"
            )
        distractors, unfilled = self._distractors(sample, evidence, target - evidence_tokens, rng)
        if unfilled > self.config.tolerance * target:
            raise AssemblySkip(
                "short_corpus",
                f"corpus ran out of distractors {unfilled} tokens short of the target {target}",
            )
        pieces = self._arrange(evidence, distractors, rng)
        return _Plan(sample, target, pieces, distractors[-1] if distractors else None)

    def _evidence(self, sample: TaskSample) -> list[_Piece]:
        """The sample's source documents, else its own context or each of its own documents."""
        sources = list(dict.fromkeys(sample.provenance.source_documents))
        if not sources:
            texts = [sample.context] if sample.context else [d for d in sample.documents if d]
            if not texts:
                raise DatasetError(
                    f"sample {sample.id}: no source documents and no context to extend"
                )
            known = sample.context_tokens if sample.context else None
            return [
                _Piece("", text, known, True, rank=rank, exact=False)
                if known
                else _Piece("", text, self.corpus.count_tokens(text), True, rank=rank)
                for rank, text in enumerate(texts)
            ]
        pieces = []
        for rank, doc_id in enumerate(sources):
            doc = self.corpus.by_id.get(doc_id)
            if doc is None:
                raise DatasetError(
                    f"sample {sample.id}: source document {doc_id!r} is not in the corpus"
                )
            pieces.append(_Piece(doc.id, doc.text, self.corpus.tokens(doc), True, rank=rank))
        return pieces

    def _candidates(self, evidence: Sequence[_Piece], rng: random.Random) -> Iterator[Document]:
        """Distractor candidates in draw order, per `config.distractor_domain`."""
        if self.config.distractor_domain == "any":
            yield from _random_order(self.corpus.documents, rng)
            return
        ids = {p.doc_id for p in evidence}
        domains = sorted({self.corpus.by_id[i].domain for i in ids if i in self.corpus.by_id})
        same = [d for domain in domains for d in self._by_domain[domain]]
        yield from _random_order(same, rng)
        others = [
            d for domain, docs in self._by_domain.items() if domain not in domains for d in docs
        ]
        yield from _random_order(others, rng)

    def _guarded_answers(self, sample: TaskSample) -> list[str]:
        if sample.answer_kind not in self.config.answer_guard_kinds:
            return []
        return [
            a.strip().lower()
            for a in sample.answers
            if len(a.strip()) >= self.config.answer_guard_min_chars
        ]

    def _mentions(self, doc: Document, answers: Sequence[str]) -> bool:
        if not answers:
            return False
        lowered = self._lowered.get(doc.id)
        if lowered is None:
            lowered = self._lowered[doc.id] = doc.text.lower()
        return any(a in lowered for a in answers)

    def _distractors(
        self, sample: TaskSample, evidence: Sequence[_Piece], budget: int, rng: random.Random
    ) -> tuple[list[_Piece], int]:
        """Whole distractors until `budget` tokens (separators included) is spent, the last cut.

        Returns the distractors in draw order and the budget left unfilled (0 up to a word's
        tokens normally; more when the corpus ran out of usable documents).
        """
        sep = self.separator_tokens
        answers = self._guarded_answers(sample)
        taken = {p.doc_id for p in evidence}
        chosen: list[_Piece] = []
        for doc in self._candidates(evidence, rng):
            room = budget - sep
            if room <= 0:
                break
            if doc.id in taken or self._mentions(doc, answers):
                continue
            tokens = self.corpus.tokens(doc)
            if tokens <= room:
                chosen.append(_Piece(doc.id, doc.text, tokens, evidence=False))
                budget -= tokens + sep
                continue
            text, cut = cut_to_tokens(doc.text, room, self.corpus.count_tokens)
            if cut:
                chosen.append(_Piece(doc.id, text, cut, False, doc.text, tokens))
                budget -= cut + sep
            break
        return chosen, max(0, budget)

    def _arrange(
        self, evidence: list[_Piece], distractors: list[_Piece], rng: random.Random
    ) -> list[_Piece]:
        """Distractors in draw order, evidence i inserted at a random point of stratum i of m.

        Strata are over distractor tokens, so evidence lands near uniformly spread relative
        positions whatever the documents' lengths; the evidence order is shuffled so the context
        does not follow the reasoning chain.
        """
        order = evidence[:]
        rng.shuffle(order)
        ends, total = [], 0
        for piece in distractors:
            total += piece.tokens
            ends.append(total)
        slots: list[list[_Piece]] = [[] for _ in range(len(distractors) + 1)]
        for i, piece in enumerate(order):
            offset = (i + rng.random()) / len(order) * total
            slots[bisect.bisect_right(ends, offset)].append(piece)
        arranged: list[_Piece] = []
        for i, slot in enumerate(slots):
            if i:
                arranged.append(distractors[i - 1])
            arranged.extend(slot)
        return arranged

    def _settle(self, plan: _Plan, exact: int) -> TaskSample:
        """The finished sample; while `exact` is off by more than allowed, re-cut and recount."""
        count = self.corpus.count_tokens
        target, adjustable = plan.target, plan.adjustable
        slack = self.config.tolerance * target
        for attempt in range(self.config.max_corrections + 1):
            if attempt:
                (exact,) = self._counter.count([plan.counted()])
            gap = exact - target
            if abs(gap) <= slack:
                return self._finish(plan, exact)
            if adjustable is None or attempt == self.config.max_corrections:
                break
            full_text = adjustable.full_text or adjustable.text
            full_tokens = adjustable.full_tokens or adjustable.tokens
            want = min(full_tokens, max(0, adjustable.tokens - gap))
            adjustable.full_text, adjustable.full_tokens = full_text, full_tokens
            adjustable.text, adjustable.tokens = cut_to_tokens(full_text, want, count)
        raise AssemblySkip(
            "length_mismatch", f"context is {exact} tokens, target {target} +- {slack:.0f}"
        )

    def _finish(self, plan: _Plan, exact: int) -> TaskSample:
        sample, pieces = plan.sample, plan.pieces
        context = self.config.separator.join(p.text for p in pieces if p.text)
        spans: dict[int, list[int]] = {}
        chars: dict[int, list[int]] = {}
        start = char = 0
        for piece in pieces:
            if piece.evidence:
                spans[piece.rank] = [start, start + piece.tokens]
                chars[piece.rank] = [char, char + len(piece.text)]
            if piece.text:  # a distractor re-cut to nothing is left out of the join
                start += piece.tokens + self.separator_tokens
                char += len(piece.text) + len(self.config.separator)
        meta = {
            **sample.meta,
            "evidence_positions": json.dumps([spans[r] for r in range(len(spans))]),
            "evidence_chars": json.dumps([chars[r] for r in range(len(chars))]),
            "context_documents": json.dumps([p.doc_id for p in pieces if p.doc_id and p.text]),
            "target_tokens": str(plan.target),
        }
        return dataclasses.replace(
            sample, context=context, documents=[], context_tokens=exact, meta=meta
        )


def extend_context(
    sample: TaskSample,
    corpus: Corpus,
    target_tokens: int,
    rng: random.Random,
    config: AssemblyConfig = AssemblyConfig(),
) -> TaskSample:
    """`sample` with a context of `target_tokens` (within `config.tolerance`) in the corpus's tokenizer.

    The evidence is the sample's source documents, or its own context (else each of its own
    `documents`) when it has none; the rest is distractors from the corpus (never a source, never
    a document containing a guarded gold answer). Samples with their own input and no sources
    pass through with their length counted, unless `config.extend_own_context`. Raises `AssemblySkip` (too_long, short_corpus,
    length_mismatch) when the target cannot be met, `DatasetError` when a source is unknown.
    For many samples build one `Assembler` (or call `assemble_samples`) to index the corpus once.
    """
    return Assembler(corpus, config).extend(sample, target_tokens, rng)


@dataclass
class AssemblyResult:
    """Samples with contexts at their targets, the ones skipped, and how the stage ran."""

    samples: list[TaskSample]
    drops: list[Drop]
    mode: str
    """For the report's stage table, e.g. "extended to 4096/8192 tokens (round_robin)"."""


def assemble_samples(
    samples: Sequence[TaskSample],
    corpus: Corpus,
    config: AssemblyConfig,
    rng: random.Random,
) -> AssemblyResult:
    """Extend every sample to its assigned target; skipped samples become drops.

    Each sample draws from its own generator, seeded from one draw of `rng` and the sample id, so
    a sample gets the same context whatever else is in the batch (a resumed run rebuilds
    identical contexts); only round_robin's target depends on the input order.
    """
    if not config.enabled:
        return AssemblyResult(list(samples), [], "skipped (disabled)")
    assign = TARGET_ASSIGNMENTS.get(config.target_assignment)
    assembler = Assembler(corpus, config)
    base = rng.getrandbits(64)
    kept: list[TaskSample] = []
    drops: list[Drop] = []

    def jobs() -> Iterator[tuple[TaskSample, int, random.Random]]:
        for index, sample in enumerate(samples):
            sample_rng = derive_rng(base, sample.id)
            yield sample, assign(index, config.target_lengths, sample_rng), sample_rng

    for batch in _batches(jobs(), BATCH_TOKENS):
        for (sample, _, _), built in zip(batch, assembler.extend_batch(batch), strict=True):
            if isinstance(built, AssemblySkip):
                drops.append(Drop.of(sample, built.reason, "assemble", built.detail))
            else:
                kept.append(built)
    lengths = "/".join(str(n) for n in config.target_lengths)
    return AssemblyResult(kept, drops, f"extended to {lengths} tokens ({config.target_assignment})")


def _batches(
    jobs: Iterable[tuple[TaskSample, int, random.Random]], max_tokens: int
) -> Iterator[list[tuple[TaskSample, int, random.Random]]]:
    """Consecutive jobs whose targets sum to at most `max_tokens` (at least one job each)."""
    batch: list[tuple[TaskSample, int, random.Random]] = []
    total = 0
    for job in jobs:
        if batch and total + job[1] > max_tokens:
            yield batch
            batch, total = [], 0
        batch.append(job)
        total += job[1]
    if batch:
        yield batch
