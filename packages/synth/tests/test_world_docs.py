"""The world's documents and the ground-truth triples recorded for each of them."""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.synth.interfaces import Triple
from qwenlong.synth.world import (
    METRICS,
    RELATIONS,
    World,
    WorldConfig,
    build_world,
    read_world,
    write_world,
)
from qwenlong.synth.world.text import format_value


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldConfig(seed=5, n_people=40, n_organisations=12, n_dialogues=6))


def _true_fact(world: World, triple: Triple) -> bool:
    """Whether a recorded triple states something true of the world."""
    head = world.by_name(triple.head)
    if head is None:
        return False
    if triple.relation in METRICS:
        value, unit = triple.tail.split(" ", 1)
        row = world.financial(head.id, int(triple.date), triple.relation)
        return (
            row is not None
            and format_value(row.value, METRICS[row.metric].decimals) == value
            and row.unit == unit
        )
    for fact in world.facts_about(head.id, triple.relation):
        tail = world.entity(fact.tail) if fact.tail_is_entity else None
        tail_ok = (
            tail is not None and triple.tail in (tail.name, *tail.aliases)
            if tail
            else fact.tail == triple.tail
        )
        if tail_ok and triple.date in (None, fact.date):
            return True
    return False


def test_every_recorded_triple_is_true_and_evidenced(world: World) -> None:
    for doc in world.documents:
        for triple in world.triples(doc.id):
            assert triple.doc_id == doc.id
            assert _true_fact(world, triple), triple
            assert triple.evidence and triple.evidence in doc.text, triple
            assert triple.head_kind and triple.tail_kind


def test_articles_open_with_an_infobox_stating_the_non_prose_facts(world: World) -> None:
    for entity in world.entities:
        doc = world.document(f"world-{world.config.seed}-article-{entity.slug}")
        assert doc.text.startswith("{{Infobox ") and f"| name = {entity.name}\n" in doc.text
        stated = {(t.relation, t.tail) for t in world.triples(doc.id, ("infobox",))}
        for fact in world.facts_about(entity.id):
            tail = world.entity(fact.tail).name if fact.tail_is_entity else fact.tail
            in_box = (fact.relation, tail) in stated
            if RELATIONS[fact.relation].prose_only:
                assert not in_box, fact
            elif (
                fact.relation != "alias"
                or entity.kind != "person"
                or tail != entity.name.split()[-1]
            ):
                assert in_box, fact


def test_prose_adds_facts_absent_from_infoboxes(world: World) -> None:
    prose_relations = {t.relation for t in world.all_triples(("prose",))}
    prose_only = {r for r, spec in RELATIONS.items() if spec.prose_only}
    assert prose_only <= prose_relations
    assert not prose_only & {t.relation for t in world.all_triples(("infobox",))}


def test_infobox_only_articles_keep_the_infobox_and_drop_the_prose(world: World) -> None:
    short = build_world(
        WorldConfig(seed=5, n_people=40, n_organisations=12, n_dialogues=6, article_prose=False)
    )
    articles = [d for d in short.documents if d.meta["doc_kind"] == "article"]
    assert len(articles) == len([d for d in world.documents if d.meta["doc_kind"] == "article"])
    for doc in articles:
        full = world.document(doc.id).text
        assert doc.text.endswith("}}") and full.startswith(doc.text + "\n\n")
        assert short.triples(doc.id, ("prose",)) == []
        assert short.triples(doc.id, ("infobox",)) == world.triples(doc.id, ("infobox",))


def test_report_tables_hold_the_financial_ground_truth(world: World) -> None:
    for doc in world.documents:
        if doc.meta["doc_kind"] != "annual_report":
            continue
        company = world.entity(doc.meta["entity"])
        cells = world.triples(doc.id, ("table",))
        years = [int(y) for y in re.findall(r"\d{4}", doc.meta["years"])]
        assert len(cells) == len(METRICS) * (years[-1] - years[0] + 1)
        html = "<table>" in doc.text
        for metric, spec in METRICS.items():
            row = world.financial(company.id, years[-1], metric)
            printed = format_value(row.value, spec.decimals)
            if not html:
                printed = f"{row.value:,.{spec.decimals}f}"
            assert re.search(
                rf"{re.escape(spec.label)}(</td><td>| \| ).*{re.escape(printed)}", doc.text
            )
        assert f"Metric ({METRICS['revenue'].unit})" in doc.text


def test_some_reports_use_html_tables() -> None:
    world = build_world(WorldConfig(seed=1, n_organisations=20, html_table_fraction=0.5))
    styles = {"<table>" in d.text for d in world.documents if d.meta["doc_kind"] == "annual_report"}
    assert styles == {True, False}


def test_dialogues_are_named_lines_from_their_participants(world: World) -> None:
    low, high = world.config.dialogue_turns
    for dialogue in world.dialogues:
        doc = world.document(dialogue.doc_id)
        header, body = doc.text.split("\n\n", 1)
        names = [world.entity(p).name for p in dialogue.participants]
        assert f"Participants: {', '.join(names)}" in header
        lines = body.splitlines()
        assert low <= len(lines) == len(dialogue.turns) <= high
        lo, hi = world.config.dialogue_speakers
        assert lo <= len(set(dialogue.participants)) <= hi
        for line, turn in zip(lines, dialogue.turns, strict=True):
            label, text = line.split(": ", 1)
            assert text == turn.text and world.entity(turn.speaker).name.startswith(label)
        assert all(
            a.speaker != b.speaker for a, b in zip(dialogue.turns, dialogue.turns[1:], strict=False)
        )
        assert world.triples(doc.id), "dialogues mention world facts"


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_documents_are_not_near_duplicates(world: World) -> None:
    prose = {d.id: _shingles(d.text.split("}}", 1)[-1]) for d in world.documents}
    worst = max(
        len(a & b) / len(a | b) for (_, a), (_, b) in combinations(prose.items(), 2) if a and b
    )
    assert worst < 0.3


def test_json_round_trip(world: World, tmp_path: Path) -> None:
    path = tmp_path / "run" / "world.json"
    write_world(world, path)
    loaded = read_world(str(path))  # a str path is accepted too
    assert loaded.config == world.config
    assert loaded.documents == world.documents and loaded.facts == world.facts
    assert loaded.financials == world.financials and loaded.dialogues == world.dialogues
    assert loaded.truth == world.truth and loaded.entities == world.entities


def test_read_world_names_the_bad_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    with pytest.raises(DatasetError, match=r"none\.json: no such world file"):
        read_world(missing)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something/9"}))
    with pytest.raises(DatasetError, match=r"other.json: world format 'something/9'"):
        read_world(other)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": "qwenlong-world/1", "config": {}}))
    with pytest.raises(
        DatasetError, match=r"broken\.json: malformed world file \(KeyError: 'truth'\)"
    ):
        read_world(broken)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(DatasetError, match=r"garbage\.json: not a JSON world file"):
        read_world(garbage)
