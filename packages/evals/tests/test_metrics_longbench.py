"""LongBench v1 QA F1 and LongBench v2 accuracy, as the official scripts compute them."""

from __future__ import annotations

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.metrics import make_scorer
from qwenlong.evals.metrics.longbench import first_line, qa_f1, token_f1


def sample(answers: list[str], dataset: str = "hotpotqa") -> TaskSample:
    return TaskSample(
        id="lb", task_type="multihop", question="q", answers=answers, meta={"dataset": dataset}
    )


def test_token_f1_hand_worked() -> None:
    # shared {eiffel, tower} = 2; precision 2/4, recall 2/2; F1 = 2 * 0.5 * 1 / 1.5
    assert qa_f1("Eiffel tower in Paris", "the Eiffel Tower") == pytest.approx(2 / 3)
    assert token_f1(["a", "a", "b"], ["a", "b", "b"]) == pytest.approx(2 / 3)  # multiset
    assert token_f1([], ["a"]) == 0.0
    assert qa_f1("yes", "no") == 0.0  # no yes/no special case needed: nothing shared
    assert qa_f1("The answer: Paris!", "paris") == pytest.approx(2 * 0.5 / 1.5)


def test_articles_and_punctuation_do_not_count() -> None:
    assert qa_f1("The U.S.A.", "usa") == 1.0


def test_longbench_f1_max_over_gold_answers() -> None:
    score = make_scorer("longbench_f1")(sample(["Paris", "Eiffel Tower"]), "Eiffel Tower")
    assert score.value == 1.0
    assert score.correct


def test_first_line_rule_for_trec_but_not_hotpotqa() -> None:
    output = "\n\nLocation\nAbbreviation and more text"
    assert first_line(output) == "Location"
    trec = make_scorer("longbench_f1")(sample(["Location"], "trec"), output)
    assert trec.value == 1.0
    assert trec.details["extracted"] == "Location"
    hotpot = make_scorer("longbench_f1")(sample(["Location"], "hotpotqa"), output)
    assert hotpot.value == pytest.approx(2 * (1 / 5) / (1 + 1 / 5))  # P = 1/5, R = 1


def test_first_line_keeps_leading_spaces_and_carriage_returns() -> None:
    assert first_line(" \nx") == " "
    assert first_line("a\r\nb") == "a\r"


def test_reasoning_is_stripped_by_default_and_kept_on_request() -> None:
    output = "Let me think about Paris and Rome</think>Rome"
    assert make_scorer("longbench_f1")(sample(["Rome"]), output).value == 1.0
    raw = make_scorer("longbench_f1", strip_reasoning=False)(sample(["Rome"]), output)
    assert raw.value < 1.0


def test_longbench_f1_empty_prediction_scores_zero() -> None:
    assert make_scorer("longbench_f1")(sample(["Rome"]), "").value == 0.0


@pytest.mark.parametrize(
    ("output", "extracted", "correct"),
    [
        ("r</think>**The correct answer is (B)**", "B", True),
        ("r</think>The correct answer is B.", "B", True),
        ("r</think>the correct answer is (B)", None, False),
        ("The correct answer is (A)</think>The correct answer is (B)", "B", True),
        ("r</think>The correct answer is (C)", "C", False),
    ],
)
def test_longbench_v2(output: str, extracted: str | None, correct: bool) -> None:
    score = make_scorer("longbench_v2")(sample(["B"]), output)
    assert score.correct is correct
    assert score.details == {"extracted": extracted, "empty_output": False}


def test_longbench_v2_reads_reasoning_when_asked() -> None:
    output = "The correct answer is (A)</think>The correct answer is (B)"
    score = make_scorer("longbench_v2", strip_reasoning=False)(sample(["B"]), output)
    assert score.details["extracted"] == "A"  # first match over the whole text
    assert not score.correct


@pytest.mark.parametrize("output", ["", "r</think>", "r</think>\n\n  "])
def test_longbench_v2_empty_output_is_wrong_and_flagged(output: str) -> None:
    score = make_scorer("longbench_v2")(sample(["A"]), output)
    assert score.value == 0.0
    assert score.details["empty_output"] is True


def test_longbench_v2_rejects_a_gold_that_is_not_a_letter() -> None:
    with pytest.raises(DatasetError, match=r"'lb'.*'E'"):
        make_scorer("longbench_v2")(sample(["E"]), "The correct answer is (A)")
