"""DocMath: the official lenient comparison, its quirks, and the strict variant."""

from __future__ import annotations

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.metrics import make_scorer
from qwenlong.evals.metrics.docmath import official_docmath_match


def sample(*answers: str) -> TaskSample:
    return TaskSample(id="d1", task_type="numerical", question="q", answers=list(answers))


def answer(text: str) -> str:
    return f"Computing...</think>\n\nTherefore, the answer is {text}."


@pytest.mark.parametrize(
    ("prediction", "gold", "correct"),
    [
        ("5", "50", True),  # power-of-ten leniency: 5 vs 50
        ("5", "0.05", True),
        ("5", "51", False),
        ("0.1251", "12.5", True),  # percent slip: 0.1251 * 100 within 0.15% of 12.5
        ("12.5%", "12.5", True),  # "%" dropped, value kept
        ("-5", "5", True),  # signs ignored by the ratio test
        ("0.1231", "0.1239", True),  # equal after rounding up at 3 decimals (0.124)
        ("100.1", "100", True),  # within 0.15%
        ("100.2", "100", False),
        ("0", "0", True),
        ("0.0001", "0", False),
        ("yes", "1", True),  # booleans compare as 1 and 0
        ("$1,234 million", "1234", True),
        ("$1,234 million", "1234000000", True),  # scale word dropped, then 10**6 ratio
        ("3/4", "0.75", True),
        ("1.5 × 10^6", "1500000", True),
    ],
)
def test_official_comparison(prediction: str, gold: str, correct: bool) -> None:
    score = make_scorer("docmath")(sample(gold), answer(prediction))
    assert score.correct is correct
    assert score.details["correct"] is correct
    assert score.value == (1.0 if correct else 0.0)


@pytest.mark.parametrize("prediction", ["None", "none of the above, 5", "Nonetheless 5"])
def test_none_anywhere_scores_zero(prediction: str) -> None:
    score = make_scorer("docmath")(sample("5"), answer(prediction))
    assert score.value == 0.0
    assert score.details["outcome"] == "none"


def test_unparsable_answer_counts_as_zero() -> None:
    scorer = make_scorer("docmath")
    assert scorer(sample("0"), answer("Paris")).correct  # official fallback: eval fails -> 0
    wrong = scorer(sample("5"), answer("Paris"))
    assert not wrong.correct
    assert wrong.details == {
        "extracted": "Paris",
        "number": None,
        "outcome": "unparsed",
        "correct": False,
    }


def test_non_numbers_are_wrong_even_against_zero() -> None:
    scorer = make_scorer("docmath")
    assert not scorer(sample("1"), answer("1,2")).correct  # a tuple
    assert not scorer(sample("0"), answer("1,2")).correct
    assert not scorer(sample("0"), answer("(a)")).correct


def test_nan_prediction_passes_for_any_gold() -> None:
    # max/min keep |gold| for both sides when the prediction is NaN: the ratio test sees 1,
    # and for gold 0 the percent-slip test compares 0 * 100 with 0
    assert official_docmath_match(float("nan"), 5.0)
    assert official_docmath_match(float("nan"), -3.2)
    assert official_docmath_match(float("nan"), 0.0)
    assert make_scorer("docmath")(sample("5"), answer("math.nan")).correct


def test_overflowing_values_are_wrong() -> None:
    assert not official_docmath_match(float("inf"), 5.0)
    assert not official_docmath_match(10**400, 5.0)


def test_empty_output_and_multiple_golds() -> None:
    scorer = make_scorer("docmath")
    assert scorer(sample("5"), "").value == 0.0
    assert scorer(sample("5"), "r</think>").details["outcome"] == "none"
    assert scorer(sample("7", "5"), answer("5")).correct


def test_gold_must_be_a_number() -> None:
    with pytest.raises(DatasetError, match=r"'d1'.*'five'"):
        make_scorer("docmath")(sample("five"), answer("5"))


def test_gold_is_parsed_with_float() -> None:
    assert make_scorer("docmath")(sample(" 1_000 "), answer("1000")).correct


@pytest.mark.parametrize(
    ("prediction", "gold", "correct"),
    [
        ("5", "50", False),
        ("-5", "5", False),
        ("0.1231", "0.1239", False),
        ("100.1", "100", True),
        ("12.5%", "12.5", True),
        ("Paris", "0", False),  # no fallback to 0
        ("0", "0", True),
    ],
)
def test_strict(prediction: str, gold: str, correct: bool) -> None:
    assert make_scorer("docmath_strict")(sample(gold), answer(prediction)).correct is correct


def test_strict_tolerance_option() -> None:
    assert not make_scorer("docmath_strict")(sample("100"), answer("101")).correct
    assert make_scorer("docmath_strict", rel_tol=0.01)(sample("100"), answer("101")).correct
