"""The fictional world's ground truth: determinism, sizes and consistency of dated relations."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from pydantic import ValidationError

from qwenlong.synth.world import METRICS, RELATIONS, World, WorldConfig, build_world


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldConfig(seed=11, n_people=60, n_organisations=14, n_events=10))


def _year(world: World, entity_id: str) -> int:
    entity = world.entity(entity_id)
    relation = "birth_date" if entity.kind == "person" else "founded"
    value = world.value(entity_id, relation)
    assert value is not None, entity_id
    return int(value[:4])


def test_same_config_same_world_and_seed_changes_it() -> None:
    a, b = build_world(WorldConfig(seed=3)), build_world(WorldConfig(seed=3))
    assert [(d.id, d.text) for d in a.documents] == [(d.id, d.text) for d in b.documents]
    assert a.facts == b.facts and a.financials == b.financials
    c = build_world(WorldConfig(seed=4))
    assert [e.name for e in a.entities] != [e.name for e in c.entities]
    assert all(x.text != y.text for x, y in zip(a.documents, c.documents, strict=True))


def test_growing_dialogues_leaves_articles_untouched() -> None:
    small = build_world(WorldConfig(seed=2, n_dialogues=1))
    large = build_world(WorldConfig(seed=2, n_dialogues=6))
    articles = [d for d in small.documents if d.meta["doc_kind"] != "dialogue"]
    assert articles == [d for d in large.documents if d.meta["doc_kind"] != "dialogue"]
    assert small.documents[-1].text == large.documents[len(articles)].text


def test_default_world_is_small_and_fast() -> None:
    start = time.perf_counter()
    world = build_world()
    assert time.perf_counter() - start < 2.0
    kinds = Counter(d.meta["doc_kind"] for d in world.documents)
    cfg = world.config
    n_companies = len(world.entities_of("organisation", "company"))
    assert (
        kinds["article"]
        == len(world.entities)
        == (cfg.n_people + cfg.n_organisations + cfg.n_places + cfg.n_countries + cfg.n_events)
    )
    assert kinds["annual_report"] == n_companies >= 1
    assert kinds["dialogue"] == cfg.n_dialogues
    assert 30 <= len(world.documents) <= 100


def test_ids_domains_and_uniqueness(world: World) -> None:
    seed = world.config.seed
    ids = [d.id for d in world.documents]
    assert len(ids) == len(set(ids))
    domain = {"article": "general", "annual_report": "professional", "dialogue": "dialogue"}
    for doc in world.documents:
        kind = doc.meta["doc_kind"]
        assert doc.domain == domain[kind]
        prefix = {"article": "article", "annual_report": "report", "dialogue": "dialogue"}[kind]
        assert doc.id.startswith(f"world-{seed}-{prefix}-")
    surfaces = [s.casefold() for e in world.entities for s in (e.name, *e.aliases)]
    assert len(surfaces) == len(set(surfaces)), "every name and alias names one entity"
    assert len({e.id for e in world.entities}) == len(world.entities)


def test_relations_are_typed(world: World) -> None:
    for fact in world.facts:
        spec = RELATIONS[fact.relation]
        head = world.entity(fact.head)
        assert spec.head in ("*", head.kind), fact
        if spec.tail == "value":
            assert fact.tail
        else:
            assert world.entity(fact.tail).kind == spec.tail, fact
        assert (fact.date is not None) == spec.dated, fact


def test_dated_relations_are_consistent(world: World) -> None:
    now = world.config.report_last_year
    for fact in world.facts:
        date = int(fact.date) if fact.date else None
        if fact.relation == "employer":
            assert date >= _year(world, fact.head) + 20
            assert date >= _year(world, fact.tail)
            assert date <= now
        elif fact.relation == "education":
            assert 21 <= date - _year(world, fact.head) <= 25
            assert date >= _year(world, fact.tail)
        elif fact.relation == "spouse":
            assert date >= max(_year(world, fact.head), _year(world, fact.tail)) + 20
            assert world.facts_about(fact.tail, "spouse")[0].tail == fact.head
        elif fact.relation == "founder":
            assert _year(world, fact.head) >= _year(world, fact.tail) + 22
        elif fact.relation == "parent":
            assert _year(world, fact.tail) < _year(world, fact.head)
        elif fact.relation == "ceo":
            employer = world.facts_about(fact.tail, "employer")[0]
            assert employer.tail == fact.head and int(employer.date) <= date <= now
        elif fact.relation == "participants":
            assert int(world.value(fact.head, "date")) >= _year(world, fact.tail) + 18
        elif fact.relation == "organiser":
            assert int(world.value(fact.head, "date")) > _year(world, fact.tail)
        if date is not None:
            assert date <= now


def test_every_person_has_one_employer_and_every_organisation_staff(world: World) -> None:
    employers = Counter(f.head for f in world.facts if f.relation == "employer")
    assert set(employers.values()) == {1}
    assert len(employers) == len(world.entities_of("person"))
    staffed = {f.tail for f in world.facts if f.relation == "employer"}
    assert staffed == {e.id for e in world.entities_of("organisation")}


def test_financial_tables_are_complete_and_plausible(world: World) -> None:
    companies = world.entities_of("organisation", "company")
    years = world.config.report_years
    assert len(world.financials) == len(companies) * len(years) * len(METRICS)
    for company in companies:
        for year in years:
            row = {m: world.financial(company.id, year, m) for m in METRICS}
            assert row["revenue"].value > 0 and row["revenue"].unit == "USD million"
            assert 0 < row["rd_spend"].value < row["revenue"].value
            assert row["operating_income"].value < row["revenue"].value
            if row["operating_income"].value > 0:
                assert row["net_income"].value <= row["operating_income"].value
            assert row["employees"].value >= 5 and row["employees"].value == int(
                row["employees"].value
            )
            assert row["new_hires"].unit == "persons"
        first, last = (
            world.financial(company.id, y, "revenue").value for y in (years[0], years[-1])
        )
        assert 0.2 < last / first < 5, "growth stays plausible over a few years"


def test_years_per_report_splits_reports() -> None:
    world = build_world(
        WorldConfig(seed=1, report_first_year=2016, report_last_year=2023, years_per_report=3)
    )
    reports = [d for d in world.documents if d.meta["doc_kind"] == "annual_report"]
    companies = world.entities_of("organisation", "company")
    assert len(reports) == 3 * len(companies)
    assert sorted({d.meta["years"] for d in reports}) == ["2016-2018", "2019-2021", "2022-2023"]


def test_larger_world_scales() -> None:
    cfg = WorldConfig(seed=9, n_people=400, n_organisations=80, n_places=40, n_countries=6,
                      n_events=60, n_dialogues=60)  # fmt: skip
    world = build_world(cfg)
    assert len(world.documents) == 400 + 80 + 40 + 6 + 60 + 60 + len(
        world.entities_of("organisation", "company")
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"n_people": 2},
        {"dialogue_turns": (10, 5)},
        {"dialogue_speakers": (1, 3)},
        {"report_first_year": 2024, "report_last_year": 2020},
        {"n_peple": 10},
    ],
)
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValidationError):
        WorldConfig(**bad)
