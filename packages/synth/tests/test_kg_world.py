"""Integration: fictional world -> rule extractor -> graph -> samples, checked on the world's truth.

The world keeps its ground truth apart from its documents: entity facts by entity id, and the
financial tables. Each sample's reasoning chain is walked on that truth (not on the extracted
triples, not on the generator's graph): names resolve to world entities through the world's own
name and alias index, every hop must lead to exactly one entity or value in the world (the
stated date narrowing a dated relation, as the question does), and the walk must reach the
gold answer. Clue facts used by descriptions must be world facts too.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import defaultdict

import pytest

from qwenlong.core.records import Completion, TaskSample
from qwenlong.synth.interfaces import Corpus, GenerationContext
from qwenlong.synth.kg import KGConfig, KGMultihopGenerator, LLMTripleExtractor, ParadigmCounts
from qwenlong.synth.kg.relations import normalize_label, table_lookup

world_mod = pytest.importorskip("qwenlong.synth.world")
rule_mod = pytest.importorskip("qwenlong.synth.extract.rule")

CHAIN = re.compile(
    r"^(?:clue: )?(?P<head>.+?) --(?P<rel>.+?)--> (?P<tail>.+?) \[(?P<doc>[^\]]+)\]"
    r"(?: \((?P<date>[^)]+)\))?$"
)
_YEAR = re.compile(r"^\d{3,4}(-\d\d){0,2}$")
_QUANTITY = re.compile(r"^(-?\d[\d,]*(?:\.\d+)?)\s*(.*)$")


def literal(text: str) -> tuple:
    """A literal's identity: numbers by value and unit ("1,234.0 USD" == "1234 USD")."""
    text = " ".join(text.split())
    m = _QUANTITY.match(text)
    if m and not _YEAR.match(text):
        return ("number", round(float(m[1].replace(",", "")), 6), m[2].lower())
    return ("text", text.casefold())


class WorldTruth:
    """(head, canonical relation) -> {(tail, year)} from the world's facts and tables."""

    def __init__(self, world) -> None:
        self.world = world
        self.facts: dict[tuple, set[tuple]] = defaultdict(set)
        for f in world.facts:
            if f.relation == "alias":
                continue
            tail = f.tail if f.tail_is_entity else literal(f.tail)
            self.add(f.head, f.relation, tail, f.tail, f.date)
        for row in world.financials:
            self.add(
                row.company,
                row.metric,
                ("number", round(row.value, 6), row.unit.lower()),
                "",
                str(row.year),
            )

    def add(self, head, relation: str, tail, raw: str, date: str | None) -> None:
        label = normalize_label(relation)
        canonical, inverted = table_lookup(label, bool(_YEAR.match(raw))) or (label, False)
        if inverted and isinstance(tail, str):
            head, tail = tail, head
        elif inverted:  # "employees: 5560 persons" is not "employer" read backwards
            canonical = label
        self.facts[head, canonical].add((tail, int(date[:4]) if date else None))

    def resolve(self, name: str):
        entity = self.world.by_name(name)
        return entity.id if entity is not None else literal(name)

    def step(self, node, relation: str, date: str | None) -> set:
        found = self.facts[node, relation]
        tails = {t for t, _ in found}
        if len(tails) > 1 and date:
            tails = {t for t, year in found if year == int(date[:4])}
        return tails

    def rewalk(self, sample: TaskSample):
        hops = []
        for line in sample.provenance.reasoning_chain:
            if line.startswith("assume: "):
                continue
            m = CHAIN.match(line)
            assert m, line
            head, tail = self.resolve(m["head"]), self.resolve(m["tail"])
            if line.startswith("clue: "):
                assert tail in {t for t, _ in self.facts[head, m["rel"]]}, f"false clue {line}"
            else:
                hops.append((head, m["rel"], tail, m["date"], line))
        node = hops[0][0]
        nodes = [node]
        for head, rel, tail, date, line in hops:
            assert head == node, f"{sample.id}: chain breaks at {line}"
            tails = self.step(node, rel, date)
            assert tails == {tail}, f"{sample.id}: {line} reaches {tails} in the world"
            node = tail
            nodes.append(node)
        return nodes[int(sample.meta["answer_position"])]


def gold(sample: TaskSample) -> str:
    if sample.task_type == "mc":
        return sample.choices[string.ascii_uppercase.index(sample.answers[0])]
    return sample.answers[0]


def assert_rederived(truth: WorldTruth, sample: TaskSample) -> None:
    """The world walk reaches the gold answer (a date is asked, and answered, by its year)."""
    reached, answer = truth.rewalk(sample), gold(sample)
    if reached != truth.resolve(answer):
        assert isinstance(reached, tuple) and _YEAR.match(reached[1]), sample.question
        assert reached[1][:4] == answer, sample.question


@pytest.mark.parametrize("seed", [0, 1])
def test_world_samples_rederive_from_the_worlds_ground_truth(seed: int) -> None:
    world = world_mod.build_world(world_mod.WorldConfig(seed=seed))
    extracted = rule_mod.RuleTripleExtractor().extract(world.documents)
    triples = [t for per_doc in extracted for t in per_doc]
    config = KGConfig(
        multihop=ParadigmCounts(multi_fact=8, temporal=6, causal=6, hypothetical=6),
        reading=ParadigmCounts(multi_fact=6, temporal=4, causal=0, hypothetical=0),
        mc=ParadigmCounts(multi_fact=4, temporal=3, causal=3, hypothetical=3),
    )
    gen = KGMultihopGenerator(config, triples)
    corpus = Corpus(world.documents, lambda text: len(text.split()))
    samples = list(gen.generate(corpus, GenerationContext(random.Random(seed), log=lambda _: None)))
    assert len(samples) >= 40, gen.stats
    assert {s.task_type for s in samples} == {"multihop", "reading", "mc"}
    truth = WorldTruth(world)
    for sample in samples:
        assert_rederived(truth, sample)


class TruthfulExtractorModel:
    """A `ChatModel` that answers extraction prompts with the world's own triples for the piece.

    It stands in for a perfect LLM: for the piece in the prompt it lists every ground-truth
    triple whose evidence line lies in that piece, as the JSON the prompt asks for.
    """

    name = "world-truth"

    def __init__(self, world) -> None:
        self.triples = [t for doc in world.documents for t in world.triples(doc.id)]
        self.calls = 0

    def generate(self, conversations, sampling):
        self.calls += 1
        replies = []
        for conversation in conversations:
            piece = conversation[0]["content"].split("Text:\n", 1)[1]
            facts = [
                {"head": t.head, "relation": t.relation, "tail": t.tail, "date": t.date,
                 "head_kind": t.head_kind, "tail_kind": t.tail_kind}
                for t in self.triples
                if t.evidence and t.evidence in piece
            ]  # fmt: skip
            replies.append([Completion(json.dumps(facts))])
        return replies

    def close(self) -> None:
        """Nothing to release."""


def test_llm_extractor_path_on_the_world() -> None:
    world = world_mod.build_world(world_mod.WorldConfig(seed=2))
    model = TruthfulExtractorModel(world)
    extractor = LLMTripleExtractor(model)
    triples = [t for per_doc in extractor.extract(world.documents) for t in per_doc]
    assert model.calls == 1 and extractor.stats.failures == 0 and extractor.stats.retries == 0
    assert extractor.stats.facts > 0.9 * len(model.triples)
    gen = KGMultihopGenerator(KGConfig(), triples)
    corpus = Corpus(world.documents, lambda text: len(text.split()))
    samples = list(gen.generate(corpus, GenerationContext(random.Random(2), log=lambda _: None)))
    assert len(samples) >= 15, gen.stats
    truth = WorldTruth(world)
    for sample in samples:
        assert_rederived(truth, sample)
