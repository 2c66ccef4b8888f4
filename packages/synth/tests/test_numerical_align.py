"""Units, metric and entity names, table layouts, and unit alignment into one long table."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qwenlong.core.records import Document
from qwenlong.synth.numerical.align import (
    RawFact,
    align_units,
    document_entity,
    header_year,
    read_table,
)
from qwenlong.synth.numerical.tables import ParsedTable, extract_tables
from qwenlong.synth.numerical.units import (
    UnitSpec,
    canonical_metric,
    clean_entity_name,
    entity_key,
    find_unit,
    metric_phrase,
    parse_unit,
    strip_unit,
)

MILLION, THOUSAND = Decimal(10**6), Decimal(1000)


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("USD million", UnitSpec("USD", MILLION)),
        ("in € thousands", UnitSpec("EUR", THOUSAND)),
        ("US$ m", UnitSpec("USD", MILLION)),
        ("RMB bn", UnitSpec("CNY", Decimal(10**9))),
        ("'000", UnitSpec(None, THOUSAND)),
        ("%", UnitSpec(percent=True)),
        ("per cent", UnitSpec(percent=True)),
        ("people", UnitSpec(label="persons")),
        ("thousand tonnes", UnitSpec(None, THOUSAND, label="tonnes")),
        ("millions of dollars", UnitSpec("USD", MILLION)),
    ],
)
def test_parse_unit(fragment: str, expected: UnitSpec) -> None:
    assert parse_unit(fragment) == expected


@pytest.mark.parametrize("fragment", ["restated", "Europe", "key figures", "see note 4", "2022"])
def test_parse_unit_refuses_words_that_are_not_units(fragment: str) -> None:
    assert parse_unit(fragment) is None


def test_unit_render() -> None:
    assert UnitSpec("USD", MILLION).render() == "USD million"
    assert UnitSpec(None, THOUSAND, label="tonnes").render() == "thousand tonnes"
    assert UnitSpec(percent=True).render() == "%"
    assert UnitSpec().render() == ""


@pytest.mark.parametrize(
    ("label", "unit", "base"),
    [
        ("Revenue (USD million)", UnitSpec("USD", MILLION), "Revenue"),
        ("Net income, EUR thousand", UnitSpec("EUR", THOUSAND), "Net income"),
        ("Key figures in USD m", UnitSpec("USD", MILLION), "Key figures"),
        ("Net income (restated)", None, "Net income"),
        ("Revenue (Europe)", None, "Revenue (Europe)"),
        ("Investment in subsidiaries", None, "Investment in subsidiaries"),
        ("Operating margin [%]", UnitSpec(percent=True), "Operating margin"),
    ],
)
def test_find_and_strip_unit(label: str, unit: UnitSpec | None, base: str) -> None:
    assert find_unit(label) == unit
    assert strip_unit(label) == base


@pytest.mark.parametrize(
    ("label", "metric"),
    [
        ("Revenue", "revenue"),
        ("Net sales (USD m)", "revenue"),
        ("Turnover", "revenue"),
        ("Profit for the year", "net income"),
        ("R&D spend", "r&d spending"),
        ("Research & Development", "r&d spending"),
        ("Headcount", "employees"),
        ("Revenue (Europe)", "revenue europe"),
        ("Customer Satisfaction Index", "customer satisfaction index"),
    ],
)
def test_canonical_metric_uses_the_synonym_table(label: str, metric: str) -> None:
    assert canonical_metric(label) == metric


def test_metric_phrase() -> None:
    assert metric_phrase("employees") == "number of employees"
    assert metric_phrase("revenue") == "revenue"
    assert metric_phrase("customer satisfaction index") == "customer satisfaction index"


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Acme Corp - Annual Report 2023", "Acme Corp"),
        ("Rexbeix Briam Retail Annual Report 2019-2023", "Rexbeix Briam Retail"),
        ("Borealis Ltd: Financial Statements FY2022", "Borealis Ltd"),
        ("Annual report 2021 | Cobalt Mining (unaudited)", "Cobalt Mining"),
    ],
)
def test_clean_entity_name(title: str, name: str) -> None:
    assert clean_entity_name(title) == name


def test_entity_key_merges_spellings_and_legal_suffixes() -> None:
    assert entity_key("Acme Corp.") == entity_key("ACME") == entity_key("Acme Inc") == "acme"
    assert entity_key("Co") == "co"  # a name that is only a suffix is kept
    assert entity_key("Acme Group") != entity_key("Acme")


def test_header_year() -> None:
    assert header_year("2021") == (2021, None)
    assert header_year("FY2022 (USD m)") == (2022, UnitSpec("USD", MILLION))
    assert header_year("EUR thousand 2021") == (2021, UnitSpec("EUR", THOUSAND))
    assert header_year("2021 vs 2022") == (None, None)
    assert header_year("Change 2021") == (None, None)


def test_document_entity_prefers_title_then_first_heading() -> None:
    assert document_entity(Document(id="a", text="# X", title="Acme Annual Report 2022")) == "Acme"
    assert document_entity(Document(id="b", text="intro\n# Borealis Ltd 2021\n")) == "Borealis Ltd"
    assert (
        document_entity(Document(id="c", text="<h1>Cobalt <b>Mining</b></h1>")) == "Cobalt Mining"
    )
    assert document_entity(Document(id="d", text="no heading")) == ""


def _table(
    header: list[str], rows: list[list[str]], caption: str = "", heading: str = ""
) -> ParsedTable:
    return ParsedTable("doc", 0, tuple(header), tuple(tuple(r) for r in rows), caption, heading)


def _facts(table: ParsedTable, entity: str = "Acme") -> tuple[str | None, set[tuple]]:
    layout, facts = read_table(table, entity)
    return layout, {(f.entity, f.year, f.metric, f.value, f.unit) for f in facts}


USD_M = UnitSpec("USD", MILLION)


def test_metric_by_year_layout_with_table_and_row_units() -> None:
    table = _table(
        ["Metric (USD million)", "2021", "2022"],
        [
            ["Revenue", "1,200.5", "1,310"],
            ["Employees", "950", "1,000"],
            ["Margin (%)", "5.5", "-"],
            ["Cost (EUR thousand)", "(20)", "25"],
        ],
    )
    layout, facts = _facts(table)
    assert layout == "metric_by_year"
    assert facts == {
        ("Acme", 2021, "revenue", Decimal("1200.5"), USD_M),
        ("Acme", 2022, "revenue", Decimal("1310"), USD_M),
        ("Acme", 2021, "employees", Decimal("950"), None),
        ("Acme", 2022, "employees", Decimal("1000"), None),
        ("Acme", 2021, "margin", Decimal("5.5"), UnitSpec(percent=True)),
        ("Acme", 2021, "cost", Decimal("-20"), UnitSpec("EUR", THOUSAND)),
        ("Acme", 2022, "cost", Decimal("25"), UnitSpec("EUR", THOUSAND)),
    }


def test_count_metric_keeps_a_unit_without_currency() -> None:
    table = _table(["Metric (persons)", "2021"], [["Employees", "950"]])
    assert _facts(table)[1] == {
        ("Acme", 2021, "employees", Decimal("950"), UnitSpec(label="persons"))
    }


def test_unit_column_and_cell_scale() -> None:
    table = _table(
        ["Item", "Unit", "2021", "2022"],
        [["Revenue", "USD million", "1.2bn", "900"], ["Staff", "people", "40", "41"]],
    )
    _, facts = _facts(table)
    assert ("Acme", 2021, "revenue", Decimal("1.2"), UnitSpec("USD", Decimal(10**9))) in facts
    assert ("Acme", 2022, "revenue", Decimal("900"), USD_M) in facts
    assert ("Acme", 2021, "employees", Decimal("40"), UnitSpec(label="persons")) in facts


def test_entity_by_year_layout_takes_metric_from_caption() -> None:
    table = _table(
        ["Company", "2021", "2022"],
        [["Acme Corp", "10", "11"], ["Borealis", "20", "n/a"]],
        caption="Revenue by company (USD million)",
    )
    layout, facts = _facts(table, entity="")
    assert layout == "entity_by_year"
    assert facts == {
        ("Acme Corp", 2021, "revenue", Decimal("10"), USD_M),
        ("Acme Corp", 2022, "revenue", Decimal("11"), USD_M),
        ("Borealis", 2021, "revenue", Decimal("20"), USD_M),
    }


def test_year_rows_layout_with_and_without_entity_column() -> None:
    table = _table(
        ["Year", "Revenue (USD m)", "Employees"], [["2021", "5", "7"], ["total", "9", "9"]]
    )
    layout, facts = _facts(table)
    assert layout == "year_rows"
    assert facts == {
        ("Acme", 2021, "revenue", Decimal("5"), USD_M),
        ("Acme", 2021, "employees", Decimal("7"), None),
    }
    with_entity = _table(["Company", "Fiscal year", "Net profit"], [["Cobalt", "FY2020", "3"]])
    assert _facts(with_entity, entity="")[1] == {("Cobalt", 2020, "net income", Decimal("3"), None)}


def test_entity_snapshot_layout_needs_one_year_in_caption() -> None:
    rows = [["Acme", "5", "100"], ["Borealis", "6", "200"]]
    table = _table(["Company", "Revenue (USD m)", "Headcount"], rows, caption="Key figures 2022")
    layout, facts = _facts(table, entity="")
    assert layout == "entity_snapshot"
    assert ("Borealis", 2022, "employees", Decimal("200"), None) in facts
    assert len(facts) == 4
    ambiguous = _table(["Company", "Revenue"], rows, caption="Figures 2021 and 2022")
    assert read_table(ambiguous, "") == (None, [])


def test_unrecognised_layout_and_missing_entity_read_nothing() -> None:
    assert read_table(_table(["A", "B"], [["x", "1"]]), "Acme") == (None, [])
    assert read_table(_table(["Metric", "2021"], [["Revenue", "1"]]), "") == (None, [])


def _raw(
    entity: str, doc: str, year: int, metric: str, value: str, unit: UnitSpec | None
) -> RawFact:
    return RawFact(entity, doc, year, metric, Decimal(value), unit, "test")


def test_align_units_rescales_exactly_to_the_majority_scale() -> None:
    eur_k = UnitSpec("EUR", THOUSAND)
    eur_m = UnitSpec("EUR", MILLION)
    raw = [
        _raw("Acme", "a", 2021, "revenue", "1.2", eur_m),
        _raw("Acme", "a", 2022, "revenue", "1.3", eur_m),
        _raw("Borealis", "b", 2021, "revenue", "1234.5", eur_k),
    ]
    aligned = align_units(raw)
    assert aligned.units == {"revenue": "EUR million"}
    borealis = next(f for f in aligned.facts if f.entity == "Borealis")
    assert borealis.exact == Decimal("1.2345")
    assert borealis.value == 1.2345
    assert aligned.rescaled == {("revenue", "EUR thousand", "EUR million"): 1}


def test_align_units_tie_on_scale_picks_the_smaller() -> None:
    raw = [
        _raw("Acme", "a", 2021, "revenue", "2", UnitSpec("USD", MILLION)),
        _raw("Borealis", "b", 2021, "revenue", "3000", UnitSpec("USD", THOUSAND)),
    ]
    aligned = align_units(raw)
    assert aligned.units == {"revenue": "USD thousand"}
    assert sorted(f.exact for f in aligned.facts) == [Decimal("2000"), Decimal("3000")]


def test_align_units_drops_other_dimensions_and_missing_units() -> None:
    raw = [
        _raw("Acme", "a", 2021, "revenue", "1", USD_M),
        _raw("Acme", "a", 2022, "revenue", "2", USD_M),
        _raw("Borealis", "b", 2021, "revenue", "3", UnitSpec("EUR", MILLION)),
        _raw("Cobalt", "c", 2021, "revenue", "4", None),
        _raw("Cobalt", "c", 2021, "employees", "40", None),
    ]
    aligned = align_units(raw)
    assert {(f.entity, f.metric) for f in aligned.facts} == {
        ("Acme", "revenue"),
        ("Cobalt", "employees"),
    }
    assert aligned.dropped == {"unit conflict": 1, "no unit": 1}
    assert aligned.units == {"employees": "", "revenue": "USD million"}


def test_align_units_merges_entity_spellings_to_the_most_frequent() -> None:
    raw = [
        _raw("Acme Corp", "a", 2021, "revenue", "1", USD_M),
        _raw("Acme Corp", "a", 2022, "revenue", "2", USD_M),
        _raw("ACME Corp.", "b", 2023, "revenue", "3", USD_M),
        _raw("Acme", "c", 2024, "revenue", "4", USD_M),
    ]
    assert {f.entity for f in align_units(raw).facts} == {"Acme Corp"}


def test_document_to_facts_end_to_end() -> None:
    doc = Document(
        id="r1",
        title="Acme Corp Annual Report 2022",
        text=(
            "# Acme Corp\n\nKey figures (USD million)\n\n| Metric | 2021 | 2022 |\n|---|---|---|\n"
            "| Revenue | 1,000.5 | 1,100 |\n| Net loss | (5) | 3 |\n"
        ),
    )
    (table,) = extract_tables(doc)
    layout, facts = read_table(table, document_entity(doc))
    assert layout == "metric_by_year"
    assert [(f.year, f.metric, f.value, f.unit) for f in facts] == [
        (2021, "revenue", Decimal("1000.5"), USD_M),
        (2022, "revenue", Decimal("1100"), USD_M),
        (2021, "net loss", Decimal("-5"), USD_M),
        (2022, "net loss", Decimal("3"), USD_M),
    ]
    assert {f.where for f in facts} >= {"table 0 row 0 col 1", "table 0 row 1 col 2"}
