"""The four question paradigms of the paper: multi-fact, temporal, causal, hypothetical.

Each paradigm says which paths it can use (`accepts`), the fewest hops it needs, and writes a
question from a path with one of several fixed phrasings picked by the rng. All of them keep
the answer re-derivable by walking the path's facts; what differs is what the reader is given
and asked:

- multi-fact: the anchor, then every hop; the answer is at the end of the chain.
- temporal: as multi-fact, but every dated hop carries its (obfuscated) date or is picked by
  order, and the path must have a dated fact or end in a year.
- causal: both ends are given ("A is connected to Z through ..."); the answer is the bridge
  entity at a random inner position, the one that explains the connection. The far end must be
  an entity (a connection to a year or a number explains nothing).
- hypothetical: "suppose A's r1 were B's r1": the answer follows B's chain, while A's own chain
  leads elsewhere, so reading A's facts gives a wrong answer. Two hops at least: with one, the
  question merely asks for B's r1 in other words.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from qwenlong.core.registry import Registry
from qwenlong.synth.kg.graph import Edge, parse_year
from qwenlong.synth.kg.obfuscate import Description
from qwenlong.synth.kg.paths import Path
from qwenlong.synth.kg.questions import (
    ASSUME_PREFIX,
    Qualifier,
    Question,
    QuestionWriter,
    capitalize,
)
from qwenlong.synth.kg.relations import noun_phrase

NAMED_KINDS = ("person", "organisation", "place", "event")
"""Kinds a question may name ("Which place is ..."); others are asked with "What is"."""

Write = Callable[[QuestionWriter, Path, random.Random, Collection[str] | None], Question | None]


@dataclass(frozen=True)
class Paradigm:
    """A question paradigm: which paths it takes and how it writes them.

    `write(writer, path, rng, allowed_docs)`: `allowed_docs` limits description facts to those
    documents (a reading question stays within its one document); None allows any.
    """

    min_hops: int
    accepts: Callable[[QuestionWriter, Path], bool]
    write: Write


PARADIGMS: Registry[Paradigm] = Registry("question paradigm")


def _any_path(_: QuestionWriter, __: Path) -> bool:
    return True


def _chain_question(paradigm: str, temporal: bool) -> Write:
    """Multi-fact and temporal questions: the chain from the anchor to the end of the path."""

    def write(
        w: QuestionWriter, path: Path, rng: random.Random, allowed_docs: Collection[str] | None
    ) -> Question | None:
        nodes, hops = path.nodes, path.hops
        anchor = w.anchor(path, allowed_docs)
        quals = [w.qualifier(h, rng, temporal) for h in hops]
        descs = [w.intermediate(path, i) for i in range(1, len(nodes) - 1)]
        nps = w.nested(hops, anchor.text, quals)
        notes = [f"Note that {np} is {d.text}." for np, d in zip(nps, descs, strict=False) if d]
        style = rng.randrange(3)
        if style == 0:
            text = f"What is {nps[-1]}? " + " ".join(notes)
        elif style == 1:
            sentences = []
            subject = anchor.text
            for i, (hop, qual) in enumerate(zip(hops, quals, strict=True)):
                np = noun_phrase(hop.relation, subject) + qual.suffix
                if i == len(hops) - 1:
                    sentences.append(f"What is {np}?")
                else:
                    desc = descs[i]
                    lead = "Take" if i == 0 else "Then take"
                    sentences.append(f"{lead} {np}" + (f", {desc.text}" if desc else "") + ".")
                    subject = f"that {w.kind_word(nodes[i + 1])}"
            text = " ".join(sentences)
        else:
            kind = w.kind_word(nodes[-1])
            ask = f"Which {kind} is" if kind in NAMED_KINDS else "What is"
            text = f"{ask} {nps[-1]}? " + " ".join(notes)
        chain = _hop_chain(w, path, anchor.facts, descs, allowed_docs)
        anchors = [q.anchor for q in quals] + [anchor.text]
        described = nodes[1:] if anchor.named else nodes
        return w.finish(paradigm, capitalize(text), path, len(nodes) - 1, chain, anchors, described)

    return write


def _hop_chain(
    w: QuestionWriter,
    path: Path,
    anchor_facts: Sequence[Edge],
    descs: Sequence[Description | None],
    allowed_docs: Collection[str] | None,
) -> list[tuple[str, str]]:
    """Anchor clues, then each hop followed by the clues of its tail's description."""
    chain = w.clue_lines(anchor_facts, allowed_docs)
    for i, hop in enumerate(path.hops):
        chain.append((w.line(hop, hop.doc_id), hop.doc_id))
        if i < len(descs) and descs[i] is not None:
            chain.extend(w.clue_lines(descs[i].facts, None))
    return chain


def _temporal_path(w: QuestionWriter, path: Path) -> bool:
    """A dated hop on the path, or a year as the answer."""
    last = path.nodes[-1]
    return any(parse_year(h.date) for h in path.hops) or w.graph.year(last) is not None


PARADIGMS.add("multi_fact", Paradigm(1, _any_path, _chain_question("multi_fact", False)))
PARADIGMS.add("temporal", Paradigm(1, _temporal_path, _chain_question("temporal", True)))


def _causal(
    w: QuestionWriter, path: Path, rng: random.Random, allowed_docs: Collection[str] | None
) -> Question | None:
    nodes, hops = path.nodes, path.hops
    k = len(hops)
    j = rng.randint(1, k - 1)
    anchor = w.anchor(path, allowed_docs)
    end = w.graph.name(nodes[-1])
    quals = [w.qualifier(h, rng, False) for h in hops]
    descs = [None if i == j else w.intermediate(path, i) for i in range(1, k)]
    kind = w.kind_word(nodes[j]) if w.kind_word(nodes[j]) in NAMED_KINDS else "entity"
    style = rng.randrange(3)
    if style == 0:
        labels = [f"X{i}" for i in range(k)] + [end]
        facts = []
        for i, (hop, qual) in enumerate(zip(hops, quals, strict=True), 1):
            np = noun_phrase(hop.relation, labels[i - 1]) + qual.suffix
            desc = descs[i - 1] if i < k else None
            subject = labels[i] + (f", {desc.text}," if desc else "")
            facts.append(f"{subject} is {np}")
        text = (
            f"{capitalize(anchor.text)} (call it X0) is connected to {end} through a chain of "
            f"facts: {'; '.join(facts)}. Which {kind} is X{j}?"
        )
    else:
        nps = w.nested(hops, anchor.text, quals)
        notes = [f"Note that {np} is {d.text}." for np, d in zip(nps, descs, strict=False) if d]
        if style == 1:
            text = (
                f"Why is {anchor.text} linked to {end}? Because {nps[-1]} is {end}. "
                f"In that explanation, which {kind} is {nps[j - 1]}? "
            )
        else:
            text = (
                f"{capitalize(nps[-1])} is {end}. Which {kind} along the way, {nps[j - 1]}, "
                f"brings {anchor.text} to {end}? "
            )
        text += " ".join(notes)
    chain = _hop_chain(w, path, anchor.facts, descs, allowed_docs)
    anchors = [q.anchor for q in quals] + [end] + [anchor.text]
    described = [n for n in nodes[1:-1]] + ([] if anchor.named else [nodes[0]])
    return w.finish("causal", text, path, j, chain, anchors, described)


def _entity_end(w: QuestionWriter, path: Path) -> bool:
    """The far end is an entity: "A is connected to 1995" is not a connection."""
    return not w.graph.is_value(path.nodes[-1])


PARADIGMS.add("causal", Paradigm(2, _entity_end, _causal))


def _walk(w: QuestionWriter, start: str, relations: list[str]) -> str | None:
    """Follow `relations` from `start` while each has exactly one tail; None when it cannot."""
    node = start
    for relation in relations:
        tails = w.graph.tails(node, relation)
        if len(tails) != 1:
            return None
        node = tails[0]
    return node


def _hypothetical(
    w: QuestionWriter, path: Path, rng: random.Random, allowed_docs: Collection[str] | None
) -> Question | None:
    """ "Suppose A's r1 were B's r1": A is a same-kind entity whose own r1 (single) differs."""
    nodes, hops = path.nodes, path.hops
    first = hops[0]
    b = nodes[0]
    relations = [h.relation for h in hops]
    others = []
    for a in w.graph.entities():
        if a in nodes or w.graph.kind(a) != w.graph.kind(b):
            continue
        own = w.graph.tails(a, first.relation)
        if len(own) == 1 and own[0] != first.tail and _walk(w, a, relations) != nodes[-1]:
            others.append(a)
    if not others:
        return None
    a = rng.choice(others)
    anchor = w.anchor(path, allowed_docs, [a])
    a_name = w.graph.name(a)
    quals = [w.qualifier(h, rng, False) for h in hops]
    b_first = w.nested(hops[:1], anchor.text, quals[:1])[0]
    a_nps = w.nested(hops, a_name, [Qualifier(), *quals[1:]])
    descs = [w.intermediate(path, i, [a]) for i in range(1, len(nodes) - 1)]
    b_nps = w.nested(hops, anchor.text, quals)
    notes = [f"Note that {np} is {d.text}." for np, d in zip(b_nps, descs, strict=False) if d]
    style = rng.randrange(3)
    if style == 0:
        text = f"Suppose {a_nps[0]} were the same as {b_first}. What would {a_nps[-1]} be then?"
    elif style == 1:
        text = (
            f"Imagine that {a_nps[0]} were {b_first} instead. In that case, what would "
            f"{a_nps[-1]} be?"
        )
    else:
        text = f"If {a_nps[0]} were {b_first}, what would {a_nps[-1]} be?"
    text = capitalize(text) + " " + " ".join(notes)
    assume = f"{ASSUME_PREFIX}{a_name} --{first.relation}--> as for {w.graph.name(b)}"
    chain = [(assume, first.doc_id), *_hop_chain(w, path, anchor.facts, descs, allowed_docs)]
    anchors = [q.anchor for q in quals] + [a_name] + [anchor.text]
    described = nodes[1:] if anchor.named else nodes
    return w.finish("hypothetical", text, path, len(nodes) - 1, chain, anchors, described)


PARADIGMS.add("hypothetical", Paradigm(2, _any_path, _hypothetical))
