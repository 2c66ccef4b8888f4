"""Generator B: corpus-level numerical questions with SQL over one DuckDB table (CorpusQA).

Modules, in pipeline order: `tables` (markdown and HTML tables, numeric cells), `units` (units,
metric synonyms, entity names), `align` (table layouts to one long table, unit alignment),
`prose_schema` (optional LLM extraction of figures from prose), `factdb` (DuckDB `facts` and
`metric_values`, the catalog), `corpus_table` (the whole extraction), `sql_templates` (queries
by difficulty), `questions` (wording and answer strings), `paraphrase` (optional, checked LLM
rewording), `generator` (the `Generator`), `config` (its settings).
"""

from qwenlong.synth.numerical.config import NumericalConfig, ParaphraseConfig, ProseSchemaConfig
from qwenlong.synth.numerical.corpus_table import CorpusTable, build_corpus_table
from qwenlong.synth.numerical.generator import (
    GENERATOR_NAME,
    CorpusNumericalGenerator,
    NumericalReport,
)
from qwenlong.synth.numerical.sql_templates import SQL_TEMPLATES

__all__ = [
    "GENERATOR_NAME",
    "SQL_TEMPLATES",
    "CorpusNumericalGenerator",
    "CorpusTable",
    "NumericalConfig",
    "NumericalReport",
    "ParaphraseConfig",
    "ProseSchemaConfig",
    "build_corpus_table",
]
