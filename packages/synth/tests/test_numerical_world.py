"""Integration with the fictional world: its reports, read back, give its financial rows.

The world prints each company's financials as markdown or HTML tables; extraction and
alignment must reproduce `World.financials` exactly (every row, value and unit, nothing else),
whatever the report span. Answers on the world are re-derived in test_numerical_generator.
"""

from __future__ import annotations

import random

import pytest

from qwenlong.synth.interfaces import Corpus, GenerationContext
from qwenlong.synth.numerical import NumericalConfig, build_corpus_table
from qwenlong.synth.world import WorldConfig, build_world

WORLD_METRICS = {
    "revenue": "revenue",
    "operating_income": "operating income",
    "net_income": "net income",
    "rd_spend": "r&d spending",
    "employees": "employees",
    "new_hires": "new hires",
}
"""World metric key -> the long table's canonical name (through the synonym table)."""


@pytest.mark.parametrize(
    "config",
    [
        WorldConfig(),
        WorldConfig(seed=4, years_per_report=2, html_table_fraction=0.5),
        WorldConfig(seed=9, n_organisations=16, years_per_report=1),
    ],
    ids=["one-report", "two-year-reports", "yearly-reports"],
)
def test_world_reports_reproduce_the_financial_rows(config: WorldConfig) -> None:
    world = build_world(config)
    corpus = Corpus(world.documents, lambda text: len(text.split()))
    ctx = GenerationContext(random.Random(0), log=lambda line: None)
    table = build_corpus_table(corpus, NumericalConfig(min_numeric_cells=6), ctx)
    expected = {
        (WORLD_METRICS[r.metric], world.entity(r.company).name, r.year): r.value
        for r in world.financials
    }
    assert table.catalog.values == expected
    assert table.catalog.conflicts == 0
    units = {WORLD_METRICS[r.metric]: r.unit for r in world.financials}
    assert table.catalog.units == units
    assert not table.alignment.dropped and not table.alignment.rescaled
    reports = [d for d in world.documents if d.meta.get("doc_kind") == "annual_report"]
    assert table.stats.statistical_documents == len(reports)
    assert table.stats.layouts == {"metric_by_year": 2 * len(reports)}


def test_every_world_fact_row_points_at_a_report_of_its_company() -> None:
    world = build_world(WorldConfig(seed=2, years_per_report=2))
    corpus = Corpus(world.documents, lambda text: len(text.split()))
    ctx = GenerationContext(random.Random(0), log=lambda line: None)
    table = build_corpus_table(corpus, NumericalConfig(min_numeric_cells=6), ctx)
    by_id = {d.id: d for d in world.documents}
    for fact in table.alignment.facts:
        doc = by_id[fact.doc_id]
        assert doc.meta["subject"] == fact.entity
        first, _, last = doc.meta["years"].partition("-")
        assert int(first) <= fact.year <= int(last or first)
