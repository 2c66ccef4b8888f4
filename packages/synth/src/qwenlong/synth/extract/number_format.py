"""Which of the two printed number conventions a table uses: "1,234.56" or "1.234,56".

Brazilian and most continental European reports group thousands with dots and mark decimals
with a comma ("R$ 1.823.103", "412.380", "1,45%"). One cell rarely decides it: "412.380" is
412.38 in one convention and 412380 in the other. A table is printed in one convention, so the
reader decides once per table, from the figures that read only one way:

- only the decimal-comma convention: two or more dot groups ("1.823.103"), dot groups with a
  comma decimal ("1.234,5"), a comma followed by other than three digits ("1,45", "12,5");
- only the decimal-point convention: two or more comma groups ("1,823,103"), comma groups with
  a dot decimal ("1,234.5"), a dot followed by other than three digits ("5.79", "0.5").

A table whose figures read only the decimal-comma way, and none only the other, is read in that
convention. A table with no decisive figure keeps the decimal point unless it states a
currency whose reports print decimal commas (R$, €) and every dotted figure has exactly three
digits after its dot ("150.000", "24.118"), which decimal amounts in such a table would not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DECIMAL_COMMA_CURRENCIES = frozenset({"BRL", "EUR", "DKK", "NOK", "SEK", "ARS", "CLP", "COP"})
"""Currencies whose home reports print "1.234,56". A tie-breaker only: many € reports print
"1,234.5", and their decisive figures say so. Our choice."""

_FIGURE = re.compile(r"\d[\d.,]*\d|\d")
_COMMA_ONLY = re.compile(
    r"\d{1,3}(?:\.\d{3}){2,}(?:,\d+)?|\d{1,3}(?:\.\d{3})+,\d+|\d+,(?:\d{1,2}|\d{4,})"
)
_POINT_ONLY = re.compile(
    r"\d{1,3}(?:,\d{3}){2,}(?:\.\d+)?|\d{1,3}(?:,\d{3})+\.\d+|\d+\.(?:\d{1,2}|\d{4,})"
)
_THREE_AFTER_DOT = re.compile(r"\d{1,3}\.\d{3}")


def uses_decimal_comma(cells: Iterable[str], currency: str | None = None) -> bool:
    """Whether the figures in `cells` (a table's value cells) print decimal commas, by the
    rules of the module docstring; `currency` is the one the table states, if any."""
    comma = point = 0
    dotted: list[str] = []
    for cell in cells:
        for figure in _FIGURE.findall(cell):
            comma += bool(_COMMA_ONLY.fullmatch(figure))
            point += bool(_POINT_ONLY.fullmatch(figure))
            if "." in figure:
                dotted.append(figure)
    if comma or point:
        return comma > 0 and point == 0
    return (
        currency in DECIMAL_COMMA_CURRENCIES
        and bool(dotted)
        and all(_THREE_AFTER_DOT.fullmatch(f) for f in dotted)
    )
