"""Names and units: how a table's labels become one vocabulary across documents.

Three normalisations make tables from different documents land in one long table:

- units: "(USD million)", "in € thousands", "%", "(persons)" become a `UnitSpec` (currency,
  scale, percent, label), so figures printed in thousands and in millions can be rescaled to one
  unit per metric;
- metric names: "Revenues", "Net sales" and "Turnover" are the same metric (the documented
  synonym table `METRIC_SYNONYMS`); labels outside it keep their normalised form;
- entity names: "Acme Corp." and "ACME Corporation" are one entity (`entity_key`).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from decimal import Decimal

from qwenlong.synth.numerical.tables import CURRENCY_SYMBOLS, SCALE_WORDS

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
}
"""Currency names in running text, as an LLM reading prose may write them ("USD" is read as is;
"dollars" is taken to be US dollars, as "$" is)."""

PERCENT_WORDS = frozenset({"%", "percent", "pct"})

UNIT_LABELS: dict[str, str] = {
    **dict.fromkeys(("persons", "people", "employees", "fte", "ftes", "headcount"), "persons"),
    **dict.fromkeys(("number", "count", "no"), ""),
    **dict.fromkeys(("tonnes", "tons", "t"), "tonnes"),
    **{word: word for word in ("units", "shares", "customers", "stores", "kg", "km", "ha")},
    **{word: word for word in ("mwh", "gwh", "kwh", "barrels", "boe", "vehicles", "patents")},
}
"""Unit words other than currencies, scales and percent, with the spelling stored ("people" and
"employees" both become "persons"; "number" is a plain count). A closed list on purpose: a
bracketed word outside it ("(Europe)") is part of the label, not a unit. Our choice."""

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


_TOKEN = re.compile(r"us\$|[$€£¥%]|'000|000s|[a-z]+|\d+")


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
    text = fragment.lower().replace("per cent", "%")
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


_PARENS = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")
_IN_PHRASE = re.compile(r"(?:^|[\s,;:])in\s+([^,;:()]+)$", re.IGNORECASE)


def unit_fragments(text: str) -> list[str]:
    """The parts of a label or caption that may state a unit: bracketed parts, a trailing
    "in ..." phrase, and the part after the last comma, in that order."""
    parts = [a or b for a, b in _PARENS.findall(text)]
    outside = _PARENS.sub(" ", text).strip()
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

    base = _PARENS.sub(drop, label)
    match = _IN_PHRASE.search(base)
    if match and parse_unit(match.group(1)) is not None:
        base = base[: match.start()]
    if "," in base and parse_unit(base.rsplit(",", 1)[1]) is not None:
        base = base.rsplit(",", 1)[0]
    return " ".join(base.split()).strip(" ,;:")


# --- metric names ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricName:
    """A canonical metric: its name in the long table and the labels that mean it."""

    name: str
    synonyms: tuple[str, ...]
    count: bool = False
    """A head count or other plain count: never inherits a currency from a table's caption."""
    phrase: str = ""
    """How questions name it when the bare name reads badly ("the number of employees");
    empty: the name itself."""


METRIC_SYNONYMS: tuple[MetricName, ...] = (
    MetricName(
        "revenue",
        (
            "revenues",
            "total revenue",
            "total revenues",
            "sales",
            "net sales",
            "turnover",
            "net revenue",
            "net revenues",
        ),
    ),
    MetricName(
        "operating income",
        ("operating profit", "ebit", "income from operations", "operating result"),
    ),
    MetricName(
        "net income",
        (
            "net profit",
            "net earnings",
            "profit for the year",
            "net income attributable to shareholders",
            "profit after tax",
        ),
    ),
    MetricName(
        "r&d spending",
        (
            "r&d spend",
            "r&d expenses",
            "r&d expense",
            "r&d",
            "research and development",
            "research and development expenses",
            "research and development spending",
        ),
        phrase="R&D spending",
    ),
    MetricName(
        "employees",
        (
            "number of employees",
            "headcount",
            "head count",
            "staff",
            "employees at year end",
            "workforce",
        ),
        count=True,
        phrase="number of employees",
    ),
    MetricName(
        "new hires",
        ("hires", "new employees", "recruits"),
        count=True,
        phrase="number of new hires",
    ),
    MetricName("total assets", ("assets",)),
    MetricName("total equity", ("equity", "shareholders equity", "stockholders equity")),
    MetricName("operating margin", ("ebit margin",)),
    MetricName("gross profit", ("gross margin amount",)),
)
"""The synonym table: each label on the right, once normalised, is stored as the name on the left.
Our choice, sized for annual reports; labels not listed are kept as `normalise_label` writes them,
so unknown metrics still align when documents spell them the same way."""

_SYNONYM_INDEX: dict[str, MetricName] = {}
for _metric in METRIC_SYNONYMS:
    for _label in (_metric.name, *_metric.synonyms):
        _SYNONYM_INDEX[_label] = _metric

_LABEL_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation if c != "&"})


def normalise_label(label: str) -> str:
    """Lower-case, units and brackets removed, "and" for "&" between words, punctuation to
    spaces (a literal "&" inside a word, as in "R&D", is kept), spaces collapsed."""
    base = strip_unit(label).lower().replace(" & ", " and ")
    return " ".join(base.translate(_LABEL_PUNCTUATION).split())


def canonical_metric(label: str) -> str:
    """The long table's name for a row or column label: its synonym-table name, else its
    normalised form ("" when nothing is left)."""
    normalised = normalise_label(label)
    found = _SYNONYM_INDEX.get(normalised)
    return found.name if found else normalised


def metric_phrase(name: str) -> str:
    """The words questions use for the canonical metric `name`."""
    found = _SYNONYM_INDEX.get(name)
    return found.phrase if found and found.phrase else name


def is_count_metric(name: str) -> bool:
    """Whether `name` (canonical) is a plain count such as a head count."""
    found = _SYNONYM_INDEX.get(name)
    return bool(found and found.count)


# --- entity names ---------------------------------------------------------------------------

LEGAL_SUFFIXES = frozenset(
    [
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "ltd",
        "limited",
        "llc",
        "plc",
        "gmbh",
        "ag",
        "sa",
        "nv",
        "bv",
        "se",
        "spa",
    ]
)
"""Trailing words dropped when matching entity names ("Acme Corp." matches "Acme")."""

_TITLE_NOISE = re.compile(
    r"\b(?:annual\s+report|annual\s+review|integrated\s+report|financial\s+statements|"
    r"financial\s+report|report|fiscal\s+year|fy)\b|\b(?:FY\s?)?(?:19|20)\d{2}\b",
    re.IGNORECASE,
)


def clean_entity_name(text: str) -> str:
    """The entity a report title names: "Acme Corp - Annual Report 2023" -> "Acme Corp".

    Removes bracketed parts, years and report words (annual report, financial statements, ...),
    then separators and whitespace left at the ends.
    """
    base = _TITLE_NOISE.sub(" ", _PARENS.sub(" ", text))
    return " ".join(base.split()).strip(" -–—:|,;/").strip()


def entity_key(name: str) -> str:
    """Matching key: casefolded, punctuation removed, trailing legal suffixes dropped."""
    words = name.casefold().translate(str.maketrans("", "", string.punctuation)).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)
