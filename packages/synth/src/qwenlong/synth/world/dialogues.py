"""Multi-party dialogues (domain "dialogue"): named people from the world talking over many turns.

Three scenarios, each centred on a few world entities: a meeting at one company, planning around
an event, and gossip about companies and people. About `dialogue_fact_rate` of the turns state a
world fact (recorded as prose truth); the rest is logistics and small talk. The text is a short
header (title, date, participants) and then one "Name: utterance" line per turn, where Name is
the speaker's given name (the full name when two speakers share a given name).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from qwenlong.core.records import Document
from qwenlong.core.seeding import derive_rng
from qwenlong.synth.interfaces import Triple
from qwenlong.synth.world.articles import write_fact_sentence
from qwenlong.synth.world.model import Dialogue, DocTruth, Entity, Fact, FinancialRow, Turn, World
from qwenlong.synth.world.reports import metric_sentence

OPENERS = ("", "", "Apparently, ", "By the way, ", "Fun fact: ", "I read that ", "Remember, ",
           "For the record, ", "Someone told me ", "As far as I know, ")  # fmt: skip
CLOSERS = (".", ".", ", if I remember right.", ", or so I heard.", ", it was in the newsletter.",
           ", which surprised me.", ", for what it's worth.")  # fmt: skip
CHATTER = (
    "{other}, could you share your screen?", "Sorry, I was on mute.", "Let's park that for now.",
    "Can someone take notes today?", "Good point, {other}.", "I agree with {other} on this.",
    "Shall we move to the next item?", "I'll follow up by email.", "Does Thursday work for everyone?",
    "Coffee first, then the agenda.", "Did anyone watch the match last night?",
    "I have another call in twenty minutes.", "That matches what I heard.", "Let me check my notes.",
    "Honestly, I'm not sure about that.", "We should book the rooms early.",
    "Who is handling the budget?", "I can draft the invitation.", "Let's keep it informal.",
    "Has the agenda been circulated?", "Sounds good to me.", "Any objections?",
    "{other}, what do you think?", "I'll need to double-check that.", "Can we come back to this later?",
    "The printer on our floor is broken again.", "I'm still catching up on last week's emails.",
    "Let's not overcomplicate it.", "{other}, you mentioned something similar last time.",
    "Good, that's settled then.", "I'd rather wait for the final numbers.",
    "The trains were delayed again this morning.", "Right, next topic.",
)  # fmt: skip
"""Fact-free turns; "{other}" is another participant's given name."""

TITLES = {
    "meeting": ("Meeting notes: weekly sync at {name}", "Minutes: {name} team meeting"),
    "planning": ("Planning call: {name}", "Notes from the {name} preparation call"),
    "gossip": ("Lunch conversation", "Chat over coffee", "Break-room conversation"),
}

FIGURES_PER_COMPANY = 6
"""Financial figures a dialogue may mention per company in focus (our choice: a few, not the table)."""

Item = Fact | FinancialRow
"""Something a turn can state: a fact or a financial figure."""


def _staff(world: World, org_id: str) -> list[str]:
    return [f.head for f in world.facts if f.relation == "employer" and f.tail == org_id]


def _meeting(world: World, rng: random.Random) -> tuple[str, list[str], list[str]]:
    """(title name, focus entity ids, preferred speaker ids) for a company meeting."""
    company = rng.choice(world.entities_of("organisation", "company"))
    focus = [
        company.id,
        *(
            f.tail
            for f in world.facts_about(company.id)
            if f.tail_is_entity and f.relation != "alias"
        ),
    ]
    return company.name, focus, _staff(world, company.id)


def _planning(world: World, rng: random.Random) -> tuple[str, list[str], list[str]]:
    events = world.entities_of("event")
    if not events:
        return _gossip(world, rng)
    event = rng.choice(events)
    linked = [f.tail for f in world.facts_about(event.id) if f.tail_is_entity]
    return event.name, [event.id, *dict.fromkeys(linked)], []


def _gossip(world: World, rng: random.Random) -> tuple[str, list[str], list[str]]:
    companies = world.entities_of("organisation", "company")
    people = world.entities_of("person")
    focus = rng.sample(companies, min(2, len(companies))) + rng.sample(people, min(3, len(people)))
    return "", [e.id for e in focus], []


SCENARIOS: dict[str, Callable[[World, random.Random], tuple[str, list[str], list[str]]]] = {
    "meeting": _meeting,
    "planning": _planning,
    "gossip": _gossip,
}
"""Scenario -> picks the entities it talks about and who is likely to attend."""


def _participants(world: World, preferred: list[str], rng: random.Random) -> list[Entity]:
    """Speakers: colleagues of the focus first, then anyone."""
    low, high = world.config.dialogue_speakers
    wanted = rng.randint(low, high)
    others = [e.id for e in world.entities_of("person") if e.id not in set(preferred)]
    seats = rng.sample(preferred, min(len(preferred), wanted))
    seats += rng.sample(others, wanted - len(seats))
    return [world.entity(p) for p in seats]


def speaker_labels(speakers: list[Entity]) -> dict[str, str]:
    """Entity id -> how its lines are labelled: the given name, or the full name if two share it."""
    given = [p.name.split()[0] for p in speakers]
    return {
        p.id: g if given.count(g) == 1 else p.name for p, g in zip(speakers, given, strict=True)
    }


def _items(world: World, focus: list[str], rng: random.Random) -> list[Item]:
    """What the dialogue may state: facts about the focus and a few of its companies' figures."""
    items: list[Item] = [f for e in focus for f in world.facts_about(e) if f.relation != "alias"]
    companies = {e for e in focus if world.entity(e).subtype == "company"}
    for company in sorted(companies):
        rows = world.financials_of(company)
        items.extend(rng.sample(rows, min(len(rows), FIGURES_PER_COMPANY)))
    return items


def _state(world: World, item: Item, doc_id: str, rng: random.Random) -> tuple[str, list[Triple]]:
    if isinstance(item, FinancialRow):
        sentence, triple = metric_sentence(
            world.entity(item.company), item, doc_id, rng, spoken=True
        )
        return sentence, [triple]
    return write_fact_sentence(world, world.entity(item.head), [item], doc_id, rng, spoken=True)


def write_dialogue(world: World, index: int) -> tuple[Document, DocTruth, Dialogue]:
    """Dialogue number `index`: its document, the triples its turns state, and its turns."""
    doc_id = f"world-{world.config.seed}-dialogue-{index}"
    rng = derive_rng(world.config.seed, "dialogue", index)
    scenario = rng.choice(list(SCENARIOS))
    name, focus, preferred = SCENARIOS[scenario](world, rng)
    speakers = _participants(world, preferred, rng)
    label = speaker_labels(speakers)
    seated = {p.id for p in speakers}
    # people do not talk about themselves in the third person
    items = [
        i for i in _items(world, focus, rng)
        if not isinstance(i, Fact) or (i.head not in seated and i.tail not in seated)
    ]  # fmt: skip
    rng.shuffle(items)
    turns: list[Turn] = []
    truth: list[Triple] = []
    previous = None
    for _ in range(rng.randint(*world.config.dialogue_turns)):
        speaker = rng.choice([p for p in speakers if p.id != previous])
        previous = speaker.id
        if items and rng.random() < world.config.dialogue_fact_rate:
            sentence, triples = _state(world, items.pop(), doc_id, rng)
            text = rng.choice(OPENERS) + sentence[:-1] + rng.choice(CLOSERS)
            truth.extend(replace(t, evidence=text) for t in triples)
        else:
            other = rng.choice([label[p.id] for p in speakers if p.id != speaker.id])
            text = rng.choice(CHATTER).format(other=other)
        turns.append(Turn(speaker.id, text))
    title = rng.choice(TITLES[scenario]).format(name=name)
    day = f"{world.config.report_last_year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    header = [title, f"Date: {day}", "Participants: " + ", ".join(p.name for p in speakers), ""]
    text = "\n".join(header + [f"{label[t.speaker]}: {t.text}" for t in turns])
    doc = Document(
        id=doc_id,
        text=text,
        domain="dialogue",
        title=title,
        source=f"fictional-world:{world.config.seed}",
        meta={"doc_kind": "dialogue", "scenario": scenario, "participants": ",".join(label)},
    )
    dialogue = Dialogue(doc_id, scenario, [p.id for p in speakers], turns)
    return doc, DocTruth(prose=truth), dialogue
