"""MRCR: the random-prefix gate, reasoning removal, and the SequenceMatcher ratio."""

from __future__ import annotations

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.metrics import make_scorer
from qwenlong.evals.metrics.mrcr import mrcr_ratio, mrcr_response

PREFIX = "Xq7Lm2"


def sample(answer: str) -> TaskSample:
    return TaskSample(
        id="m1",
        task_type="dialogue_memory",
        question="q",
        answers=[answer],
        meta={"prefix": PREFIX},
    )


def test_hand_worked_ratio() -> None:
    # "abcd" vs "abxd": blocks "ab" and "d", 3 matched of 8 characters -> 2 * 3 / 8
    assert mrcr_ratio(PREFIX + "abcd", PREFIX + "abxd", PREFIX) == 0.75


def test_missing_prefix_scores_zero_even_for_the_right_text() -> None:
    score = make_scorer("mrcr")(sample(PREFIX + "a poem"), "a poem")
    assert score.value == 0.0
    assert score.details["has_prefix"] is False


def test_leading_space_scores_zero() -> None:
    assert make_scorer("mrcr")(sample(PREFIX + "a poem"), " " + PREFIX + "a poem").value == 0.0


def test_exact_answer_scores_one() -> None:
    score = make_scorer("mrcr")(
        sample(PREFIX + "a poem about tapirs"), PREFIX + "a poem about tapirs"
    )
    assert score.value == 1.0
    assert score.correct


def test_prefix_is_removed_only_where_present() -> None:
    # the gold lacks the prefix: only the response loses it
    assert mrcr_ratio(PREFIX + "abcd", "abcd", PREFIX) == 1.0
    assert mrcr_ratio("abcd", "abcd", "") == 1.0


def test_reasoning_removal_drops_only_the_newlines_after_the_tag() -> None:
    assert mrcr_response("think</think>\n\n" + PREFIX + "x") == PREFIX + "x"
    assert mrcr_response("think</think>\n " + PREFIX) == " " + PREFIX
    assert mrcr_response("a</think>b</think>\nc") == "c"
    assert mrcr_response("\n" + PREFIX) == "\n" + PREFIX  # no tag: unchanged
    scorer = make_scorer("mrcr")
    assert scorer(sample(PREFIX + "x"), "plan</think>\n\n" + PREFIX + "x").value == 1.0
    assert scorer(sample(PREFIX + "x"), "plan</think>\n\n " + PREFIX + "x").value == 0.0


def test_partial_answer_is_scored_densely() -> None:
    score = make_scorer("mrcr")(sample(PREFIX + "abcd"), PREFIX + "abxd")
    assert score.value == 0.75
    assert not score.correct
    assert score.details["extracted"] == PREFIX + "abxd"


def test_missing_prefix_key_is_a_dataset_error() -> None:
    bare = TaskSample(id="m9", task_type="dialogue_memory", question="q", answers=["x"])
    with pytest.raises(DatasetError, match=r"'m9'.*prefix"):
        make_scorer("mrcr")(bare, "x")


def test_empty_response() -> None:
    assert make_scorer("mrcr")(sample(PREFIX + "abc"), "").value == 0.0
    assert make_scorer("mrcr")(sample(PREFIX + "abc"), PREFIX).value == 0.0
