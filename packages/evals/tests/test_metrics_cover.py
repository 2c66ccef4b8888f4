"""cover_em and sub_em: the paper's extraction plus LongBench-normalised containment."""

from __future__ import annotations

import pytest

from qwenlong.core.records import TaskSample
from qwenlong.evals.metrics import make_scorer


def sample(*answers: str) -> TaskSample:
    return TaskSample(id="s1", task_type="multihop", question="q?", answers=list(answers))


@pytest.mark.parametrize(
    ("output", "answers", "correct"),
    [
        ("r</think>Therefore, the answer is The Eiffel Tower.", ["Eiffel tower"], True),
        ("r</think>the answer is eiffel-tower", ["Eiffel Tower"], False),  # "-" fuses words
        ("r</think>The answer is Paris, France.", ["paris"], True),  # gold inside prediction
        ("r</think>The answer is Paris.", ["Paris, France"], False),  # not the reverse
        ("r</think>The answer is a party.", ["art"], True),  # characters, not words
        ("r</think>The answer is Rome.", ["Paris", "Rome"], True),  # any gold
        ("r</think>The answer is 1,234.", ["1234"], True),  # punctuation removed on both sides
        ("I think the answer is Lyon</think>The answer is Nice.", ["Lyon"], False),
    ],
)
def test_cover_em(output: str, answers: list[str], correct: bool) -> None:
    score = make_scorer("cover_em")(sample(*answers), output)
    assert score.correct is correct
    assert score.value == (1.0 if correct else 0.0)


def test_cover_em_details_name_the_extraction_and_the_match() -> None:
    score = make_scorer("cover_em")(sample("Lyon", "Rome"), "x</think>**The answer is Rome.**")
    assert score.details == {"extracted": "Rome", "matched": "Rome"}


@pytest.mark.parametrize("output", ["", "r</think>", "r</think>the answer is ?", "   "])
def test_empty_predictions_score_zero(output: str) -> None:
    for metric in ("cover_em", "sub_em"):
        assert make_scorer(metric)(sample("Paris"), output).value == 0.0


def test_empty_normalised_gold_never_matches() -> None:
    assert make_scorer("cover_em")(sample("The", "?!"), "the answer is the").value == 0.0
    assert make_scorer("sub_em")(sample("The"), "the answer is anything").value == 0.0


def test_no_gold_scores_zero() -> None:
    score = make_scorer("cover_em")(sample(), "the answer is 0")
    assert score.value == 0.0
    assert score.details["reason"] == "no gold answer"


def test_require_think_is_the_training_reward_gate() -> None:
    strict = make_scorer("cover_em", require_think=True)
    assert strict(sample("Paris"), "The answer is Paris.").value == 0.0
    assert strict(sample("Paris"), "r</think>The answer is Paris.").value == 1.0
    lenient = make_scorer("cover_em")
    assert lenient(sample("Paris"), "The answer is Paris.").value == 1.0


@pytest.mark.parametrize(
    ("output", "answers", "correct"),
    [
        ("r</think>The answer is Paris.", ["Paris, France"], True),  # prediction inside gold
        ("r</think>The answer is Paris, France.", ["Paris"], True),
        ("r</think>The answer is London.", ["Paris, France"], False),
        ("r</think>The answer is France", ["Paris", "France"], True),
    ],
)
def test_sub_em(output: str, answers: list[str], correct: bool) -> None:
    assert make_scorer("sub_em")(sample(*answers), output).correct is correct


def test_sub_em_require_think() -> None:
    assert make_scorer("sub_em", require_think=True)(sample("Paris"), "Paris").value == 0.0
