"""Question wording, answer strings, and the checked LLM paraphrase."""

from __future__ import annotations

import random

import pytest

from qwenlong.core.records import Conversation
from qwenlong.core.testing import ScriptedChatModel as ScriptedModel
from qwenlong.synth.numerical.config import NumericalConfig, ParaphraseConfig
from qwenlong.synth.numerical.factdb import Scope
from qwenlong.synth.numerical.paraphrase import (
    QuestionParaphraser,
    check_paraphrase,
    clean_reply,
    has_term,
    numbers_in,
)
from qwenlong.synth.numerical.questions import (
    PHRASINGS,
    QuestionText,
    answer_strings,
    join_names,
    possessive,
    render_question,
)
from qwenlong.synth.numerical.sql_templates import SQL_TEMPLATES, Query, Slots

CONFIG = NumericalConfig()


def _query(template: str, shape: str, **slots) -> Query:
    slots.setdefault("unit", "USD million")
    slot = Slots(**slots)
    return Query(template, "easy", "SELECT 1", Scope((slot.metric,), slot.entities), shape, slot)


def test_every_template_has_phrasings_using_known_fields() -> None:
    assert set(PHRASINGS) == set(SQL_TEMPLATES.names())
    for phrasings in PHRASINGS.values():
        assert len(phrasings) >= 3
        assert len(set(phrasings)) == len(phrasings)


def test_join_names_and_possessive() -> None:
    assert join_names(["A"]) == "A"
    assert join_names(["A", "B"]) == "A and B"
    assert join_names(["A", "B", "C"]) == "A, B and C"
    assert possessive("Acme") == "Acme's"
    assert possessive("Rumel Shipping Works") == "Rumel Shipping Works'"


def test_group_question_names_every_entity_year_metric_and_unit() -> None:
    query = _query(
        "group_aggregate",
        "number",
        metric="revenue",
        entities=("Acme", "Borealis", "Cobalt"),
        years=(2021,),
        aggregate="avg",
    )
    seen = set()
    for seed in range(30):
        text = render_question(query, random.Random(seed), CONFIG)
        seen.add(text.question)
        for term in ("Acme", "Borealis", "Cobalt", "revenue", "2021", "average"):
            assert term in text.question
        assert text.instruction == (
            "Answer with a single number in USD million, rounded to 2 decimal places."
        )
        assert set(text.protected) == {"Acme", "Borealis", "Cobalt", "revenue", "2021", "average"}
    assert len(seen) == 3


def test_count_metrics_read_as_numbers_of() -> None:
    query = _query(
        "kth_ranking",
        "entity",
        metric="employees",
        entities=("A", "B", "C"),
        years=(2022,),
        direction="lowest",
        k=2,
        unit="persons",
    )
    text = render_question(query, random.Random(0), CONFIG)
    assert "second lowest number of employees" in text.question
    assert "number of employees" in text.protected and "second" in text.protected
    assert text.instruction == "Answer with the name of the company only."


def test_filter_question_states_threshold_with_unit_and_list_format() -> None:
    query = _query(
        "filter_every_between",
        "entities",
        metric="net income",
        entities=("A", "B", "C"),
        years=(2019, 2022),
        direction="below",
        threshold="1.5",
    )
    text = render_question(query, random.Random(1), NumericalConfig(entity_noun=("firm", "firms")))
    assert "below 1.5 USD million" in text.question
    assert "2019" in text.question and "2022" in text.question
    assert text.instruction == (
        "Answer with the names of the firms in alphabetical order, separated by commas, "
        'or with "none" if no firm qualifies.'
    )
    assert {"1.5", "below", "USD million", "net income"} <= set(text.protected)


@pytest.mark.parametrize(
    ("template", "number", "unit", "decimals", "instruction"),
    [
        (
            "year_difference",
            "amount",
            "USD million",
            2,
            "Answer with a single number in USD million, rounded to 2 decimal places. "
            "Use a negative number for a decrease.",
        ),
        (
            "entity_ratio",
            "ratio",
            "USD million",
            3,
            "Answer with a single number, rounded to 3 decimal places.",
        ),
        (
            "group_change",
            "percent",
            "USD million",
            0,
            "Answer with a single number (a percentage, without the % sign), rounded to a whole "
            "number. Use a negative number for a decrease.",
        ),
        (
            "entity_years",
            "amount",
            "%",
            2,
            "Answer with a single number in percent, rounded to 2 decimal places.",
        ),
        (
            "entity_years",
            "amount",
            "",
            1,
            "Answer with a single number, rounded to 1 decimal places.",
        ),
    ],
)
def test_numeric_instructions(template, number, unit, decimals, instruction) -> None:
    query = _query(
        template,
        "number",
        metric="revenue",
        entities=("A", "B"),
        years=(2020, 2021),
        number=number,
        unit=unit,
        aggregate="sum",
    )
    text = render_question(query, random.Random(0), NumericalConfig(decimals=decimals))
    assert text.instruction == instruction


def test_answer_strings_by_shape() -> None:
    number = _query("group_aggregate", "number", metric="m", entities=("A",), years=(2020,))
    assert answer_strings(number, [(1234.5678,)], 2) == ["1234.57"]
    assert answer_strings(number, [(None,)], 2) is None
    assert answer_strings(number, [(float("inf"),)], 2) is None
    assert answer_strings(number, [(float("nan"),)], 2) is None
    entity = _query("top_entity", "entity", metric="m", entities=("A",), years=(2020,))
    assert answer_strings(entity, [("Acme",)], 2) == ["Acme"]
    assert answer_strings(entity, [], 2) is None
    listed = _query("filter_any_after", "entities", metric="m", entities=("A",), years=(2020,))
    assert answer_strings(listed, [("Cobalt",), ("Acme",)], 2) == ["Acme, Cobalt"]
    assert answer_strings(listed, [], 2) == ["none"]


# --- paraphrase -----------------------------------------------------------------------------


def test_numbers_in_and_has_term() -> None:
    assert numbers_in("In 2021 revenue passed 1,200.5 and 7") == {"2021", "1200.5", "7"}
    assert has_term("Which of ACME, Borealis...", "Acme")
    assert not has_term("Acmeville grew", "Acme")
    assert has_term("the R&D spending of X", "R&D spending")


ORIGINAL = "Among Acme, Borealis and Cobalt, which company had the second highest revenue in 2021?"
PROTECTED = ("Acme", "Borealis", "Cobalt", "revenue", "2021", "second", "highest")


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ("In 2021, which of Acme, Borealis and Cobalt ranked second highest by revenue?", None),
        ("", "empty"),
        (
            "In 2021, which of Acme, Borealis and Cobalt ranked 2nd highest by revenue?",
            "dropped a protected term",
        ),
        (
            "Which of Acme, Borealis and Cobalt had the second highest revenue?",
            "dropped a protected term",
        ),
        (
            "In 2021, which of Acme, Borealis and Cobalt had the second highest revenue (110)?",
            "new number",
        ),
        (ORIGINAL + " " + ORIGINAL + " " + ORIGINAL, "too long"),
    ],
)
def test_check_paraphrase(candidate: str, reason: str | None) -> None:
    assert check_paraphrase(ORIGINAL, candidate, PROTECTED, 2.5) == reason


def test_clean_reply_strips_reasoning_labels_and_quotes() -> None:
    assert clean_reply('<think>hmm</think>\n\nQuestion: "Which one?"\nextra') == "Which one?"
    assert clean_reply("Reworded question: Which one?") == "Which one?"


def test_paraphraser_keeps_good_rewrites_and_counts_rejections() -> None:
    good = QuestionText(ORIGINAL, "", PROTECTED)
    bad = QuestionText("What was Acme's revenue in 2021?", "", ("Acme", "revenue", "2021"))
    rewrites = {
        ORIGINAL: "In 2021, which of Acme, Borealis and Cobalt ranked second highest by revenue?",
        bad.question: "Acme's revenue in 2021 was 110, right?",
    }

    def reply(conversation: Conversation) -> str:
        content = conversation[-1]["content"]
        question = content.split("Question: ", 1)[1].split("\n", 1)[0]
        assert '"Acme"' in content  # the protected terms are listed for the model
        return rewrites[question]

    model = ScriptedModel(reply)
    paraphraser = QuestionParaphraser(model, ParaphraseConfig(), seed=3)
    assert paraphraser.paraphrase([good, bad]) == [rewrites[ORIGINAL], None]
    assert len(model.calls) == 1 and len(model.calls[0]) == 2  # one batched call
    assert paraphraser.stats.asked == 2 and paraphraser.stats.accepted == 1
    assert paraphraser.stats.rejected == {"new number": 1}
    assert paraphraser.paraphrase([]) == []
