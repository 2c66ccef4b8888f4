"""A seeded fictional world: the embedded default corpus, with its ground truth kept.

    world = build_world(WorldConfig(seed=3, n_people=200))
    world.documents            # articles (general), annual reports (professional), dialogues
    world.facts                # (head id, relation, tail, date) ground truth
    world.financials           # (company, year, metric, value, unit) ground truth
    world.triples(doc_id)      # the Triples that document states, for scoring extractors
    write_world(world, run_dir / "world.json"); read_world(run_dir / "world.json")

Document ids: "world-<seed>-article-<slug>", "world-<seed>-report-<slug>-<last year>",
"world-<seed>-dialogue-<n>".
"""

from qwenlong.synth.world.build import build_world
from qwenlong.synth.world.config import WorldConfig
from qwenlong.synth.world.model import (
    ENTITY_KINDS,
    METRICS,
    RELATIONS,
    TRIPLE_PARTS,
    Dialogue,
    DocTruth,
    Entity,
    Fact,
    FinancialRow,
    Metric,
    RelationSpec,
    Turn,
    World,
)
from qwenlong.synth.world.scoring import ExtractionScore, score_extraction
from qwenlong.synth.world.serialize import read_world, write_world

__all__ = [
    "ENTITY_KINDS",
    "METRICS",
    "RELATIONS",
    "TRIPLE_PARTS",
    "Dialogue",
    "DocTruth",
    "Entity",
    "ExtractionScore",
    "Fact",
    "FinancialRow",
    "Metric",
    "RelationSpec",
    "Turn",
    "World",
    "WorldConfig",
    "build_world",
    "read_world",
    "score_extraction",
    "write_world",
]
