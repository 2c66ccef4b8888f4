"""Printed numbers as tables write them, read into one canonical form.

Every number an extractor reads, in a world table or a published annual report, goes through
`parse_number`: the value as an exact `Decimal` with its sign, plus what the cell itself says
about its unit (percent, a currency sign or code, a scale word). Table- and row-level units are
added later (`extract.report_cells`, `numerical.align`); the printed cell stays the evidence.

Decimals keep the digits as printed ("1310.0" stays 1310.0, not 1310): the canonical text of a
value is `number_text(value)`, so "2,100", "$ 2,100" and "2100" all read as "2100".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

SCALE_WORDS: dict[str, Decimal] = {
    "thousand": Decimal(1000),
    "thousands": Decimal(1000),
    "k": Decimal(1000),
    "'000": Decimal(1000),
    "000s": Decimal(1000),
    "million": Decimal(10**6),
    "millions": Decimal(10**6),
    "mn": Decimal(10**6),
    "mio": Decimal(10**6),
    "m": Decimal(10**6),
    "billion": Decimal(10**9),
    "billions": Decimal(10**9),
    "bn": Decimal(10**9),
    "b": Decimal(10**9),
}
"""Multipliers a header, caption or cell may name ("USD million", "€ thousands", "1.2bn")."""

CURRENCY_SYMBOLS: dict[str, str] = {
    "us$": "USD",
    "r$": "BRL",
    "c$": "CAD",
    "a$": "AUD",
    "hk$": "HKD",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
}
"""Currency signs -> ISO codes, longest first ("R$" before "$"). "$" is read as USD and "¥" as
JPY: a corpus in other dollars or in yuan must name the code or the currency ("CAD",
"Canadian dollars"), which units read; a table stating another dollar reads its bare "$" as
that dollar (`extract.report_cells`)."""

POINT_WORDS: dict[str, str] = {
    **dict.fromkeys(("pts", "ppts", "pp", "percentage points", "percentage point"),
                    "percentage points"),
    **dict.fromkeys(("bps", "bp", "basis points", "basis point"), "basis points"),
}  # fmt: skip
"""Differences of two percentages as reports print them ("4.6 pts", "(120) bps"), with the unit
word stored: a change in a margin is not a percent of anything."""

MISSING_MARKS = frozenset(
    {"", "-", "—", "–", "−", "n/a", "na", "n.a.", "nm", "n.m.", "n/m", "...", "…", "*", "nil"}
)
"""Cells that state that there is no figure: dashes, blanks, "n/a", "nm" (not meaningful).
A dash is not a zero: a reader cannot tell "none" from "not disclosed"."""

MINUS_SIGNS = "-−–"
"""Hyphen-minus, U+2212 minus and the en dash typesetters use for negatives."""

FOOTNOTE_MARKS = "*†‡§¹²³⁴⁵⁶⁷⁸⁹⁰⁽⁾"
"""Marks set after a figure or label that point to a footnote, superscript digits ("¹", "⁽²⁾")
included."""

_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]+")
_PLAIN = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACED = re.compile(r"\d{1,3}(?: \d{3})+(?:\.\d+)?")
_PLAIN_COMMA = re.compile(r"\d+(?:,\d+)?|,\d+")
_GROUPED_DOTS = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")
_SPACED_COMMA = re.compile(r"\d{1,3}(?: \d{3})+(?:,\d+)?")
_CELL_SCALE = re.compile(r"^(.*?\d)\s*(thousand|million|billion|bn|mn|k|m|b)$", re.IGNORECASE)
_CELL_POINTS = re.compile(
    rf"^(.*?[\d)])\s*({'|'.join(sorted(POINT_WORDS, key=len, reverse=True))})\.?$", re.IGNORECASE
)
_CODE_FIRST = re.compile(r"^([A-Z]{3})\s*(.*)$")
_CODE_LAST = re.compile(r"^(.*?)\s+([A-Z]{3})$")
_NOTE_AFTER_NUMBER = re.compile(r"^(.*[\d)%])\s*(?:\((?:\d{1,2}|[a-z])\))+$")
_NOTE_AFTER_LABEL = re.compile(
    r"^(.*?\S)\s*(?:\((?:\d{1,2}|[a-z]|[ivx]{1,4})\)|\[\d{1,2}\]|[*†‡§¹²³⁴⁵⁶⁷⁸⁹⁰⁽⁾]+)+$"
)


@dataclass(frozen=True)
class NumericCell:
    """A parsed table cell: the number as printed, its own scale word, and whether it is a percent."""

    value: Decimal
    """The printed number with its sign, before any scale ("1.2bn" gives 1.2)."""
    scale: Decimal | None = None
    """Multiplier written in the cell itself ("bn" -> 1e9), None when the cell has none."""
    percent: bool = False
    currency: str | None = None
    """ISO code of a currency sign or code written in the cell, if any."""
    label: str = ""
    """A unit word written in the cell: "percentage points" for "4.6 pts" (`POINT_WORDS`)."""


def clean_text(text: str) -> str:
    """Whitespace of every kind (no-break, thin) collapsed to single spaces."""
    return _SPACES.sub(" ", text).strip()


def is_missing(text: str) -> bool:
    """Whether a cell says "no figure" (a dash, blank, "n/a", "nm")."""
    return clean_text(text).lower() in MISSING_MARKS


def strip_footnotes(label: str) -> str:
    """A label or period without trailing footnote marks: "Total assets(1)", "Revenue (a)",
    "Net sales*", "2021¹" lose the mark; "Net income (loss)" keeps its words."""
    text = clean_text(label)
    match = _NOTE_AFTER_LABEL.match(text)
    return match.group(1).rstrip() if match else text


def parse_number(text: str, decimal_comma: bool = False) -> NumericCell | None:
    """Read one cell as a number, or None when it is text or a missing-value mark.

    Accepted forms: "1234", "1,234.5" (comma thousands separators, well formed only: "1,2"
    is text), "1 234" (space or thin-space separators), "-5", "−5" and "(5)" (accounting
    negative), "12.5%", "(12.5)%", "$1,234", "$ (1,234)", "($1,234)", "USD 1,234", "€ 3.1",
    "1.2bn", "4.6 pts" and "(120) bps" (points: `POINT_WORDS`), and trailing footnote marks
    ("1,234*", "4,781(1)"). Dashes, "n/a" and empty cells
    are missing values, not zeros.

    `decimal_comma` reads the other convention, "1.234.567,89", "412.380", "1,45%" (dots group
    thousands, a comma marks decimals): a table decides it for all its cells
    (`extract.number_format`), since "412.380" alone reads either way.
    """
    s = clean_text(text).rstrip(FOOTNOTE_MARKS).strip()
    note = _NOTE_AFTER_NUMBER.match(s)
    if note and note.group(1).count("(") == note.group(1).count(")"):
        s = note.group(1).strip()
    if s.lower() in MISSING_MARKS:
        return None
    label = ""
    if points := _CELL_POINTS.match(s):
        s, label = points.group(1).strip(), POINT_WORDS[points.group(2).lower()]
    negative, percent, currency = False, False, None
    while True:
        if len(s) > 2 and s[0] == "(" and s[-1] == ")":
            negative, s = True, s[1:-1].strip()
        elif len(s) > 1 and s[0] == "(" and ")" not in s:
            negative, s = True, s[1:].strip()  # "(105,504" whose ")" sits in the next cell
        elif len(s) > 1 and s[0] in MINUS_SIGNS:
            negative, s = True, s[1:].strip()
        elif len(s) > 1 and s[-1] == "%" and not percent:
            percent, s = True, s[:-1].strip()
        elif currency is None and (found := _strip_currency(s))[0] is not None:
            currency, s = found
        else:
            break
    scale = None
    match = _CELL_SCALE.match(s)
    if match and not percent:
        s, scale = match.group(1).strip(), SCALE_WORDS[match.group(2).lower()]
    digits = _group_digits(s, decimal_comma)
    if digits is None:
        return None
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return None
    if label and (percent or currency or scale):
        return None
    return NumericCell(-value if negative else value, scale, percent, currency, label)


def _strip_currency(s: str) -> tuple[str | None, str]:
    """Remove one leading or trailing currency sign or three-letter code."""
    lowered = s.lower()
    for sign, code in CURRENCY_SYMBOLS.items():
        if lowered.startswith(sign):
            return code, s[len(sign) :].strip()
        if lowered.endswith(sign):
            return code, s[: -len(sign)].strip()
    if (first := _CODE_FIRST.match(s)) and first.group(2)[:1] in ("(", *"0123456789.-−"):
        return first.group(1), first.group(2).strip()
    if last := _CODE_LAST.match(s):
        return last.group(2), last.group(1).strip()
    return None, s


def _group_digits(s: str, decimal_comma: bool = False) -> str | None:
    """The digits of a plain or well-grouped number with separators removed and a decimal
    point, else None."""
    if decimal_comma:
        if _PLAIN_COMMA.fullmatch(s) or _GROUPED_DOTS.fullmatch(s) or _SPACED_COMMA.fullmatch(s):
            return s.replace(".", "").replace(" ", "").replace(",", ".")
        return None
    if _PLAIN.fullmatch(s):
        return s
    if _GROUPED.fullmatch(s):
        return s.replace(",", "")
    return s.replace(" ", "") if _SPACED.fullmatch(s) else None


def number_text(value: Decimal) -> str:
    """The canonical text of a value: sign, digits as printed, no grouping, no exponent."""
    text = format(value, "f")
    return "0" if text in ("-0", "-0.0") else text
