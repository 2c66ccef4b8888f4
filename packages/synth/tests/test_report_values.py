"""Report cells, periods and units: the canonical value of every printed figure."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qwenlong.synth.extract.fact_score import gold_unit
from qwenlong.synth.extract.periods import as_of_date, find_period, same_day
from qwenlong.synth.extract.units import (
    UnitSpec,
    cell_unit,
    parse_unit,
    split_unit_token,
    strip_unit,
    table_unit,
)
from qwenlong.synth.extract.values import number_text, parse_number, strip_footnotes

MILLION = Decimal(10**6)


@pytest.mark.parametrize(
    ("cell", "value", "percent", "currency"),
    [
        ("$ 4,781", "4781", False, "USD"),
        ("(365,223)", "-365223", False, None),
        ("$ (365,223 )", "-365223", False, "USD"),
        ("($12.5)", "-12.5", False, "USD"),
        ("(105,504", "-105504", False, None),  # the ")" sits in the next cell
        ("191%", "191", True, None),
        ("(7.2)%", "-7.2", True, None),
        ("–1,102,448", "-1102448", False, None),
        ("4,781(1)", "4781", False, None),
        ("€ 3.1", "3.1", False, "EUR"),
    ],
)
def test_printed_figures(cell: str, value: str, percent: bool, currency: str | None) -> None:
    parsed = parse_number(cell)
    assert parsed is not None
    assert (parsed.value, parsed.percent, parsed.currency) == (Decimal(value), percent, currency)


@pytest.mark.parametrize("cell", ["—", "–", "n/m", "nm", "", "*", "Total", "x"])
def test_no_figure(cell: str) -> None:
    assert parse_number(cell) is None


def test_canonical_number_text_keeps_printed_decimals() -> None:
    assert number_text(Decimal("1310.0")) == "1310.0"
    assert number_text(Decimal("-0")) == "0"
    assert number_text(Decimal("1E+3")) == "1000"


def test_footnote_marks_leave_labels_but_not_words() -> None:
    assert strip_footnotes("Total assets(1)") == "Total assets"
    assert strip_footnotes("Revenue (a)") == "Revenue"
    assert strip_footnotes("Net sales*") == "Net sales"
    assert strip_footnotes("Net income (loss)") == "Net income (loss)"
    assert (
        strip_footnotes("In-place lease intangibles, net⁽¹⁾") == "In-place lease intangibles, net"
    )
    assert strip_footnotes("Total assets¹") == "Total assets"


@pytest.mark.parametrize(
    ("text", "currency", "scale"),
    [
        ("(Expressed in thousands of Canadian dollars)", "CAD", 1000),
        ("(dollars in thousands)", "USD", 1000),
        ("17.3 Maturity schedule (Consolidated, in thousands of reais – R$):", "BRL", 1000),
        ("Millions of U.S. dollars", "USD", 10**6),
        ("in millions of Swiss francs", "CHF", 10**6),
        ("Billions of yen", "JPY", 10**9),
        ("in pounds sterling", "GBP", 1),
        ("(in thousands of euros)", "EUR", 1000),
    ],
)
def test_currencies_and_scales_in_words(text: str, currency: str, scale: int) -> None:
    assert table_unit(text)[0] == UnitSpec(currency, Decimal(scale))


def test_a_header_cell_with_a_note_still_only_states_a_unit() -> None:
    assert cell_unit("Millions of U.S. dollars (Note 1)") == UnitSpec("USD", MILLION)
    assert cell_unit("Net sales (Note 1)") is None


def test_bracketed_unit_words_leave_the_label() -> None:
    assert parse_unit("miles") == UnitSpec(label="miles")
    assert strip_unit("Average stage length (miles)") == "Average stage length"
    assert strip_unit("Oil production (barrels per day)") == "Oil production (barrels per day)"


@pytest.mark.parametrize(
    ("header", "period", "rest"),
    [
        ("2021", "2021", ""),
        ("FY 21", "2021", ""),
        ("Fiscal 2022", "2022", ""),
        ("2021/22", "2022", ""),
        ("Year Ended December 31, 2021", "2021", ""),
        ("December 31, 2021", "2021-12-31", ""),
        ("31 Dec. 2022", "2022-12-31", ""),
        ("31.12.2022", "2022-12-31", ""),
        ("As of June 30, 2022", "2022-06-30", ""),
        ("2021 % of revenue", "2021", "% of revenue"),
        ("2019 over 2018", None, "2019 over 2018"),
        ("2021-2022", None, "2021-2022"),
        ("2021 vs. 2020", None, "2021 vs. 2020"),
        ("Less than 1 year", None, "Less than 1 year"),
    ],
)
def test_periods(header: str, period: str | None, rest: str) -> None:
    found, left = find_period(header)
    assert (found.text if found else None, left) == (period, rest)


def test_table_units_with_exceptions_and_tokens() -> None:
    assert table_unit("(in millions, except per share data)") == (
        UnitSpec(scale=MILLION),
        "per share data",
    )
    assert table_unit("Dollars in thousands")[0] == UnitSpec("USD", Decimal(1000))
    assert table_unit("in millions of U.S. dollars")[0] == UnitSpec("USD", MILLION)
    assert table_unit("Payments due by period") == (None, "")
    assert split_unit_token("2022 £m") == (UnitSpec("GBP", MILLION), "2022")


@pytest.mark.parametrize(
    ("cell", "value", "label"),
    [
        ("4.6 pts", "4.6", "percentage points"),
        ("(1.2) pts", "-1.2", "percentage points"),
        ("-0.8pp", "-0.8", "percentage points"),
        ("120 bps", "120", "basis points"),
    ],
)
def test_points_are_figures_in_their_own_unit(cell: str, value: str, label: str) -> None:
    parsed = parse_number(cell)
    assert parsed is not None and (parsed.value, parsed.label) == (Decimal(value), label)


def test_point_words_are_one_unit_in_headers_and_gold() -> None:
    assert parse_unit("percentage points") == UnitSpec(label="percentage points")
    assert parse_unit("bps") == UnitSpec(label="basis points")
    assert gold_unit("pts", "") == gold_unit("percentage points", "")


@pytest.mark.parametrize(
    ("caption", "date"),
    [
        ("As at 31 March 2024", "2024-03-31"),
        ("as of December 31, 2023 (in millions)", "2023-12-31"),
        ("For the year ended 31 March 2024", None),
        ("Consolidated balance sheet", None),
    ],
)
def test_caption_as_of_dates(caption: str, date: str | None) -> None:
    found = as_of_date(caption)
    assert (found.text if found else None) == date


def test_comparative_dates_keep_the_day() -> None:
    march, leap = as_of_date("As at 31 March 2024"), as_of_date("At 29 February 2024")
    assert march is not None and same_day(march, 2023).text == "2023-03-31"
    assert leap is not None and same_day(leap, 2023).text == "2023-02-28"
