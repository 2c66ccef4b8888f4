"""The METRICS registry and `make_scorer`: names, options, errors."""

from __future__ import annotations

import pytest

from qwenlong.core.errors import ConfigError
from qwenlong.core.records import TaskSample
from qwenlong.evals.interfaces import Score, Scorer
from qwenlong.evals.metrics import METRICS, make_scorer

NAMES = [
    "corpusqa",
    "cover_em",
    "docmath",
    "docmath_strict",
    "longbench_f1",
    "longbench_v2",
    "mrcr",
    "sub_em",
]


def test_every_metric_is_registered_and_builds_with_defaults() -> None:
    assert METRICS.names() == NAMES
    for name in NAMES:
        gold = "1" if name.startswith("docmath") else "A"
        meta = {"prefix": "", "dataset": ""}
        sample = TaskSample(id="r", task_type="mc", question="q", answers=[gold], meta=meta)
        scorer = make_scorer(name)
        assert isinstance(scorer, Scorer)
        score = scorer(sample, "x</think>the answer is A. The correct answer is (A)")
        assert isinstance(score, Score)
        assert 0.0 <= score.value <= 1.0
        assert "extracted" in score.details


def test_every_option_is_documented() -> None:
    for name in NAMES:
        for field_name, field in METRICS.get(name).model_fields.items():
            assert field.description, f"{name}.{field_name} has no docstring"


def test_unknown_metric_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown metric 'longbench_f'.*did you mean"):
        make_scorer("longbench_f")


def test_unknown_option_is_one_line_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as err:
        make_scorer("longbench_f1", strip_reasonng=False)
    message = str(err.value)
    assert "\n" not in message
    assert "'strip_reasonng'" in message
    assert "did you mean 'strip_reasoning'" in message


def test_bad_option_value_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"docmath_strict.*rel_tol.*greater than or equal") as err:
        make_scorer("docmath_strict", rel_tol=-0.1)
    assert "\n" not in str(err.value)


def test_scorers_are_immutable() -> None:
    scorer = make_scorer("cover_em", require_think=True)
    with pytest.raises(Exception, match="frozen"):
        scorer.require_think = False  # type: ignore[misc]
