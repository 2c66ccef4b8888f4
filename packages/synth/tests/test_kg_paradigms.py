"""Question paradigms on hand-built graphs: exact template texts, answers, chains, leaks."""

from __future__ import annotations

import random

from qwenlong.synth.interfaces import Triple
from qwenlong.synth.kg.config import ObfuscationConfig
from qwenlong.synth.kg.graph import KnowledgeGraph, build_graph
from qwenlong.synth.kg.obfuscate import Describer
from qwenlong.synth.kg.paradigms import PARADIGMS
from qwenlong.synth.kg.paths import Hop, Path
from qwenlong.synth.kg.questions import Question, QuestionWriter

P, ORG, L = "person", "organisation", "place"


def t(
    head: str, rel: str, tail: str, doc: str, date: str | None = None, hk: str = "", tk: str = ""
) -> Triple:
    return Triple(head, rel, tail, doc, date, "", hk, tk)


def base() -> list[Triple]:
    return [
        t("Ada", "employer", "Acme", "d1", hk=P, tk=ORG),
        t("Ada", "born", "1965", "d1", tk="value"),
        t("Acme", "headquartered in", "Oslo", "d2", hk=ORG, tk=L),
        t("Acme", "founded", "1985", "d2", tk="value"),
        t("Bo", "employer", "Beta", "d3", hk=P, tk=ORG),
        t("Bo", "born", "1970", "d3", tk="value"),
        t("Beta", "headquartered in", "Rome", "d4", hk=ORG, tk=L),
    ]


def writer(g: KnowledgeGraph, obfuscate: bool, rng: random.Random | None = None) -> QuestionWriter:
    return QuestionWriter(g, Describer(g, 2), ObfuscationConfig(enabled=obfuscate), rng)


def path(
    *hops: tuple[str, str, str, str],
    dates: dict[int, str] | None = None,
    selectors: dict[int, str] | None = None,
) -> Path:
    dates, selectors = dates or {}, selectors or {}
    return Path(
        tuple(
            Hop(h, r, tl, d, dates.get(i), selectors.get(i, "only"))  # type: ignore[arg-type]
            for i, (h, r, tl, d) in enumerate(hops)
        ),
        "bfs",
    )


ADA_OSLO = path(("ada", "employer", "acme", "d1"), ("acme", "headquartered in", "oslo", "d2"))


def texts(
    name: str,
    g: KnowledgeGraph,
    p: Path,
    obfuscate: bool = False,
    seeds: int = 30,
    allowed: set[str] | None = None,
) -> dict[str, Question]:
    out = {}
    for seed in range(seeds):
        rng = random.Random(seed)
        q = PARADIGMS.get(name).write(writer(g, obfuscate, rng), p, rng, allowed)
        assert q is not None
        out[q.text] = q
    return out


def test_multi_fact_phrasings_answer_and_chain() -> None:
    found = texts("multi_fact", build_graph(base()), ADA_OSLO)
    assert set(found) == {
        "What is the headquarters of the employer of Ada?",
        "Take the employer of Ada. What is the headquarters of that organisation?",
        "Which place is the headquarters of the employer of Ada?",
    }
    q = next(iter(found.values()))
    assert q.answers == ["Oslo"] and q.answer_position == 2 and q.answer == "oslo"
    assert q.chain == ["Ada --employer--> Acme [d1]", "Acme --headquartered in--> Oslo [d2]"]
    assert q.docs == ["d1", "d2"] and q.relations == ["employer", "headquartered in"]
    assert "Ada" in q.anchors and {"Oslo", "Acme"} <= set(q.forbidden)


def test_obfuscated_multi_fact_describes_anchor_and_intermediate() -> None:
    found = texts("multi_fact", build_graph(base()), ADA_OSLO, obfuscate=True)
    for text, q in found.items():
        assert "Ada" not in text and "Acme" not in text and "Oslo" not in text
        assert q.chain[0] == "clue: Ada --birth date--> 1965 [d1]"
        assert "Ada --employer--> Acme [d1]" in q.chain
    # The intermediate Acme is described by its founding year, never named.
    assert any("an organisation founded in" in text for text in found)
    assert any("a person born in the 1960s" in text for text in found)


def test_reading_descriptions_stay_in_the_hop_document() -> None:
    one_hop = path(("acme", "headquartered in", "oslo", "d2"))
    triples = [*base(), t("Acme", "parent", "Holdco", "d9", hk=ORG, tk=ORG)]
    for q in texts("multi_fact", build_graph(triples), one_hop, True, allowed={"d2"}).values():
        assert q.docs == ["d2"] and "Holdco" not in q.text


def test_causal_asks_for_the_bridge_with_both_ends_given() -> None:
    found = texts("causal", build_graph(base()), ADA_OSLO)
    assert set(found) == {
        "Ada (call it X0) is connected to Oslo through a chain of facts: X1 is the employer of "
        "X0; Oslo is the headquarters of X1. Which organisation is X1?",
        "Why is Ada linked to Oslo? Because the headquarters of the employer of Ada is Oslo. In "
        "that explanation, which organisation is the employer of Ada?",
        "The headquarters of the employer of Ada is Oslo. Which organisation along the way, the "
        "employer of Ada, brings Ada to Oslo?",
    }
    q = next(iter(found.values()))
    assert q.answers == ["Acme"] and q.answer_position == 1
    assert "Oslo" in q.anchors


def test_causal_needs_an_entity_at_the_far_end() -> None:
    g = build_graph(base())
    to_year = path(("ada", "employer", "acme", "d1"), ("acme", "founding date", "v:1985", "d2"))
    w = writer(g, False)
    assert not PARADIGMS.get("causal").accepts(w, to_year)
    assert PARADIGMS.get("causal").accepts(w, ADA_OSLO)
    assert PARADIGMS.get("causal").min_hops == 2
    assert PARADIGMS.get("hypothetical").min_hops == 2


def test_hypothetical_follows_the_other_entitys_chain() -> None:
    # Cy's own chain also ends in Oslo, so supposing anything about Cy would be no hypothesis.
    triples = [
        *base(),
        t("Cy", "employer", "Gamma", "d5", hk=P, tk=ORG),
        t("Gamma", "headquartered in", "Oslo", "d5", hk=ORG, tk=L),
    ]
    found = texts("hypothetical", build_graph(triples), ADA_OSLO)
    assert set(found) == {
        "Suppose the employer of Bo were the same as the employer of Ada. What would the "
        "headquarters of the employer of Bo be then?",
        "Imagine that the employer of Bo were the employer of Ada instead. In that case, what "
        "would the headquarters of the employer of Bo be?",
        "If the employer of Bo were the employer of Ada, what would the headquarters of the "
        "employer of Bo be?",
    }
    q = next(iter(found.values()))
    assert q.answers == ["Oslo"]
    assert q.chain[0] == "assume: Bo --employer--> as for Ada"
    assert q.chain[1:] == ["Ada --employer--> Acme [d1]", "Acme --headquartered in--> Oslo [d2]"]


def test_hypothetical_without_a_counterpart_is_not_written() -> None:
    g = build_graph(base()[:4])
    assert (
        PARADIGMS.get("hypothetical").write(writer(g, False), ADA_OSLO, random.Random(0), None)
        is None
    )


def dated() -> KnowledgeGraph:
    return build_graph(
        [
            t("Ada", "employer", "Acme", "d1", "1991", hk=P, tk=ORG),
            t("Ada", "employer", "Beta", "d5", "1998", hk=P, tk=ORG),
            t("Acme", "headquartered in", "Oslo", "d2", hk=ORG, tk=L),
            t("Beta", "headquartered in", "Rome", "d4", hk=ORG, tk=L),
        ]
    )


ADA_ROME = path(
    ("ada", "employer", "beta", "d5"),
    ("beta", "headquartered in", "rome", "d4"),
    dates={0: "1998"},
    selectors={0: "dated"},
)


def test_dated_hops_are_picked_by_a_distinguishing_year() -> None:
    plain = texts("multi_fact", dated(), ADA_ROME)
    assert "What is the headquarters of the employer of Ada (in 1998)?" in plain
    vague = texts("multi_fact", dated(), ADA_ROME, obfuscate=True)
    assert all("(in a year ending in 8 in the late 20th century)" in text for text in vague)
    q = next(iter(vague.values()))
    assert q.chain[0] == "Ada --employer--> Beta [d5] (1998)"
    assert "a year ending in 8 in the late 20th century" in q.anchors


def test_temporal_uses_order_or_year_and_needs_a_date() -> None:
    found = texts("temporal", dated(), ADA_ROME, obfuscate=True, seeds=40)
    assert any("(the latest on record)" in text for text in found)
    assert any("(in a year ending in 8" in text for text in found)
    w = writer(build_graph(base()), False)
    temporal = PARADIGMS.get("temporal")
    assert not temporal.accepts(w, ADA_OSLO)
    to_year = path(("ada", "employer", "acme", "d1"), ("acme", "founding date", "v:1985", "d2"))
    assert temporal.accepts(w, to_year)
    q = temporal.write(w, to_year, random.Random(0), None)
    assert q is not None and q.answers == ["1985"] and "founding year" in q.text


def test_a_question_that_would_leak_its_answer_is_not_written() -> None:
    g = build_graph([t("Oslo Trading", "headquartered in", "Oslo", "d1", hk=ORG, tk=L)])
    p = path(("oslo trading", "headquartered in", "oslo", "d1"))
    assert PARADIGMS.get("multi_fact").write(writer(g, False), p, random.Random(0), None) is None
