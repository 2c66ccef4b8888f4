"""`build_world`: draw the ground truth, then write every document from it."""

from __future__ import annotations

from qwenlong.synth.world.articles import write_article
from qwenlong.synth.world.config import WorldConfig
from qwenlong.synth.world.dialogues import write_dialogue
from qwenlong.synth.world.finance import company_financials
from qwenlong.synth.world.graph import GraphBuilder
from qwenlong.synth.world.model import World
from qwenlong.synth.world.reports import write_report, year_ranges


def build_world(config: WorldConfig | None = None) -> World:
    """A complete world for `config` (defaults when None); the same config gives the same world.

    Documents come in a fixed order: articles (people, organisations, places, events, in build
    order), then annual reports, then dialogues. Each document draws from its own RNG seeded by
    the world seed and its id, so growing one part of the world leaves the others' text alone.
    """
    config = config or WorldConfig()
    entities, facts = GraphBuilder(config).build()
    industry = {f.head: f.tail for f in facts if f.relation == "industry"}
    financials = [
        row
        for company in entities
        if company.subtype == "company"
        for row in company_financials(config, company, industry.get(company.id, ""))
    ]
    world = World(config, entities, facts, financials, [], [], {})
    for kind in ("person", "organisation", "place", "event"):
        for entity in world.entities_of(kind):
            doc, truth = write_article(world, entity)
            world.documents.append(doc)
            world.truth[doc.id] = truth
    for company in world.entities_of("organisation", "company"):
        for years in year_ranges(world):
            doc, truth = write_report(world, company, years)
            world.documents.append(doc)
            world.truth[doc.id] = truth
    for index in range(config.n_dialogues):
        doc, truth, dialogue = write_dialogue(world, index)
        world.documents.append(doc)
        world.truth[doc.id] = truth
        world.dialogues.append(dialogue)
    return world
