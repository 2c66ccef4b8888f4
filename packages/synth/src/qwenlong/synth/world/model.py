"""The fictional world's ground truth: entities, dated facts, financial tables, documents.

The world is the embedded default corpus. Generators read only its `documents`, as they would
any corpus; the ground truth (facts, financial rows, the triples each document states) stays
here so tests and measures can check extraction and answers independently of the generators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qwenlong.core.records import Document
from qwenlong.synth.interfaces import Triple

if TYPE_CHECKING:
    from qwenlong.synth.world.config import WorldConfig

ENTITY_KINDS = ("person", "organisation", "place", "event")
"""Entity kinds, as written in `Triple.head_kind` / `Triple.tail_kind` (literals are "value")."""

TRIPLE_PARTS = ("infobox", "prose", "table")
"""Where in a document a ground-truth triple is stated (dialogue lines count as prose)."""


@dataclass(frozen=True)
class RelationSpec:
    """What a relation connects, so facts and questions stay well-typed."""

    head: str
    """Entity kind of the head."""
    tail: str
    """Entity kind of the tail, or "value" for a literal."""
    dated: bool = False
    """Whether the fact carries a year (start of employment, graduation, marriage, ...)."""
    prose_only: bool = False
    """Stated in article prose but never in the infobox: only a reader of the text finds it."""


RELATIONS: dict[str, RelationSpec] = {
    "alias": RelationSpec("*", "value"),
    "birth_date": RelationSpec("person", "value"),
    "birth_place": RelationSpec("person", "place"),
    "occupation": RelationSpec("person", "value"),
    "employer": RelationSpec("person", "organisation", dated=True),
    "education": RelationSpec("person", "organisation", dated=True),
    "spouse": RelationSpec("person", "person", dated=True),
    "residence": RelationSpec("person", "place", prose_only=True),
    "type": RelationSpec("organisation", "value"),
    "founded": RelationSpec("*", "value"),
    "founder": RelationSpec("organisation", "person"),
    "headquarters": RelationSpec("organisation", "place"),
    "industry": RelationSpec("organisation", "value"),
    "parent": RelationSpec("organisation", "organisation"),
    "ceo": RelationSpec("organisation", "person", dated=True, prose_only=True),
    "students": RelationSpec("organisation", "value", prose_only=True),
    "country": RelationSpec("place", "place"),
    "population": RelationSpec("place", "value"),
    "capital": RelationSpec("place", "place"),
    "elevation": RelationSpec("place", "value", prose_only=True),
    "currency": RelationSpec("place", "value", prose_only=True),
    "date": RelationSpec("event", "value"),
    "location": RelationSpec("event", "place"),
    "organiser": RelationSpec("event", "organisation"),
    "participants": RelationSpec("event", "person"),
    "attendance": RelationSpec("event", "value", prose_only=True),
}
"""Every relation of the world, keyed by its normalised label (the same label the infobox key and
the rule extractor use). "*" heads apply to several kinds (organisations and places are founded)."""


@dataclass(frozen=True)
class Metric:
    """One row of a company's financial table."""

    label: str
    """Row label as printed in reports."""
    unit: str
    """Unit as printed in the table header."""
    decimals: int
    """Digits after the decimal point in reports (0 for head counts)."""


METRICS: dict[str, Metric] = {
    "revenue": Metric("Revenue", "USD million", 1),
    "operating_income": Metric("Operating income", "USD million", 1),
    "net_income": Metric("Net income", "USD million", 1),
    "rd_spend": Metric("R&D spend", "USD million", 1),
    "employees": Metric("Employees", "persons", 0),
    "new_hires": Metric("New hires", "persons", 0),
}
"""Financial metrics, keyed by the normalised label the rule extractor gives their row."""


@dataclass
class Entity:
    """A person, organisation, place or event with a unique invented name."""

    id: str
    """Stable id "<kind>-<slug of name>"."""
    kind: str
    """One of ENTITY_KINDS."""
    subtype: str
    """Finer kind: company/institution, city/country, summit/expo/..., or "" for people."""
    name: str
    aliases: list[str] = field(default_factory=list)
    """Other names: initials and short forms for organisations, nicknames for people and cities."""
    pronoun: str = "it"
    """How prose refers back to the entity (he, she, they for people; it otherwise)."""

    @property
    def slug(self) -> str:
        return self.id.split("-", 1)[1]


@dataclass(frozen=True)
class Fact:
    """One ground-truth statement about the world, independent of any document."""

    head: str
    """Entity id."""
    relation: str
    """A key of RELATIONS."""
    tail: str
    """Entity id when RELATIONS[relation].tail is an entity kind, else the canonical literal
    (ISO date, year, plain number, or a phrase)."""
    date: str | None = None
    """Year the fact started or happened, for dated relations."""

    @property
    def tail_is_entity(self) -> bool:
        return RELATIONS[self.relation].tail != "value"


@dataclass(frozen=True)
class FinancialRow:
    """One cell of a company's financial table: the ground truth numerical questions rest on."""

    company: str
    """Entity id of the company."""
    year: int
    metric: str
    """A key of METRICS."""
    value: float
    """Exact value, already rounded to the metric's printed decimals."""
    unit: str


@dataclass(frozen=True)
class Turn:
    """One line of a dialogue."""

    speaker: str
    """Entity id of the person speaking."""
    text: str


@dataclass
class Dialogue:
    """A multi-party conversation and the document it was rendered to."""

    doc_id: str
    scenario: str
    """meeting, planning or gossip."""
    participants: list[str]
    """Entity ids of the speakers."""
    turns: list[Turn]


@dataclass
class DocTruth:
    """The triples one document states, split by where they are written.

    Heads and entity tails are surface strings as written in the document (a name, an alias,
    or for a pronoun the document subject's name); literal tails are canonical (ISO dates, plain
    numbers with the document's digit grouping, "<value> <unit>" for table cells).
    """

    infobox: list[Triple] = field(default_factory=list)
    prose: list[Triple] = field(default_factory=list)
    table: list[Triple] = field(default_factory=list)

    def parts(self, parts: tuple[str, ...] = TRIPLE_PARTS) -> list[Triple]:
        return [t for part in parts for t in getattr(self, part)]


@dataclass
class World:
    """A built world: ground truth plus the documents written from it."""

    config: WorldConfig
    entities: list[Entity]
    facts: list[Fact]
    financials: list[FinancialRow]
    documents: list[Document]
    dialogues: list[Dialogue]
    truth: dict[str, DocTruth]
    """Document id -> the triples that document states."""
    # Indexes over entities, facts and financials, built once: those lists are final when the
    # world is constructed (`build_world` adds only documents, dialogues and truth afterwards).
    _by_id: dict[str, Entity] = field(init=False, repr=False)
    _by_head: dict[str, list[Fact]] = field(init=False, repr=False)
    _by_company: dict[str, list[FinancialRow]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {e.id: e for e in self.entities}
        self._by_head = {}
        for fact in self.facts:
            self._by_head.setdefault(fact.head, []).append(fact)
        self._by_company = {}
        for row in self.financials:
            self._by_company.setdefault(row.company, []).append(row)

    def entity(self, entity_id: str) -> Entity:
        return self._by_id[entity_id]

    def by_name(self, name: str) -> Entity | None:
        """The entity whose name or alias is `name` (names and aliases are unique in a world)."""
        wanted = name.casefold()
        for e in self.entities:
            if e.name.casefold() == wanted or any(a.casefold() == wanted for a in e.aliases):
                return e
        return None

    def entities_of(self, kind: str, subtype: str | None = None) -> list[Entity]:
        return [
            e for e in self.entities if e.kind == kind and (subtype is None or e.subtype == subtype)
        ]

    def facts_about(self, entity_id: str, relation: str | None = None) -> list[Fact]:
        """Facts whose head is `entity_id` (optionally of one relation), in build order."""
        facts = self._by_head.get(entity_id, [])
        return [f for f in facts if relation is None or f.relation == relation]

    def value(self, entity_id: str, relation: str) -> str | None:
        """The tail of the first `relation` fact about `entity_id`, or None."""
        found = self.facts_about(entity_id, relation)
        return found[0].tail if found else None

    def financials_of(self, company_id: str) -> list[FinancialRow]:
        """Every financial row of one company, in (year, metric) order."""
        return self._by_company.get(company_id, [])

    def financial(self, company_id: str, year: int, metric: str) -> FinancialRow | None:
        for row in self.financials_of(company_id):
            if row.year == year and row.metric == metric:
                return row
        return None

    def document(self, doc_id: str) -> Document:
        for doc in self.documents:
            if doc.id == doc_id:
                return doc
        raise KeyError(doc_id)

    def triples(self, doc_id: str, parts: tuple[str, ...] = TRIPLE_PARTS) -> list[Triple]:
        """Ground-truth triples stated in one document, from the given parts."""
        return self.truth[doc_id].parts(parts)

    def all_triples(self, parts: tuple[str, ...] = TRIPLE_PARTS) -> list[Triple]:
        return [t for doc in self.documents for t in self.triples(doc.id, parts)]
