"""Rule triple extractor: hand-worked inputs, and precision/recall on the fictional world."""

from __future__ import annotations

import pytest

from qwenlong.core.records import Document
from qwenlong.synth.extract import (
    RuleTripleExtractor,
    normalise_date,
    normalise_relation,
    normalise_value,
    parse_tables,
)
from qwenlong.synth.extract.rule import infobox_triples, prose_triples
from qwenlong.synth.extract.tables import table_triples
from qwenlong.synth.interfaces import TripleExtractor
from qwenlong.synth.world import World, WorldConfig, build_world, score_extraction


def _doc(text: str, **kw: object) -> Document:
    return Document(id="d1", text=text, **kw)  # type: ignore[arg-type]


def _facts(triples: list) -> set[tuple]:
    return {(t.head, t.relation, t.tail, t.date) for t in triples}


@pytest.mark.parametrize(
    ("label", "expected"),
    [("Place of birth", "birth_place"), ("R&D spend", "rd_spend"), ("Operating income", "operating_income"),
     ("other_names", "alias"), ("Founded by", "founder"), ("Head's office", "heads_office")],
)  # fmt: skip
def test_normalise_relation(label: str, expected: str) -> None:
    assert normalise_relation(label) == expected


def test_normalise_values() -> None:
    assert normalise_date("12 April 1961") == "1961-04-12"
    assert normalise_date("April 2, 1961") == "1961-04-02"
    assert normalise_date("1961-04-12") == "1961-04-12"
    assert normalise_date("Korvia") is None
    assert normalise_value("1,234,567.5") == "1234567.5"
    assert normalise_value("1,228 persons") == "1228 persons"
    assert normalise_value("  Telmora   Systems ") == "Telmora Systems"


def test_wiki_style_infobox() -> None:
    text = """Intro.
{{Infobox officeholder
| name = [[Ada Lovar|Ada Q. Lovar]]
| image = Ada.jpg
| birth_date = {{birth date and age|1950|3|7}}
| birth_place = [[Pellmoor]], [[Vesh]]
| spouse = Tam Orri (m. 1975)<br>Ren Ulo (m. 1990)
| alma_mater = {{ubl|Corvane College|Ostra Institute}} <!-- two -->
| employer = Quell Works (since 1980)
}}
Rest."""
    got = infobox_triples(_doc(text))
    assert _facts(got) == {
        ("Ada Q. Lovar", "birth_date", "1950-03-07", None),
        ("Ada Q. Lovar", "birth_place", "Pellmoor, Vesh", None),
        ("Ada Q. Lovar", "spouse", "Tam Orri", "1975"),
        ("Ada Q. Lovar", "spouse", "Ren Ulo", "1990"),
        ("Ada Q. Lovar", "education", "Corvane College", None),
        ("Ada Q. Lovar", "education", "Ostra Institute", None),
        ("Ada Q. Lovar", "employer", "Quell Works", "1980"),
    }
    assert {t.head_kind for t in got} == {"person"}
    assert {t.tail_kind for t in got if t.relation == "birth_date"} == {"value"}


def test_infobox_without_name_uses_the_document_subject() -> None:
    got = infobox_triples(_doc("{{Infobox company\n| founded = 1901\n}}", title="Brask Mills"))
    assert _facts(got) == {("Brask Mills", "founded", "1901", None)}
    assert got[0].head_kind == "organisation"


def test_markdown_metric_table_uses_subject_units_and_years() -> None:
    text = """Table 1: Results

| Metric (USD million) | 2021 | 2022 |
|---|---:|---:|
| Revenue | 1,200.5 | 1,310.0 |
| Employees (persons) | 3,100 | - |
"""
    got = table_triples(_doc(text, meta={"subject": "Telmora"}))
    assert _facts(got) == {
        ("Telmora", "revenue", "1200.5 USD million", "2021"),
        ("Telmora", "revenue", "1310.0 USD million", "2022"),
        ("Telmora", "employees", "3100 persons", "2021"),
    }


def test_metric_table_without_a_subject_states_nothing() -> None:
    text = "| Metric | 2021 |\n|---|---|\n| Revenue | 5 |\n"
    assert table_triples(_doc(text)) == []
    assert len(table_triples(_doc(text, title="Vask"))) == 1


def test_html_entity_rows_and_attribute_tables() -> None:
    text = """<table><caption>Revenue</caption>
<tr><th>Revenue (USD million)</th><th>2020</th></tr>
<tr><td>Telmora</td><td>812.0</td></tr>
<tr><td>Vask<br>Group</td><td>90.5</td></tr></table>
<table><tr><th>City</th><th>Country</th><th>Population</th></tr>
<tr><td>Korvia</td><td>Dremene</td><td>184,320</td></tr></table>"""
    tables = parse_tables(text)
    assert [t.caption for t in tables] == ["Revenue", ""]
    assert _facts(table_triples(_doc(text))) == {
        ("Telmora", "revenue", "812.0 USD million", "2020"),
        ("Vask Group", "revenue", "90.5 USD million", "2020"),
        ("Korvia", "country", "Dremene", None),
        ("Korvia", "population", "184320", None),
    }


def test_prose_patterns_and_pronouns() -> None:
    text = (
        "Ada Lovar was born in Pellmoor on 7 March 1950. She works for Quell Works since 1980. "
        "Born in Vesh, Ren Ulo spent a quiet childhood there. Quell Works was founded in 1901 by "
        "Tam Orri. The capital of Vesh is Pellmoor. Ostra is a city in the Amber Republic."
    )
    got = prose_triples(_doc(text, title="Ada Lovar"))
    assert _facts(got) == {
        ("Ada Lovar", "birth_place", "Pellmoor", None),
        ("Ada Lovar", "birth_date", "1950-03-07", None),
        ("Ada Lovar", "employer", "Quell Works", "1980"),
        ("Quell Works", "founded", "1901", None),
        ("Quell Works", "founder", "Tam Orri", None),
        ("Vesh", "capital", "Pellmoor", None),
        ("Ostra", "country", "the Amber Republic", None),
    }


def test_dialogue_speaker_labels_are_not_subjects() -> None:
    text = "Meeting\n\nAda: Quell Works is headquartered in Pellmoor.\nRen: Sounds good."
    got = prose_triples(_doc(text, domain="dialogue"))
    assert _facts(got) == {("Quell Works", "headquarters", "Pellmoor", None)}


def test_extractor_protocol_order_and_switches() -> None:
    extractor: TripleExtractor = RuleTripleExtractor()  # type-checks against the protocol
    assert extractor.name == "rule"
    docs = [_doc("{{Infobox person\n| name = A B\n| occupation = lawyer\n}}\nA B works for C D.")]
    docs.append(Document(id="d2", text="Nothing here."))
    out = extractor.extract(docs)
    assert [len(x) for x in out] == [2, 0]
    assert len(RuleTripleExtractor(prose=False).extract(docs)[0]) == 1


@pytest.fixture(scope="module", params=[0, 7, 21])
def world(request: pytest.FixtureRequest) -> World:
    return build_world(
        WorldConfig(seed=request.param, n_people=80, n_organisations=16, n_events=12)
    )


def _score(world: World, part: str, extract) -> object:
    predicted = [t for doc in world.documents for t in extract(doc)]
    return score_extraction(predicted, world.all_triples((part,)), with_date=True)


def test_infobox_precision_and_recall_on_the_world(world: World) -> None:
    score = _score(world, "infobox", infobox_triples)
    print(f"seed {world.config.seed} infobox: {score}")
    assert score.expected > 500
    assert score.precision >= 0.95 and score.recall >= 0.95


def test_table_precision_and_recall_on_the_world(world: World) -> None:
    score = _score(world, "table", table_triples)
    print(f"seed {world.config.seed} tables: {score}")
    assert score.precision >= 0.95 and score.recall >= 0.95


def test_prose_pattern_figures_on_the_world(world: World) -> None:
    """Patterns are precise but cover only some of the prose templates (recall ~0.2-0.35)."""
    score = _score(world, "prose", prose_triples)
    articles = [d for d in world.documents if d.meta["doc_kind"] == "article"]
    in_articles = score_extraction(
        [t for d in articles for t in prose_triples(d)],
        [t for d in articles for t in world.triples(d.id, ("prose",))],
    )
    print(f"seed {world.config.seed} prose: {score}; articles only: {in_articles}")
    assert score.precision >= 0.95
    assert 0.1 <= score.recall < 0.9
