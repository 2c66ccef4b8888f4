"""Answer extractors: the paper's, LongBench v2's, CorpusQA's and DocMath's number."""

from __future__ import annotations

import pytest

from qwenlong.core.errors import ConfigError
from qwenlong.evals.extractors import (
    EXTRACTORS,
    extract_corpusqa,
    extract_docmath_number,
    extract_longbench_v2,
    extract_paper,
)


def test_registry_names_and_unknown_name() -> None:
    assert EXTRACTORS.names() == ["corpusqa", "docmath_number", "longbench_v2", "paper"]
    assert EXTRACTORS.get("paper") is extract_paper
    with pytest.raises(ConfigError, match="did you mean 'paper'"):
        EXTRACTORS.get("papr")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("r</think>\n\nTherefore, the answer is Paris.", "Paris"),
        ("r</think>The answer is **Marie Curie**.", "Marie Curie"),
        ("r</think>the answer **is** 42", "42"),  # `*` removed before the marker search
        ("r</think>THE ANSWER IS: Rome", "Rome"),  # case-insensitive, leading colon dropped
        ("r</think>The correct answer is (B).", "(B)"),
        ("r</think>An answer is X; the answer is Y.", "Y"),  # last marker wins
        ("r</think>the answer is\nBerlin\nbecause...", "Berlin"),  # first non-empty line
        ("r</think>Paris\nIt is the capital.", "Paris"),  # no marker: first line
        ("no reasoning tag, the answer is 7...", "7"),  # trailing periods all go
        ("the answer is A</think>\n\n  Lyon. ", "Lyon"),  # marker in reasoning is ignored
        ("r</think>the answer is 3.5.", "3.5"),
    ],
)
def test_paper_extractor(output: str, expected: str) -> None:
    assert extract_paper(output) == expected


@pytest.mark.parametrize("output", ["", "r</think>", "r</think>\n  \n", "the answer is .", "**"])
def test_paper_extractor_nothing_left(output: str) -> None:
    assert extract_paper(output) is None


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("**The correct answer is (B)**", "B"),
        ("The correct answer is C because ...", "C"),
        ("The correct answer is (A). Later: The correct answer is (D).", "A"),  # first match
        ("The correct answer is D, not The correct answer is (A)", "A"),  # parenthesised first
        ("the correct answer is (B)", None),  # case-sensitive
        ("The correct answer is (b)", None),
        ("The correct answer is (E)", None),
        ("The correct answer is: (B)", None),  # the colon breaks both patterns
        ("", None),
    ],
)
def test_longbench_v2_extractor(response: str, expected: str | None) -> None:
    assert extract_longbench_v2(response) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Reasoning...\nThe answer is: 42 million \nMore text", "42 million"),
        ("The answer is: A\nThe answer is: B", "A"),  # first match
        ("the answer is: 42", "the answer is: 42"),  # case-sensitive: whole response
        ("The answer is 42", "The answer is 42"),  # colon required
        ("  just text \n", "just text"),
        ("The answer is: \n42", ""),  # `.` does not cross the line
        ("", ""),
    ],
)
def test_corpusqa_extractor(response: str, expected: str) -> None:
    assert extract_corpusqa(response) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", "42"),
        ("-3.5", "-3.5"),
        ("$1,234.5 million", "1234.5"),
        ("12.5%", "12.5"),
        ("x = 7", "7"),
        ("approximately 3.14", "3.14"),
        ("5 or 6", "5"),
        ("1.2e5", "120000.0"),
        ("3/4", "0.75"),
        ("(2+3)*4", "20"),
        ("10^3", "1000.0"),
        ("yes", "1"),
        ("no", "0"),
        ("45°", "45"),
        ("", "0"),  # the official dummy for an empty answer
        ("1,2", None),  # a tuple, not a number
        ("(a)", None),  # an option letter
        ("Paris", None),  # eval fails
        ("1/0", None),
        ("012", None),  # Python rejects leading zeros
    ],
)
def test_docmath_number_extractor(text: str, expected: str | None) -> None:
    assert extract_docmath_number(text) == expected
