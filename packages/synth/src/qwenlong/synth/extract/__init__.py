"""Triple extractors: rule-based for semi-structured text (here) and LLM-based (generator A).

Both implement `qwenlong.synth.interfaces.TripleExtractor` and write relations and literal values
in the canonical forms of `extract.normalise`, so their triples merge in one graph.
"""

from qwenlong.synth.extract.normalise import (
    normalise_date,
    normalise_relation,
    normalise_value,
)
from qwenlong.synth.extract.rule import PROSE_PATTERNS, RuleTripleExtractor, parse_infoboxes
from qwenlong.synth.extract.tables import Table, parse_tables

__all__ = [
    "PROSE_PATTERNS",
    "RuleTripleExtractor",
    "Table",
    "normalise_date",
    "normalise_relation",
    "normalise_value",
    "parse_infoboxes",
    "parse_tables",
]
