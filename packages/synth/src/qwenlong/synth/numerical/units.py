"""Names and units: how a table's labels become one vocabulary across documents.

Three normalisations make tables from different documents land in one long table:

- units: "(USD million)", "in € thousands", "%", "(persons)" become a `UnitSpec` (currency,
  scale, percent, label; defined in `extract.units`, shared with the rule extractor), so
  figures printed in thousands and in millions can be rescaled to one unit per metric;
- metric names: "Revenues", "Net sales" and "Turnover" are the same metric (the documented
  synonym table `METRIC_SYNONYMS`); labels outside it keep their normalised form;
- entity names: "Acme Corp." and "ACME Corporation" are one entity (`entity_key`).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from qwenlong.synth.extract.units import (  # noqa: F401 (re-exported: one unit vocabulary)
    BRACKETS,
    UnitSpec,
    find_unit,
    parse_unit,
    strip_unit,
)

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
    r"financial\s+report|report|fiscal(?:\s+year)?|fy)\b|\b(?:FY\s?)?(?:19|20)\d{2}\b",
    re.IGNORECASE,
)


def clean_entity_name(text: str) -> str:
    """The entity a report title names: "Acme Corp - Annual Report 2023" -> "Acme Corp".

    Removes bracketed parts, years and report words (annual report, financial statements, ...),
    then separators and whitespace left at the ends.
    """
    base = _TITLE_NOISE.sub(" ", BRACKETS.sub(" ", text))
    return " ".join(base.split()).strip(" -–—:|,;/").strip()


def entity_key(name: str) -> str:
    """Matching key: casefolded, punctuation removed, trailing legal suffixes dropped."""
    words = name.casefold().translate(str.maketrans("", "", string.punctuation)).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)
