"""Encyclopedia articles: an infobox block at the top, then varied prose about the entity.

Infobox format (one fact per line, fixed so any reader can parse it):

    {{Infobox <kind>
    | name = <entity name>
    | <relation> = <value>[; <value> ...] [(<dating> <year>)]
    }}

`<kind>` is person, company, institution, settlement, country or event; `<relation>` is the
normalised relation label (aliases are written `other_names`); several values are separated by
"; "; a dated fact ends in a parenthesis with its year: "(since 1994)", "(1983)", "(m. 1990)".
Entity values use the full name, literals their canonical form (ISO dates, plain numbers).

The prose restates most infobox facts with varied templates, in shuffled order, with fact-free
filler sentences, and adds the facts that appear only in prose (RELATIONS[...].prose_only).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from qwenlong.core.records import Document
from qwenlong.core.seeding import derive_rng
from qwenlong.synth.interfaces import Triple
from qwenlong.synth.world.model import RELATIONS, DocTruth, Entity, Fact, World
from qwenlong.synth.world.phrases import FACT_TEMPLATES, FILLERS, SECTION_TITLES
from qwenlong.synth.world.text import (
    Sentences,
    format_date,
    group_digits,
    indefinite,
    sentence_case,
    slots,
)

INFOBOX_KINDS: dict[str, str] = {
    "person": "person",
    "company": "company",
    "institution": "institution",
    "city": "settlement",
    "country": "country",
}
"""Entity subtype -> infobox kind; event subtypes (summit, expo, ...) all use "event"."""

INFOBOX_FIELDS: dict[str, tuple[str, ...]] = {
    "person": (
        "alias",
        "birth_date",
        "birth_place",
        "occupation",
        "employer",
        "education",
        "spouse",
    ),
    "company": ("alias", "industry", "founded", "founder", "headquarters", "parent"),
    "institution": ("alias", "type", "founded", "headquarters"),
    "settlement": ("alias", "country", "founded", "population"),
    "country": ("alias", "capital", "founded", "population"),
    "event": ("date", "location", "organiser", "participants"),
}
"""Infobox lines in order, per infobox kind."""

DATE_MARKS: dict[str, str] = {"employer": "since ", "education": "", "spouse": "m. "}
"""How the year of a dated fact is written inside the infobox parenthesis."""

PAIRED = (("birth_place", "birth_date"), ("founded", "founder"), ("location", "date"))
"""Facts a single sentence may state together when both are due for the prose."""

RESTATE_PROBABILITY = 0.75
"""Chance that an infobox fact is also stated in prose. Our choice: most, not all."""

PRONOUNS = {"he": ("he", "his", "him"), "she": ("she", "her", "her"), "it": ("it", "its", "it")}


def article_id(world_seed: int, entity: Entity) -> str:
    return f"world-{world_seed}-article-{entity.slug}"


def infobox_kind(entity: Entity) -> str:
    return INFOBOX_KINDS.get(entity.subtype, "event" if entity.kind == "event" else entity.kind)


def shown_aliases(entity: Entity) -> list[str]:
    """Aliases worth printing: a person's bare surname is a short form, not an other name."""
    surname = entity.name.split()[-1] if entity.kind == "person" else None
    return [a for a in entity.aliases if a != surname]


def short_form(entity: Entity) -> str:
    """How later sentences name the entity: surname, abbreviation, or the name itself."""
    if entity.kind == "person":
        return entity.name.split()[-1]
    if entity.kind == "organisation" and entity.aliases:
        return entity.aliases[0]
    return entity.name


def tail_surface(world: World, fact: Fact, rng: random.Random) -> str:
    """The tail as this sentence writes it (entities: name, sometimes an organisation alias)."""
    if not fact.tail_is_entity:
        return fact.tail
    tail = world.entity(fact.tail)
    if tail.kind == "organisation" and tail.aliases and rng.random() < 0.25:
        return tail.aliases[0]
    if tail.subtype == "city" and tail.aliases and rng.random() < 0.1:
        return tail.aliases[0]
    return tail.name


LITERAL_PROSE: dict[str, Callable[[str, random.Random], str]] = {
    "birth_date": lambda iso, rng: format_date(iso, rng.choice(("dmy", "mdy"))),
    "population": lambda value, rng: group_digits(value),
    "students": lambda value, rng: group_digits(value),
    "attendance": lambda value, rng: group_digits(value),
    "occupation": lambda value, rng: indefinite(value),
    "type": lambda value, rng: indefinite(value),
}
"""How prose writes a literal (the truth keeps the canonical form); others appear as stored."""


def literal_text(fact: Fact, rng: random.Random) -> str:
    render = LITERAL_PROSE.get(fact.relation)
    return render(fact.tail, rng) if render else fact.tail


def make_triple(
    world: World,
    doc_id: str,
    head: Entity,
    head_text: str,
    fact: Fact,
    tail: str,
    date: str | None = None,
    evidence: str = "",
) -> Triple:
    """The ground-truth triple for `fact` as one document writes it."""
    tail_kind = world.entity(fact.tail).kind if fact.tail_is_entity else "value"
    return Triple(head_text, fact.relation, tail, doc_id, date, evidence, head.kind, tail_kind)


def render_infobox(world: World, entity: Entity, doc_id: str) -> tuple[str, list[Triple]]:
    """The infobox block and the triples its lines state."""
    kind = infobox_kind(entity)
    lines = [f"{{{{Infobox {kind}", f"| name = {entity.name}"]
    triples: list[Triple] = []
    for relation in INFOBOX_FIELDS[kind]:
        facts = world.facts_about(entity.id, relation)
        if relation == "alias":
            shown = set(shown_aliases(entity))
            facts = [f for f in facts if f.tail in shown]
        if not facts:
            continue
        mark = DATE_MARKS.get(relation)
        written = []
        for fact in facts:
            tail = world.entity(fact.tail).name if fact.tail_is_entity else fact.tail
            date = fact.date if mark is not None else None
            written.append((fact, tail, date, f"{tail} ({mark}{date})" if date else tail))
        key = "other_names" if relation == "alias" else relation
        line = f"| {key} = {'; '.join(w[3] for w in written)}"
        lines.append(line)
        triples.extend(
            make_triple(world, doc_id, entity, entity.name, f, t, date=d, evidence=line)
            for f, t, d, _ in written
        )
    lines.append("}}")
    return "\n".join(lines), triples


def _pronoun_ok(template: str) -> bool:
    """A pronoun subject reads well only at the start of a sentence or clause."""
    return template.startswith(("{s}", "{sp}")) or ", {s}" in template or ", {sp}" in template


def _subject(
    entity: Entity, template: str, first: bool, rng: random.Random, allow_pronoun: bool = True
) -> tuple[str, bool]:
    """(subject text, whether it is a pronoun) for one sentence."""
    if first or "{alias}" in template:  # "X is also known as X" must not happen
        return entity.name, False
    roll = rng.random()
    if roll < 0.3 and allow_pronoun and _pronoun_ok(template):
        return PRONOUNS[entity.pronoun][0], True
    if roll < 0.6:
        return short_form(entity), False
    return entity.name, False


def write_fact_sentence(
    world: World,
    entity: Entity,
    facts: list[Fact],
    doc_id: str,
    rng: random.Random,
    first: bool = False,
    spoken: bool = False,
) -> tuple[str, list[Triple]]:
    """One sentence stating `facts` (all about `entity`) and the triples it states.

    `spoken` sentences (dialogue turns) name the entity outright and start with a name, so a
    speaker can prefix them ("Apparently, ...") without a dangling pronoun.
    """
    key = tuple(f.relation for f in facts)
    templates = FACT_TEMPLATES[key]
    if spoken:
        templates = tuple(t for t in templates if t.startswith("{") and not t.startswith("{sp}"))
    template = rng.choice(templates)
    subject, is_pronoun = _subject(entity, template, first, rng, allow_pronoun=not spoken)
    _pronoun, possessive, objective = PRONOUNS[entity.pronoun]
    values: dict[str, str] = {
        "s": subject,
        "sp": possessive if is_pronoun else f"{subject}'s",
        "pos": possessive,
        "obj": objective,
    }
    used = set(slots(template))
    triples = []
    head_text = entity.name if is_pronoun or ("s" not in used and "sp" not in used) else subject
    for fact in facts:
        tail = tail_surface(world, fact, rng)
        values[fact.relation] = tail if fact.tail_is_entity else literal_text(fact, rng)
        values[f"{fact.relation}_date"] = fact.date or ""
        date = fact.date if f"{fact.relation}_date" in used else None
        triples.append((fact, tail, date))
    sentence = sentence_case(template.format_map(values))
    return sentence, [
        make_triple(world, doc_id, entity, head_text, f, t, date=d, evidence=sentence)
        for f, t, d in triples
    ]


def prose_units(world: World, entity: Entity, rng: random.Random) -> list[list[Fact]]:
    """The facts the prose states, grouped into sentences, in shuffled order."""
    shown = set(shown_aliases(entity))
    due = [
        f
        for f in world.facts_about(entity.id)
        if (f.relation != "alias" or f.tail in shown)
        and (RELATIONS[f.relation].prose_only or rng.random() < RESTATE_PROBABILITY)
    ]
    units: list[list[Fact]] = []
    for pair in PAIRED:
        firsts = [f for f in due if f.relation == pair[0]]
        seconds = [f for f in due if f.relation == pair[1]]
        if len(firsts) == 1 and len(seconds) == 1 and rng.random() < 0.6:
            units.append([firsts[0], seconds[0]])
            due = [f for f in due if f not in (firsts[0], seconds[0])]
    units.extend([f] for f in due)
    rng.shuffle(units)
    return units


def write_article(world: World, entity: Entity) -> tuple[Document, DocTruth]:
    """The encyclopedia article about one entity, with its ground truth."""
    doc_id = article_id(world.config.seed, entity)
    rng = derive_rng(world.config.seed, "article", entity.id)
    infobox, infobox_truth = render_infobox(world, entity, doc_id)
    if not world.config.article_prose:
        return _document(world, entity, doc_id, infobox), DocTruth(infobox=infobox_truth, prose=[])
    prose = Sentences()
    for i, unit in enumerate(prose_units(world, entity, rng)):
        prose.add(*write_fact_sentence(world, entity, unit, doc_id, rng, first=i == 0))
    pool = FILLERS[entity.kind]
    low, high = world.config.filler_sentences
    _pronoun, possessive, objective = PRONOUNS[entity.pronoun]
    for filler in rng.sample(pool, min(len(pool), rng.randint(low, high))):
        name = rng.choice((entity.name, short_form(entity)))
        text = sentence_case(filler.format(s=name, pos=possessive, obj=objective))
        prose.lines.insert(rng.randint(1, max(1, len(prose.lines))), text)
    paragraphs = _paragraphs(prose.lines, SECTION_TITLES[entity.kind], rng)
    text = infobox + "\n\n" + "\n\n".join(paragraphs)
    return _document(world, entity, doc_id, text), DocTruth(
        infobox=infobox_truth, prose=prose.triples
    )


def _document(world: World, entity: Entity, doc_id: str, text: str) -> Document:
    return Document(
        id=doc_id,
        text=text,
        domain="general",
        title=entity.name,
        source=f"fictional-world:{world.config.seed}",
        meta={"subject": entity.name, "entity": entity.id, "doc_kind": "article"},
    )


def _paragraphs(lines: list[str], titles: tuple[str, ...], rng: random.Random) -> list[str]:
    """Group sentences into paragraphs of 2-5, with a section heading before some of them."""
    paragraphs: list[str] = []
    headings = list(titles)
    rng.shuffle(headings)
    i = 0
    while i < len(lines):
        size = rng.randint(2, 5)
        chunk = " ".join(lines[i : i + size])
        if i and headings and rng.random() < 0.5:
            chunk = f"== {headings.pop()} ==\n{chunk}"
        paragraphs.append(chunk)
        i += size
    return paragraphs
