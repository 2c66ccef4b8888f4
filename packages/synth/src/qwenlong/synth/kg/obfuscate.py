"""Obfuscation: years and numbers become vaguer ranges, entities descriptions from their facts.

A question that names every entity on its path can be answered by string lookup, one hop at a
time. The paper obfuscates: "a year ending in 5 in the late 20th century" for 1995, and an
institution becomes a description. Obfuscation must not make the question ambiguous, so every
replacement is checked against the whole graph:

- a year description is used for a dated fact only when it matches that fact's year and none
  of the rival facts' years (the head's other facts of the same relation);
- an entity description ("a chemist born in the early 1960s", "a city whose population is
  between 150,000 and 200,000", see `kg.numbers`) is used only when no other entity in the
  graph satisfies all of its parts.

Candidates go from most to least obfuscated; the first that passes the check wins, so a failed
check falls back to a plainer form (down to the exact year, or no description at all).
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from qwenlong.synth.kg.graph import Edge, KnowledgeGraph
from qwenlong.synth.kg.numbers import Amount, NumberTest, parse_amount, range_tests, relative_tests
from qwenlong.synth.kg.relations import clause

EXACT = 3
"""Level of a plain value: the exact year, or a named neighbour."""

_THIRDS = ("early ", "mid-", "late ")
_KIND_NOUNS = {
    "person": "person",
    "organisation": "organisation",
    "place": "place",
    "event": "event",
}
NOUN_RELATION = "occupation"
"""A relation whose value names what a person is ("a chemist"), used as the description's noun."""


def ordinal(n: int) -> str:
    """1 -> "1st", 12 -> "12th", 22 -> "22nd"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


@dataclass(frozen=True)
class YearDescription:
    """A set of years in words: the years in [low, high] (ending in `last_digit` when set)."""

    text: str
    low: int
    high: int
    last_digit: int | None
    level: int
    """0 is the vaguest; `EXACT` is the year itself."""

    def matches(self, year: int | None) -> bool:
        if year is None or not self.low <= year <= self.high:
            return False
        return self.last_digit is None or year % 10 == self.last_digit


def year_descriptions(year: int) -> list[YearDescription]:
    """From vaguest to exact: last digit in a third of a century, part of a decade, decade, year.

    Centuries are taken as the 1900s for "20th" (the everyday sense), split into thirds at
    33 and 66; decades into early (0-3), mid (4-6) and late (7-9).
    """
    base, part = year - year % 100, year % 100
    third = 0 if part < 33 else 1 if part < 66 else 2
    low = base + (0, 33, 66)[third]
    high = base + (32, 65, 99)[third]
    century = f"the {_THIRDS[third]}{ordinal(year // 100 + 1)} century"
    decade, within = year - year % 10, year % 10
    part_of_decade = 0 if within <= 3 else 1 if within <= 6 else 2
    lows = (0, 4, 7)
    highs = (3, 6, 9)
    decade_word = ("the early ", "the mid-", "the late ")[part_of_decade]
    return [
        YearDescription(f"a year ending in {year % 10} in {century}", low, high, year % 10, 0),
        YearDescription(
            f"{decade_word}{decade}s",
            decade + lows[part_of_decade],
            decade + highs[part_of_decade],
            None,
            1,
        ),
        YearDescription(f"the {decade}s", decade, decade + 9, None, 2),
        YearDescription(str(year), year, year, None, EXACT),
    ]


def distinguishing_year(year: int, rivals: Iterable[int], obfuscate: bool) -> YearDescription:
    """The vaguest description of `year` that matches none of `rivals` (exact when not obfuscating).

    The exact year always distinguishes, since rival facts have other years (paths.hop_selector).
    """
    rivals = list(rivals)
    options = year_descriptions(year) if obfuscate else year_descriptions(year)[EXACT:]
    for option in options:
        if not any(option.matches(r) for r in rivals):
            return option
    return year_descriptions(year)[EXACT]


@dataclass(frozen=True)
class Clue:
    """One fact in a description: the entity has `relation` to `target` (or a matching year
    or number)."""

    relation: str
    target: str
    year: YearDescription | None
    text: str
    level: int
    number: NumberTest | None = None
    reference: tuple[str, str] | None = None
    """(entity, value node) a relative clue compares with: its fact joins the description's."""


@dataclass(frozen=True)
class Description:
    """A unique description of `node`: noun plus clues, and the graph edges it rests on."""

    node: str
    text: str
    facts: tuple[Edge, ...]
    level: int
    """Rank of the plainest clue (0 vaguest; `EXACT` when a value is given as written)."""


class Describer:
    """Writes descriptions of entities that no other entity in the graph also satisfies."""

    def __init__(self, graph: KnowledgeGraph, max_clues: int) -> None:
        self.graph = graph
        self.max_clues = max_clues
        self._by_relation: dict[str, list[Edge]] = defaultdict(list)
        self._by_kind: dict[str, set[str]] = defaultdict(set)
        for node in graph.entities():
            self._by_kind[graph.kind(node)].add(node)
            for edge in graph.edges_from(node):
                self._by_relation[edge.relation].append(edge)
        self._all = frozenset(graph.entities())
        self._matches: dict[tuple, frozenset[str]] = {}

    def _amount(self, node: str) -> Amount | None:
        """The number a value node states (None for entities, dates and text)."""
        if not self.graph.is_value(node) or self.graph.year(node) is not None:
            return None
        return parse_amount(self.graph.name(node))

    def _number_clues(
        self,
        edge: Edge,
        amount: Amount,
        exclude: Collection[str],
        allowed_docs: Collection[str] | None,
    ) -> list[Clue]:
        """Range clues from vague to exact, and relative ones naming another entity (whose
        fact must come from `allowed_docs` too, as every fact of a description must)."""
        clues = [
            Clue(edge.relation, edge.tail, None, clause(edge.relation, t.text), t.level, t)
            for t in range_tests(amount, EXACT)
        ]
        others = [
            (e.head, self.graph.name(e.head), found)
            for e in self._by_relation[edge.relation]
            if e.head != edge.head and e.head not in exclude
            and (allowed_docs is None or set(e.docs) & set(allowed_docs))
            and (found := self._amount(e.tail)) is not None
        ]  # fmt: skip
        by_head = {e.head: e.tail for e in self._by_relation[edge.relation]}
        for test, other in relative_tests(amount, others, 0):
            text = clause(edge.relation, test.text)
            clues.append(
                Clue(edge.relation, edge.tail, None, text, 0, test, (other, by_head[other]))
            )
        return clues

    def _members(self, clue: Clue) -> frozenset[str]:
        """Every entity that satisfies `clue`."""
        key = (clue.relation, clue.target, clue.year, clue.number)
        if key not in self._matches:
            heads = set()
            for edge in self._by_relation[clue.relation]:
                if clue.number is not None:
                    hit = clue.number.matches(self._amount(edge.tail))
                elif clue.year is None:
                    hit = edge.tail == clue.target
                else:
                    hit = clue.year.matches(self.graph.year(edge.tail))
                if hit:
                    heads.add(edge.head)
            self._matches[key] = frozenset(heads)
        return self._matches[key]

    def _noun(self, node: str, exclude: Collection[str]) -> tuple[str, Clue | None]:
        """The description's head noun: an occupation value when single, else the node's kind."""
        jobs = [e for e in self.graph.edges_from(node) if e.relation == NOUN_RELATION]
        if len(jobs) == 1 and jobs[0].tail not in exclude:
            job = jobs[0]
            noun = self.graph.name(job.tail).lower()
            return noun, Clue(NOUN_RELATION, job.tail, None, noun, EXACT)
        return _KIND_NOUNS.get(self.graph.kind(node), "entity"), None

    def _clues(
        self,
        node: str,
        exclude: Collection[str],
        allowed_docs: Collection[str] | None,
        avoid: Collection[str],
    ) -> list[Clue]:
        clues = []
        for edge in self.graph.edges_from(node):
            if edge.relation == NOUN_RELATION or edge.relation in avoid:
                continue
            if edge.tail in exclude or edge.tail == node:
                continue
            if allowed_docs is not None and not set(edge.docs) & set(allowed_docs):
                continue
            year = self.graph.year(edge.tail)
            amount = self._amount(edge.tail)
            if amount is not None:
                clues.extend(self._number_clues(edge, amount, exclude, allowed_docs))
                continue
            if year is None:
                name = self.graph.name(edge.tail)
                clues.append(
                    Clue(edge.relation, edge.tail, None, clause(edge.relation, name), EXACT)
                )
                continue
            for option in year_descriptions(year):
                text = clause(edge.relation, option.text)
                clues.append(Clue(edge.relation, edge.tail, option, text, option.level))
        return clues

    def describe(
        self,
        node: str,
        exclude: Collection[str] = (),
        allowed_docs: Collection[str] | None = None,
        rng: random.Random | None = None,
        avoid: Collection[str] = (),
    ) -> Description | None:
        """The most obfuscated unique description of `node`, or None when none is unique.

        `exclude`: nodes a clue must not mention (the path's nodes, so neither the answer nor
        an intermediate is named). `avoid`: relations no clue may use (the relation the
        question follows from this node: "the employer of a person employed by Acme" reads as a
        contradiction even when true). `allowed_docs`: documents clue facts must come from (a
        reading question stays inside one document). Candidates are tried by (plainest clue
        level, number of clues, summed levels, text), so vaguer and shorter descriptions win. With `rng`, the
        three vague year levels are ranked in a random order for this call (variety across
        questions); exact values still come last.
        """
        noun, noun_clue = self._noun(node, exclude)
        if noun_clue is not None:
            kin: Collection[str] = self._members(noun_clue)
        elif self.graph.kind(node):  # an entity of unknown kind might be of this kind too
            kin = self._by_kind[self.graph.kind(node)] | self._by_kind[""]
        else:
            kin = self._all
        rank = list(range(EXACT))
        if rng is not None:
            rng.shuffle(rank)
        clues = [
            replace(c, level=rank[c.level]) if c.level < EXACT else c
            for c in self._clues(node, exclude, allowed_docs, avoid)
        ]
        candidates = []
        if noun_clue is not None:  # "an architect" alone, when no one else is one
            candidates.append((EXACT, 0, 0, (), ()))
        for size in range(1, self.max_clues + 1):
            for combo in itertools.combinations(clues, size):
                if len({(c.relation, c.target) for c in combo}) < size:
                    continue
                levels = [c.level for c in combo]
                texts = tuple(c.text for c in combo)
                candidates.append((max(levels), size, sum(levels), texts, combo))
        for *_, texts, combo in sorted(candidates, key=lambda c: c[:4]):
            if set(kin).intersection(*(self._members(c) for c in combo)) == {node}:
                facts = [self.graph.edge(node, c.relation, c.target) for c in combo]
                facts += [
                    self.graph.edge(c.reference[0], c.relation, c.reference[1])
                    for c in combo
                    if c.reference
                ]
                if noun_clue is not None:
                    facts.insert(0, self.graph.edge(node, NOUN_RELATION, noun_clue.target))
                text = f"{article(noun)} {noun} {' and '.join(texts)}".strip()
                level = max((c.level for c in combo), default=EXACT)
                return Description(node, text, tuple(facts), level)
        return None
