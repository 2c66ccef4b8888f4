"""Units as tables, captions and prose state them: "(USD million)", "in € thousands", "%".

A unit is a `UnitSpec` (currency, scale, percent, label), so figures printed in thousands and in
millions can be rescaled to one unit per metric, and every extractor writes the same unit for
the same words. `UnitSpec.render()` is the one spelling stored and shown ("USD million", "%",
"persons"). Shared by the rule extractor's tables (`extract.report_cells`) and generator B's
long table (`numerical.align`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from qwenlong.synth.extract.values import CURRENCY_SYMBOLS, POINT_WORDS, SCALE_WORDS

CURRENCY_CODES = frozenset(
    [
        "usd",
        "eur",
        "gbp",
        "jpy",
        "cny",
        "rmb",
        "chf",
        "cad",
        "aud",
        "nzd",
        "inr",
        "krw",
        "sek",
        "nok",
        "dkk",
        "hkd",
        "sgd",
        "brl",
        "mxn",
        "zar",
    ]
)
"""ISO codes read as currencies in unit text ("rmb" is stored as CNY)."""

CURRENCY_WORDS: dict[str, str] = {
    **dict.fromkeys(("dollar", "dollars"), "USD"),
    **dict.fromkeys(("euro", "euros"), "EUR"),
    **dict.fromkeys(("pound", "pounds", "sterling"), "GBP"),
    "yen": "JPY",
    "yuan": "CNY",
    "renminbi": "CNY",
    "reais": "BRL",
    "rupees": "INR",
}
"""Currency names in running text, as an LLM reading prose may write them ("USD" is read as is;
"dollars" is taken to be US dollars, as "$" is). Names of more than one word are
`CURRENCY_NAMES`."""

CURRENCY_NAMES: dict[str, str] = {
    **{f"{country} dollar": code for country, code in (
        ("u.s.", "USD"), ("u. s.", "USD"), ("us", "USD"), ("united states", "USD"),
        ("canadian", "CAD"), ("australian", "AUD"), ("new zealand", "NZD"),
        ("hong kong", "HKD"), ("singapore", "SGD"))},
    "swiss franc": "CHF",
    "brazilian real": "BRL",
    "brazilian reais": "BRL",
    "japanese yen": "JPY",
    "chinese yuan": "CNY",
    "indian rupee": "INR",
    "korean won": "KRW",
    "swedish krona": "SEK",
    "swedish kronor": "SEK",
    "norwegian krone": "NOK",
    "norwegian kroner": "NOK",
    "danish krone": "DKK",
    "danish kroner": "DKK",
    "mexican peso": "MXN",
    "south african rand": "ZAR",
}  # fmt: skip
"""Currencies named in words in a caption or lead-in ("(Expressed in thousands of Canadian
dollars)"), each also read with a plural "s" (irregular plurals are listed). Read before single
words, so "Canadian dollars" is CAD and not the "dollars" of `CURRENCY_WORDS`."""

PERCENT_WORDS = frozenset({"%", "percent", "pct"})

UNIT_LABELS: dict[str, str] = {
    **dict.fromkeys(("persons", "people", "employees", "fte", "ftes", "headcount"), "persons"),
    **dict.fromkeys(("number", "count", "no"), ""),
    **dict.fromkeys(("tonnes", "tons", "t"), "tonnes"),
    **{word: word for word in ("units", "shares", "customers", "stores", "kg", "km", "ha")},
    **{word: word for word in ("mwh", "gwh", "kwh", "barrels", "boe", "vehicles", "patents")},
    **{word: word for word in ("pence", "cents", "years", "days", "hours")},
    **{word: word for word in ("miles", "gallons", "ounces")},
    **{word: POINT_WORDS[word] for word in ("pts", "ppts", "bps")},
}
"""Unit words other than currencies, scales and percent, with the spelling stored ("people" and
"employees" both become "persons"; "number" is a plain count). A closed list on purpose: a
bracketed word outside it ("(Europe)") is part of the label, not a unit. Percentage and basis
points ("pts", "bps", not the ambiguous "pp", "bp" outside a figure) are `values.POINT_WORDS`.
Our choice."""

ANNOTATIONS = frozenset(
    [
        "restated",
        "unaudited",
        "audited",
        "adjusted",
        "reported",
        "estimate",
        "estimated",
        "est",
        "e",
        "note",
        "notes",
        "see",
        "continued",
        "cont",
        "unless",
        "otherwise",
        "stated",
    ]
)
"""Bracketed words that annotate a figure rather than name it: "(restated)" is dropped from
the label and gives no unit."""

FILLER_WORDS = frozenset(
    ["in", "of", "all", "figures", "amounts", "expressed", "are", "stated", "values"]
)
"""Words around a unit in running text ("all figures in USD million")."""

SCALE_NAMES: dict[Decimal, str] = {
    Decimal(1000): "thousand",
    Decimal(10**6): "million",
    Decimal(10**9): "billion",
}


@dataclass(frozen=True)
class UnitSpec:
    """What a printed figure measures and in what multiple."""

    currency: str | None = None
    """ISO code, or None for non-monetary figures."""
    scale: Decimal = Decimal(1)
    """Printed value times `scale` is the value in base units (1 for plain numbers)."""
    percent: bool = False
    label: str = ""
    """A non-currency unit word from `UNIT_LABELS` ("persons", "tonnes")."""

    @property
    def dimension(self) -> tuple[str, bool, str]:
        """What must match for two figures to be comparable after rescaling."""
        return (self.currency or "", self.percent, self.label)

    def render(self) -> str:
        """The unit as the long table and the questions print it: "USD million", "%", "persons"."""
        if self.percent:
            return "%"
        scale = SCALE_NAMES.get(self.scale, "" if self.scale == 1 else f"x{self.scale}")
        return " ".join(part for part in (self.currency or "", scale, self.label) if part)


_POINT_PHRASES = re.compile(r"\b(?:percentage|basis) points?\b")
_NAME_FORMS = {**CURRENCY_NAMES, **{f"{name}s": code for name, code in CURRENCY_NAMES.items()}}
_NAMES = re.compile(
    r"(?<!\w)(?:"
    + "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in sorted(_NAME_FORMS, key=len)[::-1])
    + r")(?!\w)"
)
_TOKEN = re.compile(r"us\$|r\$|c\$|a\$|hk\$|[$€£¥%]|'000|000s|[a-z]+|\d+")


def _name_codes(text: str) -> str:
    """Lower-cased `text` with currency names of several words written as their ISO codes."""
    return _NAMES.sub(
        lambda m: f" {_NAME_FORMS[' '.join(m.group(0).split())].lower()} ",
        text.lower(),
    )


def parse_unit(fragment: str) -> UnitSpec | None:
    """Read a unit from a short fragment ("USD million", "€ thousands", "%", "persons").

    Returns None when the fragment holds a word that is neither part of a unit nor filler
    ("(Europe)", "key figures") or states nothing at all ("(restated)"): such fragments belong
    to the label or annotate it. "number" alone is a unit, a plain count.
    """
    currency: str | None = None
    scale = Decimal(1)
    percent = False
    label: str | None = None
    text = _name_codes(fragment).replace("per cent", "%")
    text = _POINT_PHRASES.sub(lambda m: "pts" if m.group(0)[0] == "p" else "bps", text)
    for token in _TOKEN.findall(text):
        if token in CURRENCY_SYMBOLS:
            currency = CURRENCY_SYMBOLS[token]
        elif token in CURRENCY_CODES:
            currency = "CNY" if token == "rmb" else token.upper()
        elif token in CURRENCY_WORDS:
            currency = CURRENCY_WORDS[token]
        elif token in SCALE_WORDS:
            scale = SCALE_WORDS[token]
        elif token in PERCENT_WORDS:
            percent = True
        elif token in UNIT_LABELS and label is None:
            label = UNIT_LABELS[token]
        elif token not in FILLER_WORDS:
            return None
    if currency is None and scale == 1 and not percent and label is None:
        return None
    return UnitSpec(currency, scale, percent, label or "")


def _is_annotation(fragment: str) -> bool:
    words = _TOKEN.findall(fragment.lower())
    return bool(words) and all(w in ANNOTATIONS or w.isdigit() for w in words)


BRACKETS = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")
_IN_PHRASE = re.compile(r"(?:^|[\s,;:])in\s+([^,;:()]+)$", re.IGNORECASE)


def unit_fragments(text: str) -> list[str]:
    """The parts of a label or caption that may state a unit: bracketed parts, a trailing
    "in ..." phrase, and the part after the last comma, in that order."""
    parts = [a or b for a, b in BRACKETS.findall(text)]
    outside = BRACKETS.sub(" ", text).strip()
    match = _IN_PHRASE.search(outside)
    if match:
        parts.append(match.group(1))
    if "," in outside:
        parts.append(outside.rsplit(",", 1)[1])
    return parts


def find_unit(text: str) -> UnitSpec | None:
    """The first unit stated in `text` by `unit_fragments`, or None."""
    for fragment in unit_fragments(text):
        spec = parse_unit(fragment)
        if spec is not None:
            return spec
    return None


def strip_unit(label: str) -> str:
    """`label` without its unit and annotations: bracketed units or annotations, a trailing
    "in <unit>" phrase, or a unit after the last comma. Other bracketed words stay."""

    def drop(match: re.Match[str]) -> str:
        inner = match.group(1) or match.group(2) or ""
        return " " if parse_unit(inner) is not None or _is_annotation(inner) else match.group(0)

    base = BRACKETS.sub(drop, label)
    match = _IN_PHRASE.search(base)
    if match and parse_unit(match.group(1)) is not None:
        base = base[: match.start()]
    if "," in base and parse_unit(base.rsplit(",", 1)[1]) is not None:
        base = base.rsplit(",", 1)[0]
    return " ".join(base.split()).strip(" ,;:")


_EXCEPT = re.compile(r"[,;]?\s*\bexcept\b([^()]*)", re.IGNORECASE)
_US_DOLLARS = re.compile(r"\bU\.?\s?S\.?\s*(?:dollars?|\$)", re.IGNORECASE)
_PIECES = re.compile(r"[,;]")


def table_unit(text: str) -> tuple[UnitSpec | None, str]:
    """(unit, exceptions) of a caption or unit line as reports write them.

    "(in millions, except per share data)" gives (million, "per share data"); "Dollars in
    thousands" gives (USD thousand, ""); "in millions of U.S. dollars" gives USD million; a
    text stating no unit gives (None, ""). The exceptions name rows the scale does not cover.
    """
    exceptions = " ".join(m.group(1).strip().lower() for m in _EXCEPT.finditer(text))
    base = _US_DOLLARS.sub("USD", _EXCEPT.sub("", text))
    candidates = [base, *(a or b for a, b in BRACKETS.findall(base))]
    for candidate in candidates:
        for piece in [candidate, *_PIECES.split(candidate)]:
            found = parse_unit(piece) or find_unit(piece)
            if found is not None:
                return found, exceptions
    return None, exceptions


def cell_unit(text: str) -> UnitSpec | None:
    """The unit of a whole cell that only states one: "(in millions)", "$", "%", "€'000",
    "Millions of U.S. dollars (Note 1)" (a bracketed note beside the unit annotates it)."""
    unannotated = BRACKETS.sub(
        lambda m: " " if _is_annotation(m.group(1) or m.group(2) or "") else m.group(0), text
    )
    inner = unannotated.strip().strip("()[]").strip()
    return parse_unit(_US_DOLLARS.sub("USD", _EXCEPT.sub("", inner))) if inner else None


def is_unit_text(text: str) -> bool:
    """Whether a whole cell only states a unit (`cell_unit`)."""
    return cell_unit(text) is not None


_UNIT_TOKEN = re.compile(
    r"(?<![\w$€£¥])(?:US\$|[$€£¥]|(?:USD|EUR|GBP|JPY|CHF|CNY|RMB|CAD|AUD|SEK|NOK|DKK|HKD)\b)"
    r"\s?(?:m|mn|bn|k|'000|000s|millions?|thousands?|billions?)?(?!\w)"
)
"""A currency sign or code, maybe with a scale, standing among other words: "2022 £m"."""


def split_unit_token(text: str) -> tuple[UnitSpec | None, str]:
    """(unit, the rest) of a header such as "2022 £m" or "Revenue US$ million"."""
    match = _UNIT_TOKEN.search(text)
    if match is None or (unit := parse_unit(match.group(0))) is None:
        return None, text
    return unit, " ".join((text[: match.start()] + " " + text[match.end() :]).split())
