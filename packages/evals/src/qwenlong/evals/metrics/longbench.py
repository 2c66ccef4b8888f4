"""LongBench's official metrics: v1 QA F1 and v2 multiple-choice accuracy.

Sources: THUDM/LongBench, LongBench/metrics.py (`normalize_answer`, `f1_score`, `qa_f1_score`)
and LongBench/eval.py (`scorer`) for v1; pred.py (`extract_answer`, the `judge` field) and
result.py for v2.
"""

from __future__ import annotations

from collections import Counter

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.extractors import extract_longbench_v2
from qwenlong.evals.interfaces import Score
from qwenlong.evals.metrics.common import RuleMetric, binary, no_gold, prediction_text
from qwenlong.evals.normalize import normalized_tokens

FIRST_LINE_DATASETS = frozenset({"trec", "triviaqa", "samsum", "lsht"})
"""LongBench v1 datasets whose prediction is cut to its first line before scoring (eval.py)."""


GOLD_LETTERS = frozenset("ABCD")
"""The options of a LongBench v2 question."""


def token_f1(prediction_tokens: list[str], gold_tokens: list[str]) -> float:
    """F1 of the multiset overlap; 0 when nothing is shared (also when either side is empty)."""
    shared = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(prediction_tokens)
    recall = shared / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_f1(prediction: str, gold: str) -> float:
    """LongBench's `qa_f1_score`: token F1 after LongBench normalisation of both sides.

    No yes/no/noanswer special case (HotpotQA's own scorer has one; LongBench's does not).
    """
    return token_f1(normalized_tokens(prediction), normalized_tokens(gold))


def first_line(prediction: str) -> str:
    """eval.py's cut for trec/triviaqa/samsum/lsht: drop leading newlines, keep the first line.

    Only "\\n" counts: leading spaces are kept and a "\\r" stays part of the line.
    """
    return prediction.lstrip("\n").split("\n", 1)[0]


class LongBenchF1(RuleMetric):
    """LongBench v1 QA F1 (official): max over gold answers of token F1, per item.

    The official scorer reads the raw prediction: no answer extraction, so a model that writes
    "The answer is Paris." loses precision for "The answer is". For the datasets trec, triviaqa,
    samsum and lsht (`sample.meta["dataset"]`, exact lower-case names) the prediction is first
    cut to its first line; a sample without a dataset gets no cut. This metric computes
    qa_f1 whatever the dataset: the official code scores trec/lsht by classification, samsum by
    ROUGE and the Chinese sets with jieba tokens, so its value matches the official one only on
    the English QA sets (narrativeqa, qasper, multifieldqa_en, hotpotqa, 2wikimqa, musique,
    triviaqa). A dataset's score is 100 * mean, rounded to 2 decimals (done by the report).
    """

    strip_reasoning: bool = True
    """Score only the text after the last `</think>`. The official scorer never saw reasoning
    (its models did not emit it, and reasoning servers return it separately); grading a long
    reasoning would collapse precision. False scores the raw output. Default ours."""

    def __call__(self, sample: TaskSample, output: str) -> Score:
        prediction = prediction_text(output, self.strip_reasoning)
        if sample.meta.get("dataset", "") in FIRST_LINE_DATASETS:
            prediction = first_line(prediction)
        if not sample.answers:
            return no_gold(prediction)
        tokens = normalized_tokens(prediction)
        best = max(token_f1(tokens, normalized_tokens(gold)) for gold in sample.answers)
        return Score(best, best == 1.0, {"extracted": prediction})


class LongBenchV2(RuleMetric):
    """LongBench v2 accuracy (official): the extracted letter equals the gold letter.

    Extraction is pred.py's (see `extract_longbench_v2`: `*` deleted, then
    "The correct answer is (X)" or "The correct answer is X", case-sensitive, first match).
    The gold is `sample.answers[0]` and must be one of A-D (else `DatasetError`). No letter
    found: wrong. An empty output is wrong and flagged `details["empty_output"]`: the official
    pred.py writes nothing for an empty API reply, so such items drop out of its denominator
    (result.py divides by the items written); we keep them, and a report that wants the
    official denominator can exclude the flagged items. Whitespace-only outputs count as empty
    here (the official code would keep them, scored wrong).
    """

    strip_reasoning: bool = True
    """Search only the text after the last `</think>`: the official client reads the message
    content, which reasoning servers return without the reasoning (where a draft
    "The correct answer is (A)" would otherwise win as the first match). Default ours."""

    def __call__(self, sample: TaskSample, output: str) -> Score:
        text = prediction_text(output, self.strip_reasoning)
        empty = not text.strip()
        extracted = None if empty else extract_longbench_v2(text)
        if not sample.answers:
            return no_gold(extracted)
        gold = sample.answers[0]
        if gold not in GOLD_LETTERS:
            raise DatasetError(
                f"sample {sample.id!r}: LongBench-v2 gold answer {gold!r} is not one of A, B, C, D"
            )
        return binary(extracted == gold, extracted=extracted, empty_output=empty)
