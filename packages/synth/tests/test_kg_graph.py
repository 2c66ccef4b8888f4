"""Graph building: entity merging, relation clustering, cross-document aggregation by domain."""

from __future__ import annotations

from qwenlong.synth.interfaces import Triple
from qwenlong.synth.kg.graph import build_graph, normalize_name, parse_year


def t(
    head: str, rel: str, tail: str, doc: str, date: str | None = None, hk: str = "", tk: str = ""
) -> Triple:
    return Triple(head, rel, tail, doc, date, f"{head} {rel} {tail}.", hk, tk)


def test_parse_year_and_normalize_name() -> None:
    assert parse_year("1995") == 1995
    assert parse_year("1995-03-02") == 1995
    assert parse_year("914") == 914
    assert parse_year("March 1995") is None
    assert parse_year(None) is None
    assert normalize_name("The Acme Corp.") == normalize_name("acme  corp") == "acme corp"


def test_names_merge_by_normalisation_and_alias_relations() -> None:
    g = build_graph(
        [
            t("The Acme Corp.", "headquartered in", "Oslo", "d1", hk="organisation"),
            t("acme corp", "founded by", "Ada Park", "d2", tk="person"),
            t("Acme Corp", "also known as", "ACME", "d2"),
            t("ACME", "employs", "Bo Lind", "d3"),
        ]
    )
    acme = g.find("Acme Corp")
    assert acme is not None and g.find("the acme corp") == acme and g.find("ACME") == acme
    assert g.kind(acme) == "organisation"
    assert set(g.forms(acme)) == {"The Acme Corp.", "acme corp", "Acme Corp", "ACME"}
    assert [(e.relation, g.name(e.tail)) for e in g.edges_from(acme)] == [
        ("founded by", "Ada Park"),
        ("headquartered in", "Oslo"),
    ]
    bo = g.find("Bo Lind")
    assert [(e.relation, e.tail) for e in g.edges_from(bo)] == [("employer", acme)]  # inverted
    assert g.kind(g.find("Ada Park")) == "person"


def test_display_name_prefers_the_full_form_over_a_frequent_short_one() -> None:
    g = build_graph(
        [
            t("Ada Park", "alias", "Park", "d1"),
            t("Park", "born in", "Lyon", "d1"),
            t("Park", "employer", "Acme", "d1"),
            t("Park", "spouse", "Bo", "d1"),
        ]
    )
    assert g.name(g.find("Park")) == "Ada Park"


def test_edges_aggregate_documents_domains_and_dates() -> None:
    triples = [
        t("Ada Park", "works for", "Acme", "d1", "1991"),
        t("Ada Park", "employer", "Acme", "d2", "1991"),
        t("Ada Park", "employed by", "Acme", "d3"),
    ]
    g = build_graph(triples, {"d1": "general", "d2": "professional", "d3": "general"})
    [edge] = g.edges_from(g.find("Ada Park"))
    assert edge.relation == "employer"
    assert edge.docs == ("d1", "d2", "d3")
    assert edge.domains == ("general", "professional")
    assert edge.dates == ("1991",) and edge.year == 1991
    assert g.evidence(edge.head, "employer", edge.tail, "d2") == "Ada Park employer Acme."


def test_values_are_separate_nodes_and_years_only_where_dates_are_expected() -> None:
    g = build_graph(
        [
            t("Oslo", "population", "1920", "d1", tk="value"),
            t("Oslo", "founded", "1048", "d1", tk="value"),
            t("Ada", "born", "1961-04-12", "d2"),
            t("Ada", "occupation", "chemist", "d2", tk="value"),
        ]
    )
    oslo = g.find("Oslo")
    by_rel = {e.relation: e.tail for e in g.edges_from(oslo)}
    assert set(by_rel) == {"population", "founding date"}
    assert g.is_value(by_rel["population"]) and g.year(by_rel["population"]) is None
    assert g.year(by_rel["founding date"]) == 1048
    ada = {e.relation: e.tail for e in g.edges_from(g.find("Ada"))}
    assert g.year(ada["birth date"]) == 1961
    assert g.is_value(ada["occupation"]) and g.name(ada["occupation"]) == "chemist"
    assert g.find("chemist") is None  # values are not entities
    assert g.entities() == sorted([oslo, g.find("Ada")])


def test_inverse_label_with_a_literal_tail_is_not_inverted() -> None:
    g = build_graph([t("Acme", "employs", "300", "d1", tk="value")])
    [edge] = g.edges_from(g.find("Acme"))
    assert edge.relation == "employs" and g.name(edge.tail) == "300"


def test_self_loops_after_merging_are_dropped() -> None:
    g = build_graph([t("ACME", "alias", "Acme Corp", "d1"), t("Acme Corp", "parent", "ACME", "d1")])
    assert g.g.number_of_edges() == 0


def test_restrict_keeps_only_edges_and_documents_of_the_domains() -> None:
    triples = [
        t("Ada", "employer", "Acme", "d1"),
        t("Ada", "employer", "Acme", "d2"),
        t("Acme", "headquartered in", "Oslo", "d2"),
        t("Oslo", "located in", "Norway", "d3"),
    ]
    g = build_graph(triples, {"d1": "general", "d2": "professional", "d3": "general"})
    sub = g.restrict(["general"])
    ada = sub.find("Ada")
    assert [(e.relation, e.docs) for e in sub.edges_from(ada)] == [("employer", ("d1",))]
    assert sub.edges_from(sub.find("Acme")) == []
    assert sub.find("Norway") is not None
    assert sub.g.number_of_edges() == 2
