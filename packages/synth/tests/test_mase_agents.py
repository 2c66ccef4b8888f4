"""MASE agents: robust JSON finding, proposal validation per form, option shuffling, prompts."""

from __future__ import annotations

import json
import random

import pytest

from qwenlong.core.records import Document
from qwenlong.evals.prompts import build_messages
from qwenlong.synth.mase.agents import (
    FORMS,
    InvalidProposal,
    Slot,
    find_json_object,
    parse_proposal,
)
from qwenlong.synth.mase.clusters import DocumentCluster
from qwenlong.synth.mase.prompts import (
    EVOLVE_INSTRUCTION,
    TASKS,
    HistoryItem,
    proposer_messages,
)

DOCS = (
    Document(id="d1", text="Ada Lovelace founded Harlow Works.", title="Harlow Works"),
    Document(id="d2", text="Harlow Works made looms.", title=""),
)
CLUSTER = DocumentCluster("cluster-x", DOCS, "general", ("Harlow Works",))
SHORT = Slot(CLUSTER, TASKS.get("viewpoint"), FORMS.get("short"))
MC = Slot(CLUSTER, TASKS.get("icl"), FORMS.get("mc"))
OBJECT = {"question": "Who founded it?", "answer": "Ada Lovelace", "evidence": "line 1"}


@pytest.mark.parametrize(
    "reply",
    [
        json.dumps(OBJECT),
        f"Here you go:\n```json\n{json.dumps(OBJECT)}\n```\nGood luck.",
        f"```\n{json.dumps(OBJECT)}\n```",
        f"Sure! {json.dumps(OBJECT)} Hope that helps {{not json}}",
        f'{{"draft": 1}} then the real one {json.dumps(OBJECT)}',
        f'Thinking {{"question": "decoy", "answer": "x"}}</think>\n{json.dumps(OBJECT)}',
    ],
    ids=["bare", "fenced-json", "fenced-plain", "prose", "question-key-wins", "after-think"],
)
def test_find_json_object_in_messy_replies(reply: str) -> None:
    assert find_json_object(reply) == OBJECT


def test_find_json_object_without_any_object() -> None:
    assert find_json_object("I cannot do that. {broken: json") is None
    assert find_json_object('{"only": "other keys"}') == {"only": "other keys"}


def test_short_answer_proposal() -> None:
    proposal = parse_proposal(json.dumps(OBJECT), SHORT, 2, max_answer_words=5)
    assert (proposal.question, proposal.answer, proposal.choices) == (
        "Who founded it?",
        "Ada Lovelace",
        (),
    )
    assert (proposal.round, proposal.evidence) == (2, "line 1")
    assert proposal.history_item() == HistoryItem("Who founded it?", "Ada Lovelace")


def test_numeric_short_answer_becomes_text() -> None:
    reply = json.dumps({"question": "How many looms?", "answer": 42})
    assert parse_proposal(reply, SHORT, 1, 5).answer == "42"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("no object at all", "no_json"),
        (json.dumps({"answer": "x"}), "no_question"),
        (json.dumps({"question": "  ", "answer": "x"}), "no_question"),
        (json.dumps({"question": "Q?", "answer": "?!"}), "no_answer"),
        (
            json.dumps({"question": "Q?", "answer": "one two three four five six"}),
            "answer_too_long",
        ),
    ],
)
def test_short_answer_rejections(reply: str, reason: str) -> None:
    with pytest.raises(InvalidProposal) as caught:
        parse_proposal(reply, SHORT, 1, max_answer_words=5)
    assert caught.value.reason == reason


def _mc(choices: object, answer: object) -> str:
    return json.dumps({"question": "Which?", "choices": choices, "answer": answer})


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("C", "C"),
        ("(b)", "B"),
        ("D) looms", "D"),
        ("B.", "B"),
        ("Ada Lovelace", "A"),
        ("looms.", "D"),
        ("A quiet harbour", "C"),
    ],
)
def test_choice_answer_as_letter_or_option_text(answer: str, letter: str) -> None:
    reply = _mc(["A. Ada Lovelace", "(B) Tomas", "C: A quiet harbour", "looms"], answer)
    proposal = parse_proposal(reply, MC, 1, 5)
    assert proposal.choices == ("Ada Lovelace", "Tomas", "A quiet harbour", "looms")
    assert proposal.answer == letter


@pytest.mark.parametrize(
    ("choices", "answer", "reason"),
    [
        (["a", "b", "c"], "A", "bad_choices"),
        (["x", "y", "z", "X"], "A", "bad_choices"),
        (["w", "x", "y", 4], "A", "bad_choices"),
        (["w", "x", "y", "z"], "", "no_answer"),
        (["w", "x", "y", "z"], "E", "answer_not_an_option"),
    ],
)
def test_choice_rejections(choices: object, answer: str, reason: str) -> None:
    with pytest.raises(InvalidProposal) as caught:
        parse_proposal(_mc(choices, answer), MC, 1, 5)
    assert caught.value.reason == reason


def test_shuffle_keeps_the_right_option_right() -> None:
    proposal = parse_proposal(_mc(["w", "x", "y", "z"], "C"), MC, 1, 5)
    letters = set()
    for seed in range(20):
        shuffled = proposal.shuffled(random.Random(seed))
        assert sorted(shuffled.choices) == ["w", "x", "y", "z"]
        assert shuffled.choices["ABCD".index(shuffled.answer)] == "y"
        letters.add(shuffled.answer)
    assert letters == set("ABCD")
    assert proposal.history_item().answer == "y"


def test_solver_sample_is_read_like_an_eval_sample() -> None:
    proposal = parse_proposal(_mc(["w", "x", "y", "z"], "B"), MC, 1, 5)
    sample = proposal.solver_sample()
    prompt = build_messages(sample)[0]["content"]
    assert "Document 1:\nAda Lovelace founded Harlow Works." in prompt
    assert "(B) x" in prompt and "The correct answer is" in prompt
    assert sample.provenance.source_documents == ["d1", "d2"]
    assert (sample.task_type, sample.answer_kind) == ("mc", "choice")


def test_proposer_prompt_parts() -> None:
    [first] = proposer_messages(DOCS, TASKS.get("viewpoint"), SHORT.form.instruction, [], 7)
    text = first["content"]
    assert '<document index="1" title="Harlow Works">' in text
    assert '<document index="2" title="d2">' in text  # untitled: the id stands in
    assert "viewpoint analysis" in text and "at most 7 words" in text
    assert EVOLVE_INSTRUCTION not in text
    history = [HistoryItem("Who founded Harlow Works?", "Ada Lovelace")]
    [later] = proposer_messages(DOCS, TASKS.get("icl"), MC.form.instruction, history, 7)
    assert "1. Question: Who founded Harlow Works?\n   Answer: Ada Lovelace" in later["content"]
    assert EVOLVE_INSTRUCTION in later["content"]
    assert '"choices"' in later["content"]
    assert later["content"].endswith("with no text before or after it.")
