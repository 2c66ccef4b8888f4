"""A table's number convention, decided once from the figures that read only one way."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qwenlong.synth.extract.number_format import uses_decimal_comma
from qwenlong.synth.extract.values import parse_number


@pytest.mark.parametrize(
    ("cells", "currency", "comma"),
    [
        (["150.000", "1.823.103", "–"], None, True),  # two dot groups decide
        (["412.380", "12,5%"], None, True),  # a comma decimal decides
        (["412.380", "5.79"], None, False),  # a two-digit decimal decides the other way
        (["1,234", "1,823,103"], None, False),
        (["150.000", "24.118"], None, False),  # nothing decisive: decimal point
        (["150.000", "24.118"], "BRL", True),  # ... unless R$ and every dot has 3 digits
        (["150.000", "24.1"], "BRL", False),
    ],
)
def test_one_convention_per_table(cells: list[str], currency: str | None, comma: bool) -> None:
    assert uses_decimal_comma(cells, currency) is comma


def test_decimal_comma_figures_read_as_numbers() -> None:
    def value(text: str) -> Decimal | None:
        parsed = parse_number(text, decimal_comma=True)
        return parsed.value if parsed else None

    assert value("1.823.103") == Decimal(1823103)
    assert value("R$ 1.234,56") == Decimal("1234.56")
    assert value("(412.380)") == Decimal(-412380)
    assert value("1,45%") == Decimal("1.45")
    assert value("1,234.5") is None
    assert parse_number("412.380").value == Decimal("412.380")  # the default convention
