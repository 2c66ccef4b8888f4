"""Obfuscation: year ranges by hand, and descriptions unique in the graph or not given."""

from __future__ import annotations

import random

from qwenlong.synth.interfaces import Triple
from qwenlong.synth.kg.graph import build_graph, value_key
from qwenlong.synth.kg.obfuscate import (
    Describer,
    distinguishing_year,
    ordinal,
    year_descriptions,
)
from qwenlong.synth.kg.relations import clause


def t(head: str, rel: str, tail: str, doc: str = "d1", hk: str = "", tk: str = "") -> Triple:
    return Triple(head, rel, tail, doc, None, "", hk, tk)


def test_year_descriptions_by_hand() -> None:
    texts = [d.text for d in year_descriptions(1995)]
    assert texts == [
        "a year ending in 5 in the late 20th century",
        "the mid-1990s",
        "the 1990s",
        "1995",
    ]
    assert [d.text for d in year_descriptions(1901)][:2] == [
        "a year ending in 1 in the early 20th century",
        "the early 1900s",
    ]
    assert year_descriptions(1948)[0].text == "a year ending in 8 in the mid-20th century"
    assert year_descriptions(2021)[0].text == "a year ending in 1 in the early 21st century"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "111th",
    ]  # fmt: skip


def test_every_description_contains_its_year_and_its_range_is_right() -> None:
    for year in range(1000, 2100):
        for d in year_descriptions(year):
            assert d.matches(year)
    vague = year_descriptions(1995)[0]
    assert [y for y in range(1900, 2000) if vague.matches(y)] == [1975, 1985, 1995]
    assert [y for y in range(1900, 2000) if year_descriptions(1995)[1].matches(y)] == [
        1994, 1995, 1996,
    ]  # fmt: skip


def test_distinguishing_year_falls_back_until_no_rival_matches() -> None:
    assert distinguishing_year(1995, [1962], True).level == 0
    assert distinguishing_year(1995, [1985], True).text == "the mid-1990s"
    assert distinguishing_year(1995, [1996], True).level == 0  # 1996 does not end in 5
    assert distinguishing_year(1995, [1985, 1994], True).text == "1995"
    assert distinguishing_year(1995, [1962], False).text == "1995"
    assert distinguishing_year(1995, [], True).level == 0


def people() -> list[Triple]:
    return [
        t("Ada", "occupation", "chemist", hk="person", tk="value"),
        t("Ada", "born in", "Lyon", hk="person", tk="place"),
        t("Ada", "born", "1965", tk="value"),
        t("Cy", "occupation", "chemist", hk="person", tk="value"),
        t("Cy", "born in", "Lyon", hk="person", tk="place"),
        t("Cy", "born", "1935", tk="value"),
        t("Bo", "occupation", "architect", hk="person", tk="value"),
        t("Bo", "born in", "Porto", hk="person", tk="place"),
    ]


def matching(graph, describer_text: str, facts) -> set[str]:
    """Brute force: every entity with all the description's facts (same relation and tail)."""
    wanted = {(f.relation, f.tail) for f in facts}
    return {
        n for n in graph.entities() if wanted <= {(e.relation, e.tail) for e in graph.edges_from(n)}
    }


def test_description_is_unique_and_uses_vague_years_first() -> None:
    g = build_graph(people())
    ada = g.find("Ada")
    d = Describer(g, max_clues=2).describe(ada)
    assert d is not None
    # "a chemist born in Lyon" fits Cy too, and so does "born in a year ending in 5 in the
    # mid-20th century" (1935 and 1965 both lie in 1933-1965): the next level tells them apart.
    assert d.text == "a chemist born in the mid-1960s"
    assert d.level == 1
    assert [f.relation for f in d.facts] == ["occupation", "birth date"]


def test_description_falls_back_to_plainer_forms_then_none() -> None:
    triples = [*people(), t("Di", "occupation", "chemist", tk="value"), t("Di", "born", "1965")]
    g = build_graph(triples)
    ada = g.find("Ada")
    d = Describer(g, max_clues=2).describe(ada)
    # 1965 is shared with Di and Lyon with Cy: two clues are needed, one of them named; the
    # vaguest year that still excludes Cy (1935 ends in 5 too) is "the mid-1960s".
    assert d is not None and d.text == "a chemist born in the mid-1960s and born in Lyon"
    assert matching(g, d.text, d.facts) == {ada}
    assert Describer(g, max_clues=1).describe(ada) is None


def test_excluded_nodes_are_never_mentioned() -> None:
    g = build_graph(people())
    bo = g.find("Bo")
    describer = Describer(g, max_clues=2)
    assert describer.describe(bo).text == "an architect"  # the noun alone is unique
    lone = describer.describe(g.find("Ada"), exclude={g.find("Lyon"), value_key("1965")})
    assert lone is None  # chemist + Lyon or + 1965 was all that told Ada from Cy
    cy = describer.describe(g.find("Cy"), exclude={g.find("Lyon")})
    assert cy is not None and "Lyon" not in cy.text


def test_allowed_docs_limit_the_facts_a_description_may_use() -> None:
    triples = [
        t("Ada", "born in", "Lyon", "d1", hk="person"),
        t("Ada", "employer", "Acme", "d2", hk="person"),
        t("Bo", "born in", "Lyon", "d3", hk="person"),
    ]
    g = build_graph(triples)
    ada = g.find("Ada")
    describer = Describer(g, max_clues=2)
    assert describer.describe(ada).text == "a person employed by Acme"
    assert describer.describe(ada, allowed_docs={"d1"}) is None


def satisfied_clauses(g, node) -> set[str]:
    """Every clause that is true of `node`, at every vagueness level (brute force)."""
    out = set()
    for e in g.edges_from(node):
        year = g.year(e.tail)
        names = [d.text for d in year_descriptions(year)] if year else [g.name(e.tail)]
        out.update(clause(e.relation, name) for name in names)
    return out


def test_rng_varies_the_vagueness_but_every_variant_is_unique() -> None:
    g = build_graph(
        [*people(), t("Di", "occupation", "chemist", tk="value"), t("Di", "born", "1972")]
    )
    ada = g.find("Ada")
    describer = Describer(g, max_clues=2)
    texts = set()
    for seed in range(16):
        d = describer.describe(ada, rng=random.Random(seed))
        texts.add(d.text)
        assert d.text.startswith("a chemist ")
        clauses = d.text.removeprefix("a chemist ").split(" and ")
        assert set(clauses) <= satisfied_clauses(g, ada)
        for other in ("Cy", "Di"):
            assert not set(clauses) <= satisfied_clauses(g, g.find(other))
    assert len(texts) > 1
