"""File-level scoring and extraction for `qwenlong eval score|extract`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.evals.score_files import extract_jsonl, score_jsonl


def write(path: Path, *lines: object) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
        encoding="utf-8",
    )
    return path


def test_scores_each_line_and_skips_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.jsonl",
        {"id": "q1", "prediction": "r</think>The answer is Paris.", "answers": ["Paris"]},
        "",
        {"prediction": "The answer is Rome", "answers": ["Paris", "Lyon"]},
    )
    results = list(score_jsonl("cover_em", path))
    assert results == [
        {
            "line": 1,
            "id": "q1",
            "score": 1.0,
            "correct": True,
            "extracted": "Paris",
            "matched": "Paris",
        },
        {"line": 3, "score": 0.0, "correct": False, "extracted": "Rome", "matched": None},
    ]


def test_numeric_answers_become_strings_like_python_str(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl",
        {"prediction": "the answer is 50", "answers": [5]},
        {"prediction": "the answer is 0.1", "answers": [0.1]},
        {"prediction": "the answer is 12", "answers": [12.0]},
    )
    assert [r["correct"] for r in score_jsonl("docmath", path)] == [True, True, True]
    path = write(tmp_path / "c.jsonl", {"prediction": "the answer is 12.0", "answers": [12.0]})
    assert next(score_jsonl("cover_em", path))["correct"]  # gold "12.0", as str(12.0)


def test_metric_specific_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.jsonl",
        {"prediction": "PFXabcd", "answers": ["PFXabxd"], "prefix": "PFX"},
    )
    assert next(score_jsonl("mrcr", path))["score"] == 0.75
    path = write(
        tmp_path / "t.jsonl",
        {"prediction": "\nLocation\nmore", "answers": ["Location"], "dataset": "trec"},
    )
    assert next(score_jsonl("longbench_f1", path))["score"] == 1.0


def test_options_are_passed_to_the_metric(tmp_path: Path) -> None:
    path = write(tmp_path / "p.jsonl", {"prediction": "the answer is Paris", "answers": ["Paris"]})
    assert next(score_jsonl("cover_em", path, require_think=True))["score"] == 0.0
    with pytest.raises(ConfigError, match="unknown option"):
        score_jsonl("cover_em", path, bogus=1)


@pytest.mark.parametrize(
    ("metric", "line", "message"),
    [
        ("cover_em", {"answers": ["x"]}, r"p\.jsonl:1: missing key 'prediction'"),
        (
            "cover_em",
            {"prediction": 3, "answers": ["x"]},
            r":1: key 'prediction' must be a string, got int",
        ),
        ("cover_em", {"prediction": "x"}, r":1: missing key 'answers'"),
        (
            "cover_em",
            {"prediction": "x", "answers": "x"},
            r":1: key 'answers' must be a list, got str",
        ),
        (
            "cover_em",
            {"prediction": "x", "answers": [True]},
            r":1: answers\[0\] must be a string or a number, got bool",
        ),
        ("mrcr", {"prediction": "x", "answers": ["x"]}, r":1: missing key 'prefix'"),
        ("longbench_f1", {"prediction": "x", "answers": ["x"]}, r":1: missing key 'dataset'"),
        (
            "docmath",
            {"prediction": "5", "answers": ["five"]},
            r"p\.jsonl:1: DocMath gold answer 'five' is not a number",
        ),
        ("cover_em", "[1, 2]", r":1: expected a JSON object, got list"),
        ("cover_em", "{not json", r":1: not valid JSON"),
    ],
)
def test_bad_lines_name_file_line_and_key(
    tmp_path: Path, metric: str, line: object, message: str
) -> None:
    path = write(tmp_path / "p.jsonl", line)
    with pytest.raises(DatasetError, match=message) as err:
        list(score_jsonl(metric, path))
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot open"):
        list(score_jsonl("cover_em", tmp_path / "absent.jsonl"))


def test_extract_jsonl(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.jsonl",
        {"response": "**The correct answer is (B)**"},
        {"response": "no letter"},
    )
    assert list(extract_jsonl("longbench_v2", path)) == [
        {"line": 1, "extracted": "B"},
        {"line": 2, "extracted": None},
    ]
    numbers = write(tmp_path / "n.jsonl", {"response": "$1,234 million"})
    assert list(extract_jsonl("docmath_number", numbers)) == [{"line": 1, "extracted": "1234"}]


def test_extract_jsonl_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", {"text": "x"})
    with pytest.raises(DatasetError, match=r"r\.jsonl:1: missing key 'response'"):
        list(extract_jsonl("paper", path))
    with pytest.raises(ConfigError, match="unknown answer extractor"):
        extract_jsonl("nope", path)


def test_metric_errors_keep_the_sample_id_when_the_line_has_one(tmp_path: Path) -> None:
    path = write(tmp_path / "p.jsonl", {"id": "q7", "prediction": "5", "answers": ["five"]})
    with pytest.raises(DatasetError, match=r"p\.jsonl:1: sample 'q7': DocMath gold answer"):
        list(score_jsonl("docmath", path))


# --- raw: each official scorer on exactly the text it is given ----------------------------

RAW_CASES = [
    # (metric, line, default score, raw score, why they differ)
    (
        "longbench_f1",
        {
            "prediction": "<think>\nLyon or Paris\n</think>\n\nParis",
            "answers": ["Paris"],
            "dataset": "hotpotqa",
        },
        1.0,
        pytest.approx(2 / 7),  # the reasoning's six words count against precision
    ),
    (
        "mrcr",
        {
            "prediction": "<think>find it</think>\n\nPFXabcd",
            "answers": ["PFXabcd"],
            "prefix": "PFX",
        },
        1.0,
        0.0,  # the response does not start with the prefix
    ),
    (
        "longbench_v2",
        {
            "prediction": "<think>The correct answer is (A)? No.</think>The correct answer is (B)",
            "answers": ["B"],
        },
        1.0,
        0.0,  # the draft inside the reasoning is the first match
    ),
    (
        "corpusqa",
        {"prediction": "<think>The answer is: 3\n</think>The answer is: 12", "answers": ["12"]},
        1.0,
        0.0,  # the first "The answer is: " is inside the reasoning
    ),
    (
        "docmath",
        {"prediction": "Adding both years, the answer is 12.5 million.", "answers": [12.5]},
        1.0,
        0.0,  # a sentence is not an extracted answer: the official code cannot evaluate it
    ),
    ("docmath", {"prediction": "12.5", "answers": [12.5]}, 1.0, 1.0),
    (
        "docmath",
        {"prediction": "", "answers": [0]},
        0.0,
        1.0,  # official quirk: an empty answer normalises to "0"
    ),
    (
        "cover_em",
        {"prediction": "<think>Lyon</think>Therefore, the answer is Paris.", "answers": ["Paris"]},
        1.0,
        1.0,  # the paper's metric splits at </think> by definition
    ),
]


@pytest.mark.parametrize(("metric", "line", "default", "raw"), RAW_CASES)
def test_raw_grades_the_text_as_given(tmp_path: Path, metric, line, default, raw) -> None:
    path = write(tmp_path / "p.jsonl", line)
    assert next(score_jsonl(metric, path))["score"] == default
    assert next(score_jsonl(metric, path, raw=True))["score"] == raw


def test_raw_keeps_explicit_options(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.jsonl",
        {"prediction": "<think>x</think>Paris", "answers": ["Paris"], "dataset": "hotpotqa"},
    )
    kept = next(score_jsonl("longbench_f1", path, raw=True, strip_reasoning=True))
    assert kept["score"] == 1.0
