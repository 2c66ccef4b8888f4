"""Numeric attribute values obfuscated into ranges and relative terms, unique in the graph."""

from __future__ import annotations

import random
from decimal import Decimal

from qwenlong.synth.interfaces import Triple
from qwenlong.synth.kg.graph import build_graph, value_key
from qwenlong.synth.kg.numbers import Amount, grouped, parse_amount, range_tests, relative_tests
from qwenlong.synth.kg.obfuscate import EXACT, Describer


def t(head: str, rel: str, tail: str, hk: str = "place", tk: str = "") -> Triple:
    return Triple(head, rel, tail, "d1", None, "", hk, tk)


def test_ranges_by_hand_contain_the_value() -> None:
    tests = range_tests(Amount(Decimal(184320), ""), EXACT)
    assert [x.text for x in tests] == [
        "between 100,000 and 1,000,000",
        "between 150,000 and 200,000",
        "between 180,000 and 190,000",
        "184,320",
    ]
    assert [x.level for x in tests] == [0, 1, 2, EXACT]
    for value in (Decimal(12), Decimal("1200.5"), Decimal(999_999), Decimal(10**6)):
        assert all(x.matches(Amount(value, "")) for x in range_tests(Amount(value, ""), EXACT))
    money = range_tests(parse_amount("1,200.5 USD million"), EXACT)
    assert money[1].text == "between 1,000 and 1,500 USD million"
    assert not money[1].matches(Amount(Decimal(1200), "EUR million"))
    assert [x.text for x in range_tests(Amount(Decimal(7), ""), EXACT)] == ["7"]
    assert grouped(Decimal("1500.50")) == "1,500.5"
    assert parse_amount("Lyon") is None


def test_relative_terms_pick_the_closest_rival() -> None:
    others = [("a", "Ostra", Amount(Decimal(40_000), "")), ("b", "Vesh", Amount(Decimal(90_000), "")),
              ("c", "Pell", Amount(Decimal(500_000), "")), ("d", "Far", Amount(Decimal(10), "km"))]  # fmt: skip
    found = {
        test.text: node for test, node in relative_tests(Amount(Decimal(184_320), ""), others, 1)
    }
    assert found == {"more than twice that of Vesh": "b", "less than half that of Pell": "c"}


def _graph():
    cities = {"Korvia": "184320", "Ostra": "41000", "Vesh": "52000", "Pell": "620000"}
    triples = [t(c, "population", p, tk="value") for c, p in cities.items()]
    triples += [t(c, "country", "Dremene", tk="place") for c in cities]
    return build_graph(triples)


def test_description_uses_a_unique_range_and_lists_its_fact() -> None:
    graph = _graph()
    korvia = graph.find("Korvia")  # Pell's 620,000 is also between 100,000 and 1,000,000
    found = Describer(graph, max_clues=1).describe(korvia, exclude=[graph.find("Dremene")])
    assert found is not None
    assert found.text == "a place whose population is between 150,000 and 200,000"
    assert [(e.relation, e.tail) for e in found.facts] == [("population", value_key("184320"))]
    ostra = Describer(graph, max_clues=1).describe(graph.find("Ostra"), [graph.find("Dremene")])
    assert ostra is not None  # Vesh (52,000) shares 10,000-100,000, not 40,000-45,000
    assert ostra.text == "a place whose population is between 40,000 and 45,000"


def test_relative_description_carries_the_reference_fact() -> None:
    graph = _graph()
    pell, korvia = graph.find("Pell"), graph.find("Korvia")
    describer = Describer(graph, max_clues=1)
    texts = set()
    for seed in range(12):
        found = describer.describe(pell, [graph.find("Dremene")], rng=random.Random(seed))
        assert found is not None
        texts.add(found.text)
        if "twice" in found.text:
            assert [(e.head, e.tail) for e in found.facts] == [
                (pell, value_key("620000")),
                (korvia, value_key("184320")),
            ]
    assert "a place whose population is more than twice that of Korvia" in texts
    assert "a place whose population is between 600,000 and 650,000" in texts


def test_exact_value_when_nothing_vaguer_is_unique() -> None:
    twins = [
        t("Arden", "population", "41000", tk="value"),
        t("Bexley", "population", "41500", tk="value"),
    ]
    graph = build_graph(twins)
    found = Describer(graph, max_clues=1).describe(graph.find("Arden"))
    assert found is not None and found.text == "a place whose population is 41,000"
    assert found.level == EXACT


def test_relative_clues_keep_to_the_allowed_documents() -> None:
    triples = [
        Triple("Pell", "population", "620000", "d1", None, "", "place", "value"),
        Triple("Korvia", "population", "184320", "d2", None, "", "place", "value"),
        Triple("Ostra", "population", "610000", "d2", None, "", "place", "value"),
    ]
    graph = build_graph(triples)
    describer = Describer(graph, max_clues=1)
    for seed in range(8):
        found = describer.describe(graph.find("Pell"), allowed_docs=["d1"], rng=random.Random(seed))
        assert found is not None and "Korvia" not in found.text
        assert all("d1" in fact.docs for fact in found.facts)
