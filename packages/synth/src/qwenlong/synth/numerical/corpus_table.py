"""From a corpus to the one cross-document table: filter, extract, align, load into DuckDB.

documents --tables--> statistical documents (>= min_numeric_cells numbers in tables)
          --align---> raw facts per table layout (+ prose facts from an LLM, optional)
          --units---> aligned long table, one unit per metric, one name per entity
          --DuckDB--> facts + metric_values, and a Catalog for the templates
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb

from qwenlong.synth.interfaces import Corpus, GenerationContext
from qwenlong.synth.numerical.align import (
    Alignment,
    RawFact,
    align_units,
    document_entity,
    read_table,
)
from qwenlong.synth.numerical.config import NumericalConfig
from qwenlong.synth.numerical.factdb import Catalog, build_fact_db
from qwenlong.synth.numerical.prose_schema import ProseSchemaExtractor, ProseStats
from qwenlong.synth.numerical.tables import extract_tables, is_statistical


@dataclass
class ExtractionStats:
    """What extraction and alignment did, for the synthesis report."""

    documents: int = 0
    statistical_documents: int = 0
    """Documents kept by the rich-table filter."""
    tables: int = 0
    """Tables found in the kept documents."""
    layouts: Counter[str] = field(default_factory=Counter)
    """Layout name -> tables read with it ("unrecognised" for tables no layout matched)."""
    table_facts: int = 0
    prose_facts: int = 0
    prose: ProseStats | None = None
    """None when prose extraction did not run."""
    prose_mode: str = "skipped: no LLM"
    """"llm" when it ran; otherwise why not."""


@dataclass
class CorpusTable:
    """The cross-document long table of one corpus, loaded and ready to query."""

    conn: duckdb.DuckDBPyConnection
    catalog: Catalog
    raw: list[RawFact]
    alignment: Alignment
    stats: ExtractionStats


def table_facts(corpus: Corpus, config: NumericalConfig, stats: ExtractionStats) -> list[RawFact]:
    """Facts from the tables of documents that pass the statistical-table filter."""
    facts: list[RawFact] = []
    for doc in corpus.documents:
        stats.documents += 1
        tables = extract_tables(doc)
        if not is_statistical(tables, config.min_numeric_cells):
            continue
        stats.statistical_documents += 1
        stats.tables += len(tables)
        entity = document_entity(doc)
        for table in tables:
            layout, found = read_table(table, entity)
            stats.layouts[layout or "unrecognised"] += 1
            facts.extend(found)
    stats.table_facts = len(facts)
    return facts


def prose_facts(
    corpus: Corpus, config: NumericalConfig, ctx: GenerationContext, stats: ExtractionStats
) -> list[RawFact]:
    """Facts an LLM reads from prose, when there is an LLM and the path is enabled."""
    if not config.prose.enabled:
        stats.prose_mode = "disabled"
        return []
    if ctx.llm is None:
        stats.prose_mode = "skipped: no LLM"
        return []
    docs = corpus.documents
    if config.prose.only_without_tables:
        docs = [d for d in docs if not is_statistical(extract_tables(d), config.min_numeric_cells)]
    if config.prose.max_documents is not None:
        docs = docs[: config.prose.max_documents]
    extractor = ProseSchemaExtractor(ctx.llm, config.prose, ctx.rng.randrange(2**31), ctx.log)
    facts = [fact for per_doc in extractor.extract(docs) for fact in per_doc]
    stats.prose, stats.prose_mode, stats.prose_facts = extractor.stats, "llm", len(facts)
    return facts


def build_corpus_table(
    corpus: Corpus, config: NumericalConfig, ctx: GenerationContext
) -> CorpusTable:
    """Extract, align and load every figure of `corpus` (see the module docstring)."""
    stats = ExtractionStats()
    raw = table_facts(corpus, config, stats) + prose_facts(corpus, config, ctx, stats)
    alignment = align_units(raw)
    conn = build_fact_db(alignment.facts)
    return CorpusTable(conn, Catalog.load(conn), raw, alignment, stats)
