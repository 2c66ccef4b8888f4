"""Triple extractors: rule-based for semi-structured text (here) and LLM-based (generator A).

Both implement `qwenlong.synth.interfaces.TripleExtractor` and write relations and literal values
in the canonical forms of `extract.normalise`, so their triples merge in one graph.

Tables as reports print them are read in steps shared with generator B's long table: `values`
(printed numbers), `periods` (years, fiscal years, as-of dates), `units` (units and scale
lines), `headers` (which rows are the header, what each column is), `report_cells` (every
figure with its canonical value and unit); `fact_score` scores them against gold facts.
"""

from qwenlong.synth.extract.headers import GridLayout, read_grid
from qwenlong.synth.extract.normalise import (
    normalise_date,
    normalise_relation,
    normalise_value,
)
from qwenlong.synth.extract.report_cells import CellFact, read_cells
from qwenlong.synth.extract.rule import PROSE_PATTERNS, RuleTripleExtractor, parse_infoboxes
from qwenlong.synth.extract.tables import Table, parse_tables, table_facts

__all__ = [
    "PROSE_PATTERNS",
    "CellFact",
    "GridLayout",
    "RuleTripleExtractor",
    "Table",
    "normalise_date",
    "normalise_relation",
    "normalise_value",
    "parse_infoboxes",
    "parse_tables",
    "read_cells",
    "read_grid",
    "table_facts",
]
