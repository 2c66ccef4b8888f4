"""Splitting a thinking model's output into reasoning and answer."""

from __future__ import annotations

from qwenlong.evals.reasoning import (
    QWEN3_THINK_END_ID,
    answer_text,
    has_closed_reasoning,
    split_reasoning,
    split_reasoning_ids,
)


def test_split_at_the_last_closing_tag() -> None:
    text = "<think>draft </think> still thinking</think>\n\nParis"
    assert split_reasoning(text) == ("draft </think> still thinking", "\n\nParis")


def test_no_closing_tag_means_all_answer() -> None:
    assert split_reasoning("Paris.") == ("", "Paris.")
    assert split_reasoning("<think>unfinished") == ("", "<think>unfinished")
    assert not has_closed_reasoning("<think>unfinished")


def test_reasoning_without_opening_tag_is_kept_whole() -> None:
    assert split_reasoning("step 1\nstep 2</think>A") == ("step 1\nstep 2", "A")
    assert split_reasoning("\n<think>x</think>") == ("x", "")


def test_answer_text_matches_split() -> None:
    for text in ["a</think>b", "no tag", "</think>", "x</think>y</think> z"]:
        assert answer_text(text) == split_reasoning(text)[1]
    assert has_closed_reasoning("x</think>")


def test_split_ids_at_last_end_token() -> None:
    end = QWEN3_THINK_END_ID
    assert end == 151668
    assert split_reasoning_ids([1, 2, end, 3, end, 4, 5]) == ([1, 2, end, 3], [4, 5])
    assert split_reasoning_ids([1, 2, 3]) == ([], [1, 2, 3])
    assert split_reasoning_ids([9, 7], think_end_id=9) == ([], [7])
    assert split_reasoning_ids([]) == ([], [])
