"""The LLM triple extractor: any `ChatModel` reads facts from prose as validated JSON.

Documents are cut into pieces of at most `max_piece_chars` (at paragraph, then sentence, then
word boundaries), and every piece of every document goes to the model in one batched
`generate` call, so an OpenAI-compatible backend runs them concurrently. Each reply must be a
JSON list of facts that validates against `ExtractedFact`; a piece whose reply does not is sent
again, in the same conversation, with the validation error, up to `max_retries` times. Pieces
that never validate are counted (`stats.failures`), logged and contribute no triples: a bad
reply never stops a run. Facts whose names do not occur in the piece are dropped when
`require_grounding` is on (`stats.ungrounded`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.records import Conversation, Document
from qwenlong.evals.reasoning import answer_text
from qwenlong.synth.interfaces import Triple
from qwenlong.synth.kg.config import LLMExtractConfig
from qwenlong.synth.kg.graph import normalize_kind

KINDS = ("person", "organisation", "place", "event", "work", "value", "other")
"""Entity kinds the prompt offers; "value" marks literals (dates, numbers, plain words)."""

EXTRACT_PROMPT = """Read the text below and list the facts it states about named people, \
organisations, places, events and works.

Write each fact as a JSON object with these keys:
- "head": the entity the fact is about, by its name as written in the text;
- "relation": a short lower-case label for the relation, such as "employer", "born in", \
"founded by", "headquartered in";
- "tail": the other entity, or the value (a date, number or word), as written in the text;
- "date" (optional): when the fact holds or happened, as "YYYY", "YYYY-MM" or "YYYY-MM-DD";
- "head_kind" and "tail_kind" (optional): one of {kinds}.

Only list facts the text states; do not use outside knowledge. Reply with the JSON list only \
(an empty list [] when the text states no such fact).

Text:
{text}"""
"""Our wording of the extraction request."""

RETRY_PROMPT = """Your reply could not be used: {error}
Reply again with only the JSON list of facts, following the same rules."""
"""Sent after an invalid reply, in the same conversation, with the validation error."""

_ISO_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")

log = logging.getLogger(__name__)


class ExtractedFact(BaseModel):
    """One fact as the model must write it; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    head: str = Field(min_length=1)
    relation: str = Field(min_length=1)
    tail: str = Field(min_length=1)
    date: str | None = None
    head_kind: str = ""
    tail_kind: str = ""

    @field_validator("date")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _ISO_DATE.match(value):
            raise ValueError(f"date {value!r} is not 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'")
        return value

    @field_validator("head_kind", "tail_kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        kind = normalize_kind(value)
        if kind and kind not in KINDS:
            raise ValueError(f"kind {value!r} is not one of {', '.join(KINDS)}")
        return kind


_FACTS = TypeAdapter(list[ExtractedFact])


class InvalidReply(ValueError):
    """A reply that is not a valid JSON list of facts; the message is fed back to the model."""


def parse_facts(reply: str) -> list[ExtractedFact]:
    """The facts in a reply: the JSON list after any reasoning, code fence or preamble."""
    text = _FENCE.sub("", answer_text(reply).strip())
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end < start:
        raise InvalidReply("no JSON list found; the reply must be a list like [{...}, ...]")
    try:
        return _FACTS.validate_json(text[start : end + 1])
    except ValidationError as err:
        problems = [
            f"item {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:3]
        ]
        raise InvalidReply("; ".join(problems)) from None


def split_document(text: str, max_chars: int) -> list[str]:
    """Pieces of at most `max_chars`, cut at paragraphs, then sentences, then words."""
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if len(paragraph) <= max_chars:
            units.append(paragraph)
            continue
        for sentence in _SENTENCE.split(paragraph):
            while len(sentence) > max_chars:
                cut = sentence.rfind(" ", 0, max_chars)
                cut = cut if cut > 0 else max_chars
                units.append(sentence[:cut])
                sentence = sentence[cut:].lstrip()
            units.append(sentence)
    pieces: list[str] = []
    for unit in filter(None, units):
        if pieces and len(pieces[-1]) + 2 + len(unit) <= max_chars:
            pieces[-1] += "\n\n" + unit
        else:
            pieces.append(unit)
    return pieces


def _squash(text: str) -> str:
    return " ".join(text.casefold().split())


def _evidence(piece: str, head: str, tail: str) -> str:
    """The first sentence naming both head and tail, else the first naming the head."""
    sentences = [s.strip() for s in _SENTENCE.split(piece) if s.strip()]
    for needles in ((head, tail), (head,)):
        for sentence in sentences:
            if all(_squash(n) in _squash(sentence) for n in needles):
                return sentence
    return ""


@dataclass
class ExtractionStats:
    """Counters across every `extract` call of one extractor."""

    calls: int = 0
    """Batched `generate` calls (one per attempt round)."""
    requests: int = 0
    """Conversations sent, first attempts and retries."""
    retries: int = 0
    """Conversations sent again with a validation error."""
    failures: int = 0
    """Pieces that never produced a valid reply."""
    pieces: int = 0
    facts: int = 0
    """Triples kept."""
    ungrounded: int = 0
    """Facts dropped because their names do not occur in the piece."""


class LLMTripleExtractor:
    """A `TripleExtractor` backed by a `ChatModel`."""

    name = "llm"

    def __init__(
        self,
        model: ChatModel,
        config: LLMExtractConfig | None = None,
        log_fn: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self.config = config or LLMExtractConfig()
        self.log = log_fn or log.warning
        self.stats = ExtractionStats()
        self.sampling = SamplingParams(
            max_new_tokens=self.config.max_new_tokens, temperature=self.config.temperature
        )

    def extract(self, docs: Sequence[Document]) -> list[list[Triple]]:
        """Triples per document, in input order."""
        pieces = [
            (d, piece)
            for d in docs
            for piece in split_document(d.text, self.config.max_piece_chars)
        ]
        self.stats.pieces += len(pieces)
        prompt = EXTRACT_PROMPT.replace("{kinds}", ", ".join(KINDS))
        conversations: list[Conversation] = [
            [{"role": "user", "content": prompt.replace("{text}", piece)}] for _, piece in pieces
        ]
        facts: dict[int, list[ExtractedFact]] = {}
        errors: dict[int, str] = {}
        pending = list(range(len(pieces)))
        for attempt in range(self.config.max_retries + 1):
            if not pending:
                break
            replies = self._ask([conversations[i] for i in pending])
            self.stats.retries += len(pending) if attempt else 0
            still = []
            for i, reply in zip(pending, replies, strict=True):
                try:
                    facts[i] = parse_facts(reply.text)
                except InvalidReply as err:
                    hint = (
                        " (the reply was cut off: list fewer facts)"
                        if reply.finish_reason == "length"
                        else ""
                    )
                    errors[i] = str(err) + hint
                    conversations[i] = [
                        *conversations[i],
                        {"role": "assistant", "content": reply.text},
                        {"role": "user", "content": RETRY_PROMPT.format(error=errors[i])},
                    ]
                    still.append(i)
            pending = still
        for i in pending:
            self.stats.failures += 1
            self.log(
                f"llm extractor: document {pieces[i][0].id} piece {i}: no valid facts after "
                f"{self.config.max_retries + 1} attempts ({errors[i]})"
            )
        out: dict[str, list[Triple]] = {d.id: [] for d in docs}
        for i, found in sorted(facts.items()):
            doc, piece = pieces[i]
            out[doc.id].extend(self._triples(doc, piece, found))
        return [list(out[d.id]) for d in docs]

    def _ask(self, conversations: list[Conversation]) -> list:
        replies = self.model.generate(conversations, self.sampling)
        self.stats.calls += 1
        self.stats.requests += len(conversations)
        if len(replies) != len(conversations) or any(not r for r in replies):
            raise BackendError(
                f"extraction model {self.model.name!r} returned {len(replies)} replies "
                f"for {len(conversations)} pieces"
            )
        return [r[0] for r in replies]

    def _triples(self, doc: Document, piece: str, found: list[ExtractedFact]) -> list[Triple]:
        text = _squash(piece)
        triples = []
        for fact in found:
            grounded = _squash(fact.head) in text and (
                fact.tail_kind == "value" or _squash(fact.tail) in text
            )
            if self.config.require_grounding and not grounded:
                self.stats.ungrounded += 1
                continue
            triples.append(
                Triple(
                    head=fact.head,
                    relation=fact.relation,
                    tail=fact.tail,
                    doc_id=doc.id,
                    date=fact.date,
                    evidence=_evidence(piece, fact.head, fact.tail),
                    head_kind=fact.head_kind,
                    tail_kind=fact.tail_kind,
                )
            )
        self.stats.facts += len(triples)
        return triples
