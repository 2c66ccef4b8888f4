"""What every question paradigm shares: the `Question` record and the `QuestionWriter` helpers.

The writer turns graph facts into English pieces: a reference to the anchor (a unique
description or the name), a hop as a noun phrase ("the employer of X"), the date qualifier a
hop needs ("... (in the early 1990s)", "... (the earliest on record)"), a description of an
intermediate entity, and the reasoning-chain line of a fact. The paradigms (`paradigms.py`)
arrange these pieces into questions.

Every finished question is checked for leaks: no surface form of the answer, and no name of an
entity the question refers to by description, may appear in its text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from qwenlong.synth.kg.config import ObfuscationConfig
from qwenlong.synth.kg.graph import VALUE_KIND, Edge, KnowledgeGraph, normalize_name, parse_year
from qwenlong.synth.kg.obfuscate import (
    EXACT,
    Describer,
    Description,
    distinguishing_year,
    year_descriptions,
)
from qwenlong.synth.kg.paths import Hop, Path
from qwenlong.synth.kg.relations import noun_phrase

CHAIN_LINE = "{head} --{relation}--> {tail} [{doc}]"
"""One reasoning step; a date, when the fact has one, follows as " ({date})"."""
CLUE_PREFIX = "clue: "
"""Marks a chain line that supports a description rather than a hop of the path."""
ASSUME_PREFIX = "assume: "
"""Marks the hypothesis of a hypothetical question."""

_KIND_WORDS = {
    "person": "person",
    "organisation": "organisation",
    "place": "place",
    "event": "event",
    VALUE_KIND: "value",
}


_POSSESSIVE = re.compile(r"['’]s\b")


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as whole words, after answer normalisation.

    A possessive "'s" is dropped first, so "Ada's employer" mentions "Ada".
    """
    needle = normalize_name(_POSSESSIVE.sub("", phrase))
    return bool(needle) and f" {needle} " in f" {normalize_name(_POSSESSIVE.sub('', text))} "


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class Question:
    """A written question with everything needed to check, rewrite and store it."""

    paradigm: str
    text: str
    path: Path
    answer: str
    """The answer node."""
    answers: list[str]
    """Gold strings: the displayed answer (a date's year), then every surface form."""
    answer_position: int
    """Index of the answer in `path.nodes` (the last, except for causal questions)."""
    chain: list[str]
    docs: list[str]
    anchors: list[str] = field(default_factory=list)
    """Phrases a rewrite must keep: the anchor's name or description, other named entities and
    the date phrases the question rests on."""
    forbidden: list[str] = field(default_factory=list)
    """Phrases a rewrite must not add: the answer's forms and the described entities' names."""
    relations: list[str] = field(default_factory=list)
    """Canonical relations the question asks about, in hop order."""


@dataclass(frozen=True)
class Ref:
    """How a question mentions an entity: a description, or the name when none is unique."""

    text: str
    facts: tuple[Edge, ...] = ()
    named: bool = True


@dataclass(frozen=True)
class Qualifier:
    """Text appended to a hop's noun phrase so that it selects one fact."""

    suffix: str = ""
    anchor: str = ""
    """The phrase a rewrite must keep ("the early 1990s", "earliest"); "" when none."""


class QuestionWriter:
    """Phrasing helpers bound to one graph and its describer."""

    def __init__(
        self,
        graph: KnowledgeGraph,
        describer: Describer,
        config: ObfuscationConfig,
        rng: random.Random | None = None,
    ) -> None:
        self.rng = rng
        """Varies which vagueness level descriptions prefer; None always prefers the vaguest."""
        self.graph = graph
        self.describer = describer
        self.config = config

    def kind_word(self, node: str) -> str:
        return _KIND_WORDS.get(self.graph.kind(node), "entity")

    def anchor(
        self, path: Path, allowed_docs: Collection[str] | None, exclude: Collection[str] = ()
    ) -> Ref:
        """The path's start: a unique description when obfuscating the anchor, else its name.

        Clues never mention a path node (or `exclude`) nor use the first hop's relation.
        """
        node = path.nodes[0]
        if self.config.enabled and self.config.describe_anchor:
            found = self.describer.describe(
                node, [*path.nodes, *exclude], allowed_docs, self.rng, [path.hops[0].relation]
            )
            if found is not None:
                return Ref(found.text, found.facts, named=False)
        return Ref(self.graph.name(node))

    def intermediate(
        self, path: Path, index: int, exclude: Collection[str] = ()
    ) -> Description | None:
        """A unique description of `path.nodes[index]`, or None (then it goes unmentioned)."""
        node = path.nodes[index]
        if not self.config.enabled or self.graph.is_value(node):
            return None
        avoid = [path.hops[index].relation] if index < len(path.hops) else []
        return self.describer.describe(node, [*path.nodes, *exclude], None, self.rng, avoid)

    def qualifier(self, hop: Hop, rng: random.Random, temporal: bool) -> Qualifier:
        """The date qualifier `hop` needs: always for a "dated" hop, for any dated hop if temporal.

        A "dated" hop is picked by its year described as vaguely as still tells it from its
        rivals, or (temporal questions, when it is the first or last of them) by order.
        """
        year = parse_year(hop.date)
        if year is None:
            return Qualifier()
        if hop.selector == "dated":
            rivals = [
                e.year
                for e in self.graph.edges_from(hop.head)
                if e.relation == hop.relation and e.tail != hop.tail
            ]
            years = [y for y in rivals if y is not None]
            if temporal and rng.random() < 0.5 and (year < min(years) or year > max(years)):
                word = "earliest" if year < min(years) else "latest"
                return Qualifier(f" (the {word} on record)", word)
            text = distinguishing_year(year, years, self.config.enabled).text
            return Qualifier(f" (in {text})", text)
        if temporal:
            level = rng.randrange(EXACT) if self.config.enabled else EXACT
            text = year_descriptions(year)[level].text
            return Qualifier(f" (in {text})", text)
        return Qualifier()

    def nested(self, hops: Iterable[Hop], subject: str, quals: Iterable[Qualifier]) -> list[str]:
        """Noun phrases for each hop, each built on the previous: "the X of the Y of A"."""
        phrases = []
        for hop, qual in zip(hops, quals, strict=True):
            subject = noun_phrase(hop.relation, subject) + qual.suffix
            phrases.append(subject)
        return phrases

    def line(self, edge_or_hop: Edge | Hop, doc: str, prefix: str = "") -> str:
        """The reasoning-chain line of one fact, with names (not node keys)."""
        date = getattr(edge_or_hop, "date", None)
        if isinstance(edge_or_hop, Edge):
            date = edge_or_hop.dates[0] if len(edge_or_hop.dates) == 1 else None
        text = CHAIN_LINE.format(
            head=self.graph.name(edge_or_hop.head),
            relation=edge_or_hop.relation,
            tail=self.graph.name(edge_or_hop.tail),
            doc=doc,
        )
        return prefix + text + (f" ({date})" if date else "")

    def clue_lines(
        self, facts: Iterable[Edge], allowed_docs: Collection[str] | None
    ) -> list[tuple[str, str]]:
        """(chain line, doc) for each fact behind a description, read from an allowed doc."""
        out = []
        for fact in facts:
            docs = sorted(d for d in fact.docs if allowed_docs is None or d in allowed_docs)
            out.append((self.line(fact, docs[0], CLUE_PREFIX), docs[0]))
        return out

    def finish(
        self,
        paradigm: str,
        text: str,
        path: Path,
        answer_position: int,
        chain: list[tuple[str, str]],
        anchors: list[str],
        described: Iterable[str],
    ) -> Question | None:
        """Assemble a `Question`; None when its text leaks the answer or a described name.

        `chain` holds (line, doc) pairs in reading order; `described` the nodes the question
        refers to without naming them.
        """
        answer = path.nodes[answer_position]
        answers = list(dict.fromkeys([self.graph.display(answer), *self.graph.forms(answer)]))
        forbidden = list(answers)
        for node in described:
            forbidden.extend(self.graph.forms(node))
        text = re.sub(r"\s+", " ", text).strip()
        if any(contains_phrase(text, phrase) for phrase in forbidden):
            return None
        return Question(
            paradigm=paradigm,
            text=text,
            path=path,
            answer=answer,
            answers=answers,
            answer_position=answer_position,
            chain=[line for line, _ in chain],
            docs=list(dict.fromkeys(doc for _, doc in chain)),
            anchors=[a for a in anchors if a],
            forbidden=list(dict.fromkeys(forbidden)),
            relations=[h.relation for h in path.hops],
        )
