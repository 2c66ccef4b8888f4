"""Generator A end to end on hand-built triples, every answer re-derived by walking the triples.

The re-walk does not touch the generator's graph: it reads the raw triples with its own name
keys and alias merging, maps labels through the relation table (the shared vocabulary), and
follows each sample's reasoning chain from the anchor, checking at every hop that the triples
give exactly one next entity (using the stated date only where the question states one) and
that it is the one the chain names. The entity at the answer position must be the gold answer.
"""

from __future__ import annotations

import itertools
import random
import re
import string
from collections import defaultdict

import pytest

from qwenlong.core.errors import ConfigError
from qwenlong.core.records import TASK_TYPES, Document, TaskSample
from qwenlong.synth.interfaces import Corpus, GenerationContext, Triple
from qwenlong.synth.kg import KGConfig, KGMultihopGenerator, ParadigmCounts, PathConfig
from qwenlong.synth.kg.relations import ALIAS_LABELS, normalize_label, table_lookup

P, ORG, L, V = "person", "organisation", "place", "value"
FACTS: dict[str, list[tuple]] = {
    "d1": [
        ("Alice Moreau", "born in", "Lyon", None, P, L),
        ("Alice Moreau", "occupation", "chemist", None, P, V),
        ("Alice Moreau", "born", "1965", None, P, V),
        ("Alice Moreau", "spouse", "Bruno Keller", None, P, P),
        ("Alice Moreau", "employer", "Helix Labs", "1991", P, ORG),
        ("Alice Moreau", "works for", "Northwind Bank", "1998", P, ORG),
    ],
    "d2": [
        ("Bruno Keller", "works for", "Orbit Media", None, P, ORG),
        ("Bruno Keller", "born in", "Porto", None, P, L),
        ("Bruno Keller", "born", "1962", None, P, V),
        ("Bruno Keller", "occupation", "architect", None, P, V),
    ],
    "d3": [
        ("Helix Labs", "headquartered in", "Oslo", None, ORG, L),
        ("Helix Labs", "founded by", "Dmitri Volkov", None, ORG, P),
        ("Helix Labs", "founded", "1985", None, ORG, V),
    ],
    "d4": [
        ("Orbit Media", "based in", "Kyoto", None, ORG, L),
        ("Orbit Media", "founded", "1990", None, ORG, V),
        ("Orbit Media", "ceo", "Chiara Lenz", None, ORG, P),
    ],
    "d5": [
        ("Oslo", "located in", "Norway", None, L, L),
        ("Lyon", "located in", "France", None, L, L),
        ("Kyoto", "located in", "Japan", None, L, L),
        ("Porto", "located in", "Portugal", None, L, L),
    ],
    "d6": [
        ("Chiara Lenz", "born in", "Oslo", None, P, L),
        ("Chiara Lenz", "occupation", "chemist", None, P, V),
        ("Chiara Lenz", "married to", "Farid Haddad", None, P, P),
        ("Helix Labs", "employs", "Farid Haddad", None, ORG, P),
    ],
    "d7": [
        ("Dmitri Volkov", "born in", "Kyoto", None, P, L),
        ("Dmitri Volkov", "born", "1950", None, P, V),
        ("Dmitri Volkov", "also known as", "D. Volkov", None, P, P),
        ("D. Volkov", "educated at", "Quanta Institute", None, P, ORG),
    ],
    "d8": [
        ("Northwind Bank", "headquartered in", "Porto", None, ORG, L),
        ("Northwind Bank", "founded", "1972", None, ORG, V),
        ("Northwind Bank", "chief executive", "Elena Park", None, ORG, P),
        ("Quanta Institute", "located in", "Lyon", None, ORG, L),
    ],
    "d9": [
        ("Elena Park", "born in", "Lyon", None, P, L),
        ("Elena Park", "born", "1970", None, P, V),
        ("Elena Park", "educated at", "Quanta Institute", None, P, ORG),
        ("Farid Haddad", "born in", "Porto", None, P, L),
    ],
}


def hand_triples() -> list[Triple]:
    return [
        Triple(h, r, t, doc, date, f"{h} {r} {t}.", hk, tk)
        for doc, facts in FACTS.items()
        for h, r, t, date, hk, tk in facts
    ]


def hand_corpus() -> Corpus:
    docs = [
        Document(doc, " ".join(f"{h} {r} {t}." for h, r, t, *_ in facts))
        for doc, facts in FACTS.items()
    ]
    return Corpus(docs, lambda text: len(text.split()))


# ---- the independent re-walk ------------------------------------------------------------

CHAIN = re.compile(
    r"^(?P<head>.+?) --(?P<rel>.+?)--> (?P<tail>.+?) \[(?P<doc>[^\]]+)\](?: \((?P<date>[^)]+)\))?$"
)
ASSUME = re.compile(r"^assume: (?P<a>.+?) --(?P<rel>.+?)--> as for (?P<b>.+)$")
_PUNCT = str.maketrans("", "", string.punctuation)


def key(name: str) -> str:
    words = name.lower().translate(_PUNCT).split()
    return " ".join(w for w in words if w not in {"a", "an", "the"})


class TripleWalker:
    """Facts read straight from raw triples: (head, relation) -> {(tail, doc, year)}."""

    def __init__(self, triples: list[Triple]) -> None:
        self.alias: dict[str, str] = {}
        for t in triples:
            if normalize_label(t.relation) in ALIAS_LABELS:
                a, b = sorted([self.find(key(t.head)), self.find(key(t.tail))])
                self.alias[b] = a
        self.facts: dict[tuple[str, str], set[tuple[str, str, int | None]]] = defaultdict(set)
        for t in triples:
            label = normalize_label(t.relation)
            if label in ALIAS_LABELS:
                continue
            is_year = bool(re.fullmatch(r"\d{3,4}(-\d\d){0,2}", t.tail))
            rel, inverted = table_lookup(label, is_year) or (label, False)
            head, tail = self.find(key(t.head)), self.find(key(t.tail))
            if inverted:
                head, tail = tail, head
            year = int(t.date[:4]) if t.date else None
            self.facts[head, rel].add((tail, t.doc_id, year))

    def find(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def step(self, node: str, relation: str, date: str | None) -> set[str]:
        """Every tail the triples give for (node, relation), narrowed by the date if stated."""
        found = self.facts[node, relation]
        tails = {tail for tail, _, _ in found}
        if len(tails) > 1 and date is not None:
            tails = {tail for tail, _, year in found if year == int(date[:4])}
        return tails

    def stated_in(self, head: str, relation: str, tail: str, doc: str) -> bool:
        return any(t == tail and d == doc for t, d, _ in self.facts[head, relation])

    def rewalk(self, sample: TaskSample) -> str:
        """Walk the sample's chain from its anchor; return the entity at the answer position."""
        hops, nodes = [], []
        for line in sample.provenance.reasoning_chain:
            if line.startswith("clue: "):
                m = CHAIN.match(line.removeprefix("clue: "))
                assert m, line
                h, r, t = self.find(key(m["head"])), m["rel"], self.find(key(m["tail"]))
                assert self.stated_in(h, r, t, m["doc"]), f"clue not in the triples: {line}"
            elif line.startswith("assume: "):
                assert ASSUME.match(line), line
            else:
                m = CHAIN.match(line)
                assert m, line
                hops.append(m)
        node = self.find(key(hops[0]["head"]))
        nodes.append(node)
        for i, m in enumerate(hops):
            if i:
                assert self.find(key(m["head"])) == node, "chain is not connected"
            tails = self.step(node, m["rel"], m["date"])
            assert len(tails) == 1, f"{sample.id}: hop {m.group(0)!r} reaches {tails}"
            [node] = tails
            assert node == self.find(key(m["tail"])), f"{sample.id}: chain names {m['tail']}"
            assert self.stated_in(nodes[-1], m["rel"], node, m["doc"]), m.group(0)
            nodes.append(node)
        return nodes[int(sample.meta["answer_position"])]


def gold_text(sample: TaskSample) -> str:
    if sample.task_type == "mc":
        return sample.choices[string.ascii_uppercase.index(sample.answers[0])]
    return sample.answers[0]


# ---- the tests --------------------------------------------------------------------------

CONFIG = KGConfig(
    multihop=ParadigmCounts(multi_fact=6, temporal=4, causal=4, hypothetical=3),
    reading=ParadigmCounts(multi_fact=4, temporal=3, causal=0, hypothetical=0),
    mc=ParadigmCounts(multi_fact=3, temporal=2, causal=2, hypothetical=2),
)


def generate(
    config: KGConfig = CONFIG, seed: int = 0
) -> tuple[KGMultihopGenerator, list[TaskSample]]:
    gen = KGMultihopGenerator(config, hand_triples())
    return gen, list(
        gen.generate(hand_corpus(), GenerationContext(random.Random(seed), log=lambda _: None))
    )


@pytest.fixture(scope="module")
def made() -> tuple[KGMultihopGenerator, list[TaskSample]]:
    return generate()


def test_every_answer_is_rederived_by_walking_the_triples(made) -> None:
    _, samples = made
    walker = TripleWalker(hand_triples())
    assert len(samples) >= 25
    for sample in samples:
        assert walker.find(key(gold_text(sample))) == walker.rewalk(sample), sample.question


def test_task_types_difficulty_and_documents(made) -> None:
    gen, samples = made
    assert gen.mode == "template" and gen.stats["made_multihop"] > 0
    by_type = defaultdict(list)
    for s in samples:
        assert s.task_type in TASK_TYPES and s.provenance.generator == "kg_multihop"
        assert s.context == "" and s.difficulty == float(s.meta["hops"])
        hop_docs = [
            CHAIN.match(line)["doc"]
            for line in s.provenance.reasoning_chain
            if not line.startswith(("clue: ", "assume: "))
        ]
        assert all(a != b for a, b in itertools.pairwise(hop_docs)), "sparsity"
        assert set(hop_docs) <= set(s.provenance.source_documents) <= set(FACTS)
        by_type[s.task_type].append(s)
    assert set(by_type) == {"multihop", "reading", "mc"}
    assert all(s.difficulty >= 2 and s.answer_kind == "text" for s in by_type["multihop"])
    for s in by_type["reading"]:
        assert s.difficulty == 1 and len(s.provenance.source_documents) == 1
    assert {s.meta["paradigm"] for s in by_type["multihop"]} == {
        "multi_fact", "temporal", "causal", "hypothetical",
    }  # fmt: skip


def test_multiple_choice_has_four_distinct_options_of_the_answer_kind(made) -> None:
    _, samples = made
    kinds: dict[str, set[str]] = defaultdict(set)
    for t in hand_triples():
        kinds[key(t.head)].add(t.head_kind)
        kinds[key(t.tail)].add(t.tail_kind)
    mc = [s for s in samples if s.task_type == "mc"]
    assert mc and {s.answers[0] for s in mc} <= set("ABCD")
    letters = set()
    for s in mc:
        assert s.answer_kind == "choice" and len(s.choices) == 4
        assert len({key(c) for c in s.choices}) == 4
        assert gold_text(s) == s.meta["answer_text"]
        answer_kind = kinds[key(gold_text(s))]
        assert all(kinds[key(c)] == answer_kind for c in s.choices)
        letters.add(s.answers[0])
    assert len(letters) > 1  # the answer's position is shuffled


def test_questions_never_contain_their_answer(made) -> None:
    _, samples = made
    for s in samples:
        assert f" {key(gold_text(s))} " not in f" {key(s.question)} ", s.question


def test_same_seed_same_samples_and_ids_unique() -> None:
    _, a = generate()
    _, b = generate()
    assert a == b
    assert len({s.id for s in a}) == len(a)
    assert all(s.id.startswith("kg_multihop-") for s in a)
    _, c = generate(seed=1)
    assert [s.question for s in c] != [s.question for s in a]


def test_counts_are_met_or_reported_short() -> None:
    config = KGConfig(
        multihop=ParadigmCounts(multi_fact=2, temporal=0, causal=0, hypothetical=0),
        reading=ParadigmCounts(multi_fact=0, temporal=0, causal=0, hypothetical=0),
        mc=ParadigmCounts(multi_fact=0, temporal=0, causal=0, hypothetical=0),
        paths=PathConfig(min_hops=9, max_hops=9),
    )
    gen, samples = generate(config)
    assert samples == [] and gen.stats["short_multihop_multi_fact"] == 2
    gen, samples = generate(
        CONFIG.model_copy(
            update={"mc": ParadigmCounts(multi_fact=0, temporal=0, causal=0, hypothetical=0)}
        )
    )
    assert not [s for s in samples if s.task_type == "mc"]


def test_triples_of_documents_outside_the_corpus_are_ignored() -> None:
    extra = Triple("Zed", "employer", "Nowhere Inc", "not-in-corpus")
    gen = KGMultihopGenerator(CONFIG, [*hand_triples(), extra])
    samples = list(
        gen.generate(hand_corpus(), GenerationContext(random.Random(0), log=lambda _: None))
    )
    assert gen.stats["triples_outside_corpus"] == 1
    assert all("Nowhere" not in " ".join(s.provenance.reasoning_chain) for s in samples)


def test_domain_restriction_keeps_paths_inside_the_domains() -> None:
    corpus = hand_corpus()
    for doc in corpus.documents:
        doc.domain = "people" if doc.id in ("d1", "d2", "d6", "d7", "d9") else "other"
    gen = KGMultihopGenerator(CONFIG.model_copy(update={"domains": ("people",)}), hand_triples())
    samples = list(gen.generate(corpus, GenerationContext(random.Random(0), log=lambda _: None)))
    assert samples
    for s in samples:
        assert set(s.provenance.source_documents) <= {"d1", "d2", "d6", "d7", "d9"}


def test_answer_relations_keep_only_paths_ending_in_those_relations() -> None:
    relations = KGMultihopGenerator(CONFIG, hand_triples()).build(hand_corpus()).relations()
    wanted = "birthplace"
    assert wanted in relations
    _, samples = generate(CONFIG.model_copy(update={"answer_relations": (wanted,)}))
    assert samples
    for s in samples:
        if s.meta["paradigm"] == "hypothetical":
            continue  # its chain ends with the assumption line, not a hop
        last = CHAIN.match(s.provenance.reasoning_chain[-1])
        assert last is not None and last["rel"] == wanted, s.provenance.reasoning_chain
    _, everything = generate()
    assert len(samples) < len(everything)


def test_an_answer_relation_the_graph_lacks_is_named_with_the_known_ones() -> None:
    config = CONFIG.model_copy(update={"answer_relations": ("shoe size",)})
    with pytest.raises(ConfigError, match=r"answer_relations: shoe size not among .*birthplace"):
        generate(config)


def test_reading_cannot_ask_for_two_hop_paradigms() -> None:
    from pydantic import ValidationError

    for name in ("causal", "hypothetical"):
        counts = ParadigmCounts(
            **{"multi_fact": 1, "temporal": 0, "causal": 0, "hypothetical": 0, name: 1}
        )
        with pytest.raises(ValidationError, match=f"reading.{name} must be 0"):
            KGConfig(reading=counts)


def test_samples_score_with_the_evals_contract(made) -> None:
    from qwenlong.evals.prompts import build_messages
    from qwenlong.evals.task_metrics import score_output

    _, samples = made
    for s in samples:
        right = (
            f"The correct answer is ({s.answers[0]})"
            if s.task_type == "mc"
            else (f"Therefore, the answer is {s.answers[0]}")
        )
        wrong = (
            "The correct answer is (Z)"
            if s.task_type == "mc"
            else "Therefore, the answer is Atlantis"
        )
        assert score_output(s, right) == 1.0 and score_output(s, wrong) == 0.0
        prompt = build_messages(s)[-1]["content"]
        assert s.question in prompt and all(c in prompt for c in s.choices)
