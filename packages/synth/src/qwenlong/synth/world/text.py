"""Small text helpers shared by the article, report and dialogue writers."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from qwenlong.synth.interfaces import Triple

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

_FORMATTER = string.Formatter()


def format_date(iso: str, style: str) -> str:
    """An ISO date written as prose: "dmy" -> "12 April 1961", "mdy" -> "April 12, 1961"."""
    year, month, day = (int(p) for p in iso.split("-"))
    if style == "dmy":
        return f"{day} {MONTHS[month - 1]} {year}"
    if style == "mdy":
        return f"{MONTHS[month - 1]} {day}, {year}"
    return iso


def group_digits(value: str) -> str:
    """ "1234567.5" -> "1,234,567.5"; the canonical form keeps digits ungrouped."""
    sign = "-" if value.startswith("-") else ""
    whole, _, frac = value.lstrip("-").partition(".")
    grouped = f"{int(whole):,}"
    return sign + grouped + (f".{frac}" if frac else "")


def format_value(value: float, decimals: int) -> str:
    """Canonical printed form of a number: fixed decimals, no grouping, "-0.0" avoided."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def indefinite(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def slots(template: str) -> list[str]:
    """The `{field}` names a template uses, in order."""
    return [name for _, name, _, _ in _FORMATTER.parse(template) if name]


def sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class Sentences:
    """Sentences written so far and the triples they state (the document's prose truth)."""

    lines: list[str] = field(default_factory=list)
    triples: list[Triple] = field(default_factory=list)

    def add(self, sentence: str, triples: list[Triple] | tuple[Triple, ...] = ()) -> None:
        self.lines.append(sentence)
        self.triples.extend(triples)
