"""What a label says of its figures: per share, a count of things, an amount, an exception."""

from __future__ import annotations

import pytest

from qwenlong.synth.extract.label_kinds import (
    exception_items,
    figure_kind,
    is_excepted,
    label_kind,
    names_counts,
)


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("Share-based compensation", "amount"),
        ("Proceeds from exercise of stock options", "amount"),
        ("Share of profit of joint ventures", "amount"),
        ("Share of results of associates", "amount"),
        ("Called up share capital", "amount"),
        ("Share premium", "amount"),
        ("Taxes paid related to net share settlement of equity awards", "amount"),
        ("Staff costs", "amount"),
        ("Weighted-average shares outstanding: Basic", "count"),
        ("Shares used in per share calculations: Diluted", "count"),
        ("Options outstanding", "count"),
        ("Shares withheld for taxes", "count"),
        ("Number of employees", "count"),
        ("Net income per share: Basic", "per unit"),
        ("Weighted-Average Exercise Price", "per unit"),
        ("Common stock, $0.01 par value; 10,000 shares authorized", ""),
        ("Homes", "count"),
        ("Total vessel operating days", "count"),
        ("Available seat miles (ASMs)", "count"),
        ("Revenue passengers", "count"),
        ("Revenue passenger miles (RPMs)", "count"),
        ("Acquisition of franchised restaurants, net of cash acquired", "amount"),
        ("Vessel operating expenses", "amount"),
        ("TCE rate per day", "per unit"),
        ("Members' equity", ""),
        ("Homes under construction", ""),
        ("Vessels, net", ""),
    ],
)
def test_label_kinds(label: str, kind: str) -> None:
    assert label_kind(label) == kind


def test_the_column_decides_before_the_row() -> None:
    assert figure_kind("Weighted-Average Exercise Price", "Options outstanding") == "per unit"
    assert figure_kind("Number of Options", "Granted") == "count"
    assert figure_kind("", "Options outstanding") == "count"


def test_except_clause_names_rows_beyond_per_share_and_share_counts() -> None:
    assert exception_items("revpar and adr") == ["revpar", "adr"]
    assert exception_items("share and per share data") == []
    assert exception_items("as noted") == []
    assert is_excepted("Average daily rate (ADR)", "revpar and adr")
    assert is_excepted("Current ratio", "ratios")
    assert not is_excepted("Common stock, $0.01 par value", "par value")
    assert not is_excepted("Share-based compensation", "share and per share data")


def test_except_clause_categories_name_kinds_of_rows_not_words() -> None:
    clause = "per share, daily rate and operating data"
    assert exception_items(clause) == []
    assert not is_excepted("Vessel operating expenses", clause)
    assert names_counts(clause)
    assert names_counts("customer counts and percentages")
    assert not names_counts("share and per share data")
    assert not names_counts("per share amounts")
