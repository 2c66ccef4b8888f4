"""The paper's rule metrics: cover exact match and QwenLong-L1's sub exact match.

Source: QwenLong-L1/L1.5 (paper/scorers.md, "The paper's own metric"; QwenLong-L1's
verl/utils/reward_score/docqa.py `sub_em` for the two-way variant). Both extract the answer
with the `paper` extractor and compare LongBench-v1-normalised strings.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable

from qwenlong.core.records import TaskSample
from qwenlong.evals.extractors import extract_paper
from qwenlong.evals.interfaces import Score
from qwenlong.evals.metrics.common import RuleMetric, binary, no_gold
from qwenlong.evals.normalize import normalize_answer
from qwenlong.evals.reasoning import has_closed_reasoning


def covers(prediction: str, gold: str) -> bool:
    """Cover-EM's test on normalised strings: the gold is a substring of the prediction."""
    return gold in prediction


def covers_either_way(prediction: str, gold: str) -> bool:
    """Sub-EM's test on normalised strings: either one is a substring of the other."""
    return gold in prediction or prediction in gold


def containment_score(
    extracted: str | None,
    answers: list[str],
    contains: Callable[[str, str], bool],
) -> Score:
    """1 if `contains(normalized prediction, normalized gold)` for some non-empty gold, else 0.

    A None or normalised-empty prediction scores 0 (it cannot contain a non-empty gold, and we
    do not let it sit "inside" every gold either). `details["matched"]` is the first gold that
    matched.
    """
    if not answers:
        return no_gold(extracted)
    prediction = normalize_answer(extracted) if extracted is not None else ""
    if prediction:
        for gold in answers:
            normalized_gold = normalize_answer(gold)
            if normalized_gold and contains(prediction, normalized_gold):
                return binary(True, extracted=extracted, matched=gold)
    return binary(False, extracted=extracted, matched=None)


class _PaperContainment(RuleMetric):
    """The `paper` extractor, then a containment test on normalised strings (`contains`)."""

    require_think: bool = False
    """Score 0 when the output has no `</think>`: QwenLong-L1's training reward does this (an
    unfinished reasoning has no answer). False for evaluation, where a non-thinking model's
    whole output is its answer. Default ours."""

    @abstractmethod
    def contains(self, prediction: str, gold: str) -> bool:
        """Whether normalised `prediction` counts as containing normalised `gold`."""

    def __call__(self, sample: TaskSample, output: str) -> Score:
        if self.require_think and not has_closed_reasoning(output):
            return binary(False, extracted=None, matched=None, reason="no </think>")
        return containment_score(extract_paper(output), sample.answers, self.contains)


class CoverEm(_PaperContainment):
    """Cover exact match (the paper's rule): the normalised gold occurs in the normalised answer.

    Steps: `paper` extractor (text after the last `</think>`, then after the last "answer is",
    first line, `*` and trailing periods removed); LongBench-v1 normalisation of both sides
    (lower-case, ASCII punctuation and the articles a/an/the removed, spaces squashed); correct
    iff some gold answer, normalised and non-empty, is a substring of the normalised prediction.
    Substring means characters, not words: gold "art" is covered by "party". The paper's score
    is max(this, LLM judge); the judge is added by `qwenlong.evals.judge`.
    """

    def contains(self, prediction: str, gold: str) -> bool:
        return covers(prediction, gold)


class SubEm(_PaperContainment):
    """QwenLong-L1's sub exact match: gold inside the prediction, or the prediction inside the gold.

    Same extraction and normalisation as `cover_em`. Empty predictions score 0: QwenLong-L1
    never scores a missing answer, but one that normalises to nothing (say "?") would sit
    inside every gold string there and score 1; here it scores 0. Empty golds never match.
    With `require_think=True` this is QwenLong-L1's training reward, before its judge.
    """

    def contains(self, prediction: str, gold: str) -> bool:
        return covers_either_way(prediction, gold)
