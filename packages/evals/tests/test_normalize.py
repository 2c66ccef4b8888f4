"""LongBench-v1 normalisation, on hand-worked strings."""

from __future__ import annotations

import pytest

from qwenlong.evals.normalize import normalize_answer, normalized_tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("An apple a day", "apple day"),
        ("  Multiple \t spaces\n", "multiple spaces"),
        ("A.B.C.", "abc"),  # punctuation goes first, so "a.b.c." fuses into one word
        ("the-end", "theend"),  # "-" removed before articles: "theend" is not an article
        ("the end", "end"),
        ("Théâtre", "théâtre"),  # non-ASCII letters are lowered, not dropped
        ("“quoted”", "“quoted”"),  # curly quotes are not in string.punctuation
        ("Then, an-other thing", "then another thing"),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_articles_only_as_whole_words() -> None:
    assert normalize_answer("Theatre anthem") == "theatre anthem"
    assert normalize_answer("a an the") == ""


def test_normalized_tokens_split_on_unicode_whitespace() -> None:
    assert normalized_tokens("Paris,\u00a0France\u3000now") == ["paris", "france", "now"]
