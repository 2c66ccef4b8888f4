"""Which rule metric scores a sample that no benchmark owns (synthesized training data).

The paper rewards every task with cover exact match on the text after the reasoning, then a
judge where it fails (RECIPE.md section 2), with a dense 0..1 reward for dialogue-memory needles.
We follow it for text answers and refine two kinds where the rule is known to misfire: letters
of multiple choice are matched exactly, and numbers numerically. Synthesis verification and RL
rewards both call `scorer_for`, so a sample is judged the same way when it is made and when it
is trained on.
"""

from __future__ import annotations

from functools import cache

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.interfaces import Scorer
from qwenlong.evals.metrics import make_scorer

ANSWER_KIND_METRICS: dict[str, str] = {
    "text": "cover_em",
    "number": "docmath_strict",
    "choice": "longbench_v2",
    "sequence": "mrcr",
}
"""answer_kind -> METRICS name. Numbers are compared as numbers within a relative tolerance:
cover-EM's normalisation deletes the decimal point ("1234.5" would match "12345"), and DocMath's
official comparison accepts a result off by a power of ten, which a reward must not."""


def metric_for(sample: TaskSample) -> str:
    """The METRICS name for `sample`'s answer kind."""
    try:
        return ANSWER_KIND_METRICS[sample.answer_kind]
    except KeyError:
        raise DatasetError(
            f"sample {sample.id}: answer_kind {sample.answer_kind!r} has no metric; "
            f"known: {', '.join(ANSWER_KIND_METRICS)}"
        ) from None


@cache
def _scorer(name: str) -> Scorer:
    return make_scorer(name)


def scorer_for(sample: TaskSample) -> Scorer:
    """The rule scorer for `sample` (shared instances; scorers are stateless)."""
    return _scorer(metric_for(sample))


def score_output(sample: TaskSample, output: str) -> float:
    """Rule score in [0, 1] of one output for `sample`."""
    return scorer_for(sample)(sample, output).value
