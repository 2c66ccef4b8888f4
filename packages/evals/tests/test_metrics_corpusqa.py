"""CorpusQA's rule half: official extraction, then cover-EM containment."""

from __future__ import annotations

from qwenlong.core.records import TaskSample
from qwenlong.evals.metrics import make_scorer


def sample(*answers: str) -> TaskSample:
    return TaskSample(id="c1", task_type="numerical", question="q", answers=list(answers))


def test_extracts_after_the_official_marker() -> None:
    score = make_scorer("corpusqa")(sample("42.5%"), "r</think>Summing up.\nThe answer is: 42.5 %")
    assert score.correct
    assert score.details["extracted"] == "42.5 %"


def test_marker_is_case_sensitive_and_falls_back_to_the_whole_response() -> None:
    score = make_scorer("corpusqa")(sample("Acme Corp"), "r</think>the answer is: acme corp.")
    assert score.details["extracted"] == "the answer is: acme corp."
    assert score.correct  # containment still finds the gold in the whole response


def test_wrong_and_empty_answers() -> None:
    scorer = make_scorer("corpusqa")
    assert not scorer(sample("17"), "r</think>The answer is: 71").correct
    assert scorer(sample("17"), "").value == 0.0
    assert scorer(sample("17"), "The answer is: 17</think>").value == 0.0  # answer part empty


def test_reasoning_can_be_kept() -> None:
    output = "The answer is: 17</think>I am not sure."
    assert make_scorer("corpusqa", strip_reasoning=False)(sample("17"), output).correct
