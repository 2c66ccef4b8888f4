"""Numeric attribute values in vaguer words: ranges, and comparisons with another entity.

The paper obfuscates entities and dates so that a question cannot be answered by string lookup;
a population or an amount printed exactly ("a city whose population is 184,320") is as easy to
look up as a name. A description may instead say:

- a range, from vaguest to exact: "between 100,000 and 1,000,000" (the power of ten), "between
  150,000 and 200,000" (half steps of it), "between 180,000 and 190,000" (tenth steps), then the
  value as written;
- a relative term: "more than twice that of Ostra", "less than half that of Ostra", naming
  another entity with the same attribute in the same unit (its fact joins the description's).

Every form is a `NumberTest`, so `obfuscate.Describer` checks against the whole graph that no
other entity's value passes it too; the answer stays re-derivable from the facts the
description lists. Values below 10, negative values and values with other units than their
rivals fall back to the exact form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

VALUE = re.compile(r"^(-?\d+(?:\.\d+)?)(?:\s+(\S.*))?$")
"""A numeric value node's name: the number, then its unit if any ("1200.5 USD million")."""

MIN_OBFUSCATED = Decimal(10)
"""Below this a range says nothing a reader could not guess; the exact value is given."""


@dataclass(frozen=True)
class Amount:
    value: Decimal
    unit: str


def parse_amount(text: str) -> Amount | None:
    """The number and unit of a value node's name, or None when it is not a number."""
    match = VALUE.match(text.replace(",", "").strip())
    if match is None:
        return None
    try:
        return Amount(Decimal(match.group(1)), match.group(2) or "")
    except InvalidOperation:
        return None


def grouped(value: Decimal) -> str:
    """184320 -> "184,320"; 1500.5 -> "1,500.5"."""
    text = format(value.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{int(whole):,}" + (f".{fraction}" if fraction else "")


@dataclass(frozen=True)
class NumberTest:
    """The values a description admits: [low, high), above or below one bound, or exactly
    `low` when `low == high` (the value as written)."""

    text: str
    unit: str
    low: Decimal | None
    high: Decimal | None
    level: int
    strict_low: bool = False
    """`low` itself is excluded ("more than twice")."""

    def matches(self, amount: Amount | None) -> bool:
        if amount is None or amount.unit != self.unit:
            return False
        if self.low is not None and self.low == self.high:
            return amount.value == self.low
        if self.low is not None and (
            amount.value <= self.low if self.strict_low else amount.value < self.low
        ):
            return False
        return self.high is None or amount.value < self.high


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


def range_tests(amount: Amount, exact_level: int) -> list[NumberTest]:
    """From vaguest to exact: power-of-ten range, half steps, tenth steps, the value itself."""
    value, unit = amount.value, amount.unit
    exact = NumberTest(_with_unit(grouped(value), unit), unit, value, value, exact_level)
    if value < MIN_OBFUSCATED:
        return [exact]
    power = Decimal(10) ** (len(str(int(value))) - 1)
    tests = []
    for level, step in enumerate((power * 10, power / 2, power / 10)):
        low = (value // step) * step if level else power
        high = low + step if level else power * 10
        text = _with_unit(f"between {grouped(low)} and {grouped(high)}", unit)
        tests.append(NumberTest(text, unit, low, high, level))
    return [*tests, exact]


def relative_tests(
    amount: Amount, others: list[tuple[str, str, Amount]], level: int
) -> list[tuple[NumberTest, str]]:
    """ "more than twice that of R" / "less than half that of R" against the closest rival
    with the same unit that the ratio still holds for; each with the rival node it names.
    `others`: (node, display name, amount) of other entities with the same attribute."""
    same = [(n, name, a) for n, name, a in others if a.unit == amount.unit and a.value > 0]
    if amount.value < MIN_OBFUSCATED or not same:
        return []
    out = []
    below = [o for o in same if 2 * o[2].value < amount.value]
    if below:
        node, name, ref = max(below, key=lambda o: o[2].value)
        text = f"more than twice that of {name}"
        out.append((NumberTest(text, amount.unit, 2 * ref.value, None, level, True), node))
    above = [o for o in same if amount.value * 2 < o[2].value]
    if above:
        node, name, ref = min(above, key=lambda o: o[2].value)
        text = f"less than half that of {name}"
        out.append((NumberTest(text, amount.unit, None, ref.value / 2, level), node))
    return out
