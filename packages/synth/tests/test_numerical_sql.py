"""The DuckDB long table, the catalog, number helpers, and every SQL template on hand-worked data.

Revenue (USD million) in the test table; O'Brien's 2021 figure is printed as 12 in one report
and 13 in another, so that key is a conflict and never asked about:

    entity     2020  2021  2022    documents
    Acme        100   110   121    a1 (2020, 2021), a2 (2021, 2022)
    Borealis    200   180   190    b1
    Cobalt       50    75    60    c1
    O'Brien      10  12/13   30    o1 (2020, 2021=12), o2 (2021=13, 2022)
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.synth.numerical.align import AlignedFact
from qwenlong.synth.numerical.config import NumericalConfig
from qwenlong.synth.numerical.factdb import Catalog, Scope, build_fact_db, rows_read, run_query
from qwenlong.synth.numerical.questions import answer_strings, format_number
from qwenlong.synth.numerical.sql_templates import (
    SQL_TEMPLATES,
    Query,
    decimal_text,
    nice_between,
    round_significant,
)

UNIT = "USD million"
ROWS = [
    ("Acme", "a1", 2020, 100),
    ("Acme", "a1", 2021, 110),
    ("Acme", "a2", 2021, 110),
    ("Acme", "a2", 2022, 121),
    ("Borealis", "b1", 2020, 200),
    ("Borealis", "b1", 2021, 180),
    ("Borealis", "b1", 2022, 190),
    ("Cobalt", "c1", 2020, 50),
    ("Cobalt", "c1", 2021, 75),
    ("Cobalt", "c1", 2022, 60),
    ("O'Brien", "o1", 2020, 10),
    ("O'Brien", "o1", 2021, 12),
    ("O'Brien", "o2", 2021, 13),
    ("O'Brien", "o2", 2022, 30),
]
CONFIG = NumericalConfig(group_size=(3, 3), empty_fraction=0.5)


def _facts(rows=ROWS, metric: str = "revenue", unit: str = UNIT) -> list[AlignedFact]:
    return [AlignedFact(e, d, y, metric, float(v), unit, Decimal(v)) for e, d, y, v in rows]


@pytest.fixture(scope="module")
def conn():
    extra = _facts([("Acme", "a2", 2022, 12.1), ("Borealis", "b1", 2022, -9)], "net income")
    return build_fact_db(_facts() + extra)


@pytest.fixture(scope="module")
def catalog(conn) -> Catalog:
    return Catalog.load(conn)


def test_metric_values_keeps_agreed_keys_once_and_drops_conflicts(conn, catalog: Catalog) -> None:
    assert run_query(conn, "SELECT count(*) FROM facts")[0][0] == 16
    count = run_query(conn, "SELECT count(*) FROM metric_values WHERE metric = 'revenue'")
    assert count[0][0] == 11  # 12 keys, one conflicting
    assert catalog.conflicts == 1
    assert ("revenue", "O'Brien", 2021) not in catalog.values
    assert catalog.values[("revenue", "Acme", 2021)] == 110
    assert catalog.units == {"net income": UNIT, "revenue": UNIT}


def test_catalog_queries(catalog: Catalog) -> None:
    assert catalog.metrics() == ["net income", "revenue"]
    assert catalog.years("revenue") == [2020, 2021, 2022]
    assert catalog.entities("revenue", [2021]) == ["Acme", "Borealis", "Cobalt"]
    assert catalog.entities("revenue", [2020, 2022]) == ["Acme", "Borealis", "Cobalt", "O'Brien"]
    assert catalog.series("revenue", "O'Brien") == {2020: 10, 2022: 30}
    assert catalog.series("revenue", "Nobody") == {}


def test_rows_read_lists_every_document_behind_a_value(conn) -> None:
    read = rows_read(conn, Scope(("revenue",), ("Acme", "O'Brien"), (2021, 2022)))
    assert [(r.entity, r.year, r.value, r.doc_ids) for r in read] == [
        ("Acme", 2021, 110, ("a1", "a2")),
        ("Acme", 2022, 121, ("a2",)),
        ("O'Brien", 2022, 30, ("o2",)),
    ]
    everything = rows_read(conn, Scope(("revenue",), ("Cobalt",)))
    assert [r.year for r in everything] == [2020, 2021, 2022]


def test_run_query_reports_the_failing_sql(conn) -> None:
    with pytest.raises(DatasetError, match="SELECT nope"):
        run_query(conn, "SELECT nope FROM facts")


def test_empty_database_has_an_empty_catalog() -> None:
    assert Catalog.load(build_fact_db([])).values == {}


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (121.66666666, 2, "121.67"),
        (2.675, 2, "2.68"),  # half away from zero, although the float is 2.67499999...
        (-2.675, 2, "-2.68"),
        (0.1 + 0.2, 2, "0.3"),
        (1200.0, 2, "1200"),
        (-0.001, 2, "0"),
        (0.0, 2, "0"),
        (1234567.891, 0, "1234568"),
        (0.000123456, 6, "0.000123"),
    ],
)
def test_format_number(value: float, decimals: int, text: str) -> None:
    assert format_number(value, decimals) == text


def test_round_significant_and_decimal_text() -> None:
    assert round_significant(1234.5, 2) == Decimal("1.2E+3")
    assert decimal_text(round_significant(1234.5, 2)) == "1200"
    assert decimal_text(round_significant(-0.04567, 2)) == "-0.046"
    assert decimal_text(Decimal("12.500")) == "12.5"


@pytest.mark.parametrize(
    ("low", "high", "nice"),
    [(110, 180, "150"), (75, 110, "90"), (121, 125, "123"), (0.61, 0.62, "0.615"), (-5, 5, "0")],
)
def test_nice_between_is_strictly_inside_with_few_digits(low, high, nice) -> None:
    value = nice_between(low, high)
    assert decimal_text(value) == nice
    assert low < value < high


def _draws_all(name: str, catalog: Catalog, seeds: int = 1000) -> list[Query]:
    """Distinct queries the template draws with seeds 0..seeds-1."""
    build = SQL_TEMPLATES.get(name).build
    found = {}
    for seed in range(seeds):
        query = build(catalog, random.Random(seed), CONFIG)
        if query is not None:
            found.setdefault(query.sql, query)
    return list(found.values())


def _draws(name: str, catalog: Catalog) -> list[Query]:
    return [q for q in _draws_all(name, catalog) if q.slots.metric == "revenue"]


def _answer(conn, query: Query) -> str:
    answers = answer_strings(query, run_query(conn, query.sql), decimals=2)
    assert answers is not None
    return answers[0]


def _check(conn, catalog: Catalog, name: str, expected: dict) -> None:
    """Every draw whose key is in `expected` gets that answer; every key is drawn at least once."""
    seen = set()
    for query in _draws(name, catalog):
        s = query.slots
        key = (s.entities, s.years, s.aggregate or s.direction, s.k)
        if key in expected:
            assert _answer(conn, query) == expected[key], query.sql
            seen.add(key)
    assert seen == set(expected)


def test_year_difference(conn, catalog: Catalog) -> None:
    _check(
        conn,
        catalog,
        "year_difference",
        {
            (("Acme",), (2020, 2022), "", 0): "21",
            (("Borealis",), (2020, 2021), "", 0): "-20",
            (("O'Brien",), (2020, 2022), "", 0): "20",
        },
    )


def test_entity_years(conn, catalog: Catalog) -> None:
    _check(
        conn,
        catalog,
        "entity_years",
        {
            (("Acme",), (2020, 2022), "sum", 0): "331",
            (("Acme",), (2020, 2022), "avg", 0): "110.33",
            (("Cobalt",), (2020, 2022), "max", 0): "75",
            (("Borealis",), (2021, 2022), "min", 0): "180",
        },
    )
    # O'Brien lacks 2021, so no range over it can be asked
    assert all(q.slots.entities != ("O'Brien",) for q in _draws("entity_years", catalog))


def test_top_entity_and_kth_ranking(conn, catalog: Catalog) -> None:
    group = ("Acme", "Borealis", "Cobalt")
    _check(
        conn,
        catalog,
        "top_entity",
        {
            (group, (2021,), "highest", 1): "Borealis",
            (group, (2021,), "lowest", 1): "Cobalt",
        },
    )
    _check(
        conn,
        catalog,
        "kth_ranking",
        {
            (group, (2021,), "highest", 2): "Acme",
            (group, (2021,), "lowest", 2): "Acme",
            (("Acme", "Borealis", "O'Brien"), (2022,), "lowest", 2): "Acme",
        },
    )
    assert all(q.slots.k == 2 for q in _draws("kth_ranking", catalog))  # k < group size 3


def test_group_aggregate(conn, catalog: Catalog) -> None:
    group = ("Acme", "Borealis", "Cobalt")
    _check(
        conn,
        catalog,
        "group_aggregate",
        {
            (group, (2021,), "sum", 0): "365",
            (group, (2021,), "avg", 0): "121.67",
            (group, (2021,), "max", 0): "180",
            (group, (2021,), "min", 0): "75",
        },
    )


def test_entity_ratio(conn, catalog: Catalog) -> None:
    _check(
        conn,
        catalog,
        "entity_ratio",
        {
            (("Acme", "Borealis"), (2021,), "", 0): "0.61",
            (("Borealis", "Cobalt"), (2021,), "", 0): "2.4",
            (("O'Brien", "Acme"), (2022,), "", 0): "0.25",
        },
    )


def test_metric_share_asks_for_the_smaller_part_of_a_larger_whole(conn, catalog) -> None:
    queries = _draws_all("metric_share", catalog)
    assert queries, "no metric_share draw"
    for query in queries:
        assert (query.slots.metric, query.slots.other_metric) == ("net income", "revenue")
        entity = query.slots.entities[0]
        expected = {"Acme": "10", "Borealis": "-4.74"}[entity]  # 12.1/121, -9/190
        assert _answer(conn, query) == expected


def test_growth_ranking_and_group_change(conn, catalog: Catalog) -> None:
    group = ("Acme", "Borealis", "Cobalt")
    _check(
        conn,
        catalog,
        "growth_ranking",
        {
            (group, (2020, 2022), "highest", 0): "Acme",  # +21% against Cobalt's +20%
            (group, (2020, 2022), "lowest", 0): "Borealis",
            (("Acme", "Cobalt", "O'Brien"), (2020, 2022), "highest", 0): "O'Brien",
        },
    )
    _check(
        conn,
        catalog,
        "group_change",
        {
            (group, (2020, 2022), "", 0): "6",  # 350 -> 371
            (("Acme", "Borealis", "O'Brien"), (2020, 2022), "", 0): "10",  # 310 -> 341
        },
    )


def test_filters_match_a_python_recount_and_give_empty_results(conn, catalog: Catalog) -> None:
    empty = nonempty = 0
    for name in ("filter_any_after", "filter_every_between"):
        for query in _draws(name, catalog):
            s = query.slots
            threshold = float(s.threshold)
            if name == "filter_any_after":
                years = [y for y in (2020, 2021, 2022) if y > s.years[0]]
            else:
                years = list(range(s.years[0], s.years[1] + 1))
            passes = [
                e
                for e in s.entities
                if all(y in catalog.series("revenue", e) for y in years)
                and (any if name == "filter_any_after" else all)(
                    (v > threshold) if s.direction == "above" else (v < threshold)
                    for v in (catalog.series("revenue", e)[y] for y in years)
                )
            ]
            assert _answer(conn, query) == (", ".join(sorted(passes)) or "none"), query.sql
            empty += not passes
            nonempty += bool(passes)
    assert empty > 0 and nonempty > 0


def test_literals_are_quoted_so_stored_sql_reruns_anywhere(catalog: Catalog) -> None:
    queries = [q for name in SQL_TEMPLATES for q in _draws_all(name, catalog)]
    quoted = [q for q in queries if "O'Brien" in q.slots.entities]
    assert quoted and all("'O''Brien'" in q.sql for q in quoted)
    fresh = build_fact_db(
        _facts() + _facts([("Acme", "a2", 2022, 12.1), ("Borealis", "b1", 2022, -9)], "net income")
    )
    for query in queries:
        assert run_query(fresh, query.sql) is not None


def test_templates_cover_three_levels() -> None:
    levels = {SQL_TEMPLATES.get(name).level for name in SQL_TEMPLATES}
    assert levels == {"easy", "medium", "hard"}
    assert len(SQL_TEMPLATES.names()) == 11
