"""The default metric of synthesized samples follows their answer kind."""

from __future__ import annotations

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.task_metrics import metric_for, score_output


def _sample(kind: str, answers: list[str], **meta: str) -> TaskSample:
    return TaskSample(
        id="s", task_type="x", question="q", answers=answers, answer_kind=kind, meta=meta
    )


def test_each_answer_kind_gets_its_metric() -> None:
    assert metric_for(_sample("text", ["Paris"])) == "cover_em"
    assert metric_for(_sample("choice", ["B"])) == "longbench_v2"
    assert metric_for(_sample("sequence", ["ab"], prefix="ab")) == "mrcr"


def test_numbers_are_not_lenient_to_powers_of_ten() -> None:
    sample = _sample("number", ["1234.5"])
    assert score_output(sample, "</think>Therefore, the answer is 1234.5.") == 1.0
    assert score_output(sample, "</think>Therefore, the answer is 12345.") == 0.0


def test_choice_and_sequence_scores() -> None:
    assert score_output(_sample("choice", ["C"]), "The correct answer is (C)") == 1.0
    assert score_output(_sample("choice", ["C"]), "The correct answer is (D)") == 0.0
    needle = _sample("sequence", ["xy hello"], prefix="xy")
    assert score_output(needle, "xy hello") == 1.0
    assert score_output(needle, "hello") == 0.0


def test_unknown_answer_kind_names_the_sample() -> None:
    with pytest.raises(DatasetError, match="sample s: answer_kind 'float'"):
        metric_for(_sample("float", ["1"]))
