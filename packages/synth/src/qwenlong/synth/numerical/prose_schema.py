"""LLM schema extraction: figures stated in running text, as rows of the long table.

CorpusQA extracts a relational schema from documents; tables are read exactly by `tables` and
`align`, and this optional path asks a `ChatModel` for the figures that prose states ("revenue
rose to 4.2 billion dollars in 2021") as JSON rows `{entity, year, metric, value, unit}`.

A reply is accepted only when it parses as JSON and validates against `ProseRow`; otherwise the
model is shown the error and asked again, up to `max_retries` times, and a chunk that never
yields valid JSON is counted as failed and logged. Valid rows are then checked against the text
itself, because a model can write well-formed rows it did not read:

- the entity name and the year occur in the document (title included);
- the value occurs in the chunk as a printed number, alone or times the scale word after it
  ("4.2 billion" grounds 4.2 and 4200000000). The sign is not checked: prose writes a loss
  of 12 as "12", and the model may rightly return -12.

Rows failing a check are dropped and counted by reason.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.records import Conversation, Document
from qwenlong.evals.reasoning import answer_text
from qwenlong.synth.numerical.align import RawFact
from qwenlong.synth.numerical.config import ProseSchemaConfig
from qwenlong.synth.numerical.tables import SCALE_WORDS, parse_number
from qwenlong.synth.numerical.units import canonical_metric, find_unit, parse_unit


class ProseRow(BaseModel):
    """One figure the text states; the schema the model's JSON must satisfy."""

    model_config = ConfigDict(extra="ignore")

    entity: str = Field(min_length=1)
    year: int = Field(ge=1800, le=2200)
    metric: str = Field(min_length=1)
    value: float
    unit: str = ""


ROWS = TypeAdapter(list[ProseRow])

SCHEMA_PROMPT = """List every numerical figure that the text below states about a named \
organisation, person, place or other entity for a specific year.

Reply with a JSON array only. Each element is an object with these keys:
- "entity": the entity's name as written in the text;
- "year": the year the figure refers to, as an integer;
- "metric": what is measured, in a few words (for example "revenue", "employees");
- "value": the number as written in the text, without thousands separators, as a JSON number;
- "unit": the unit including any scale word (for example "USD million", "persons", "%"), or "".
Include only figures stated in the text, never computed or guessed ones. If there are none, \
reply [].

Text:
{text}"""
"""The extraction request (ours)."""

RETRY_PROMPT = """That reply could not be used: {error}. Reply again with only the JSON array, \
following the format exactly."""

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_TEXT_NUMBER = re.compile(
    r"(\d[\d,]*(?:\.\d+)?)\s*(thousand|million|billion|bn|mn)?\b", re.IGNORECASE
)


def parse_rows(reply: str) -> list[ProseRow]:
    """The rows in a model reply (after any reasoning; a ```json fence or the outermost
    brackets); raises ValueError with a one-line reason."""
    text = answer_text(reply).strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not starts:
        raise ValueError("no JSON array found")
    start = min(starts)
    end = text.rfind("]" if text[start] == "[" else "}")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON ({err.msg} at character {err.pos})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    try:
        return ROWS.validate_python(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"row field {where}: {first['msg']}") from None


def printed_numbers(text: str) -> set[Decimal]:
    """Absolute values of the numbers printed in `text`, also multiplied by a scale word that
    follows them ("4.2 billion" gives 4.2 and 4200000000)."""
    found: set[Decimal] = set()
    for digits, scale in _TEXT_NUMBER.findall(text):
        cell = parse_number(digits)
        if cell is None:
            continue
        found.add(abs(cell.value))
        if scale:
            found.add(abs(cell.value) * SCALE_WORDS[scale.lower()])
    return found


def split_chunks(text: str, max_chars: int) -> list[str]:
    """Paragraph-aligned pieces of about `max_chars` (a longer paragraph is its own piece)."""
    chunks: list[str] = []
    current = ""
    for paragraph in re.split(r"\n\s*\n", text):
        if current and len(current) + len(paragraph) + 2 > max_chars:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current.strip():
        chunks.append(current)
    return chunks


@dataclass
class ProseStats:
    """What prose extraction did, for the synthesis report."""

    documents: int = 0
    chunks: int = 0
    failed_chunks: int = 0
    """Chunks with no valid reply after every retry."""
    retries: int = 0
    rows: int = 0
    """Rows accepted."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Reason -> rows dropped by the grounding checks."""


@dataclass
class _Job:
    doc: Document
    chunk: str
    conversation: Conversation


class ProseSchemaExtractor:
    """Reads prose figures with a `ChatModel`: all chunks in one batched call, then retries."""

    def __init__(
        self,
        llm: ChatModel,
        config: ProseSchemaConfig,
        seed: int = 0,
        log: Callable[[str], None] = print,
    ) -> None:
        self.llm = llm
        self.config = config
        self.sampling = SamplingParams(
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=1.0,
            seed=seed,
        )
        self.log = log
        self.stats = ProseStats()

    def extract(self, docs: Sequence[Document]) -> list[list[RawFact]]:
        """Grounded facts per document, in input order."""
        facts: dict[str, list[RawFact]] = {doc.id: [] for doc in docs}
        pending = []
        for doc in docs:
            self.stats.documents += 1
            for chunk in split_chunks(doc.text, self.config.chunk_chars):
                prompt = SCHEMA_PROMPT.format(text=chunk)
                pending.append(_Job(doc, chunk, [{"role": "user", "content": prompt}]))
        self.stats.chunks += len(pending)
        for attempt in range(self.config.max_retries + 1):
            if not pending:
                break
            replies = self.llm.generate([job.conversation for job in pending], self.sampling)
            retry = []
            for job, completions in zip(pending, replies, strict=True):
                reply = completions[0].text if completions else ""
                try:
                    rows = parse_rows(reply)
                except ValueError as err:
                    if attempt < self.config.max_retries:
                        self.stats.retries += 1
                        job.conversation = [
                            *job.conversation,
                            {"role": "assistant", "content": reply},
                            {"role": "user", "content": RETRY_PROMPT.format(error=err)},
                        ]
                        retry.append(job)
                    else:
                        self.stats.failed_chunks += 1
                        self.log(f"prose schema: document {job.doc.id}: no valid rows ({err})")
                    continue
                facts[job.doc.id].extend(self._grounded(job, rows))
            pending = retry
        return [facts[doc.id] for doc in docs]

    def _grounded(self, job: _Job, rows: list[ProseRow]) -> list[RawFact]:
        document = f"{job.doc.title}\n{job.doc.text}".casefold()
        numbers = printed_numbers(job.chunk)
        kept = []
        for row in rows:
            value = Decimal(repr(row.value))
            if row.entity.strip().casefold() not in document:
                self.stats.rejected["entity not in text"] += 1
            elif str(row.year) not in document:
                self.stats.rejected["year not in text"] += 1
            elif abs(value) not in numbers:
                self.stats.rejected["value not in text"] += 1
            elif not canonical_metric(row.metric):
                self.stats.rejected["empty metric"] += 1
            else:
                unit = (parse_unit(row.unit) or find_unit(row.unit)) if row.unit else None
                kept.append(
                    RawFact(
                        row.entity.strip(),
                        job.doc.id,
                        row.year,
                        canonical_metric(row.metric),
                        value,
                        unit,
                        "prose",
                    )
                )
        self.stats.rows += len(kept)
        return kept
