"""CorpusQA's extraction with a cover-EM rule: the rule half of the paper's CorpusQA score.

Source: Tongyi-Zhiwen/CorpusQA, src/eval.py. The official score is an LLM judge's verdict on
the extracted answer ([[YES]] present and [[NO]] absent; API errors count as wrong), with no
rule at all. The paper reports max(cover-EM, judge). This metric is only the cover-EM part on
the official extraction, so on its own it is NOT the official CorpusQA score: it can only
undercount a judge (a paraphrase the judge accepts is a miss here) and, rarely, overcount one
(a hedged answer that names the gold among others). Wrap it with
`qwenlong.evals.judge.make_judged_scorer("corpusqa", judge)` for the paper's score.
"""

from __future__ import annotations

from qwenlong.core.records import TaskSample
from qwenlong.evals.extractors import extract_corpusqa
from qwenlong.evals.interfaces import Score
from qwenlong.evals.metrics.common import RuleMetric, prediction_text
from qwenlong.evals.metrics.cover import containment_score, covers


class CorpusQa(RuleMetric):
    """Cover-EM on CorpusQA's extraction: normalised gold contained in the normalised answer.

    Extraction (official): the rest of the line after the first case-sensitive
    "The answer is: ", stripped; else the whole response, stripped. Containment and
    normalisation are `cover_em`'s (LongBench-v1 normalisation, non-empty gold, any gold).
    """

    strip_reasoning: bool = True
    """Extract from the text after the last `</think>`: the official inference script stores
    the message content, which reasoning servers return without the reasoning. Default ours."""

    def __call__(self, sample: TaskSample, output: str) -> Score:
        extracted = extract_corpusqa(prediction_text(output, self.strip_reasoning))
        return containment_score(extracted, sample.answers, covers)
