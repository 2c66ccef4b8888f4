"""DocMath-Eval's numeric comparison (official), and a strict relative-tolerance variant (ours).

Source: yale-nlp/DocMath-Eval, evaluation.py `evaluate_cot_pred_file` and
utils/evaluation_utils.py (`normalize`, `compare_two_numbers`, `within_eps`,
`round_up_to_decimal`, `get_acc`). The official pipeline asks an LLM to pull a number out of
the chain of thought; by default we use the paper's extractor instead (text after `</think>` and
after the last "answer is"), then follow the official code from the "none" check onwards. With
`extract_answer=False` the output is taken as the extracted answer itself, so an answer already
extracted by the official pipeline is graded exactly as the official code grades it.
"""

from __future__ import annotations

import math

from pydantic import Field

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.docmath_number import DocMathNumber, format_number, parse_docmath_number
from qwenlong.evals.extractors import extract_paper
from qwenlong.evals.interfaces import Score
from qwenlong.evals.metrics.common import RuleMetric, binary, no_gold

OFFICIAL_REL_TOL = 0.0015
"""`within_eps`: |gold| * 0.0015."""

_SCALE_SLIPS = ((100, 50), (1000, 500), (100000, 50000))
"""(factor, bound): the smaller value times factor may match the larger one, provided the
smaller is at most larger/bound (a percent, thousands or 1e5 slip, not a near-equal pair)."""


def _within_eps(pred: float, gt: float) -> bool:
    eps = abs(gt) * OFFICIAL_REL_TOL
    return gt - eps <= pred <= gt + eps  # two comparisons, as officially: not |pred-gt| <= eps


def _round_up(number: float, decimals: int) -> float:
    factor = 10**decimals
    return math.ceil(number * factor) / factor


def official_docmath_match(prediction: int | float, gold: float) -> bool:
    """DocMath-Eval's `compare_two_numbers`, with `get_acc`'s "any error means wrong".

    With a = max(|p|, |g|) and b = min(|p|, |g|), correct when any of these holds, in order:
    1. both nonzero and log10(a/b) is an integer: any power-of-ten ratio passes (5 vs 50, 5 vs
       0.05, and p == g), and signs are ignored throughout steps 1-3 (-5 vs 5 passes);
    2. b <= a/50 and b*100 is within 0.15% of a (percent written as a fraction, or the reverse),
       likewise b*1000 with b <= a/500 and b*100000 with b <= a/50000;
    3. a and b agree after rounding UP at 3 decimals (ceil(x*1000)/1000): 0.1231 vs 0.1239
       agree (0.124), 0.123 vs 0.1231 do not (0.123 vs 0.124);
    4. gold - eps <= p <= gold + eps with eps = 0.0015*|gold| (signed: -5 vs 5 would fail here).
    A zero on either side skips step 1; p = 0 vs gold 0 passes at step 3. Arithmetic errors
    (an infinite or NaN ratio, an int too large for a float) make the answer wrong, as the
    official try/except does. A NaN prediction is correct for every gold: max/min keep |g| for
    both a and b, so step 1 sees a ratio of 1, or for gold 0 step 2 compares 0*100 with 0
    (official behaviour, kept).
    """
    try:
        larger = max(abs(gold), abs(prediction))
        smaller = min(abs(gold), abs(prediction))
        if larger != 0 and smaller != 0:
            log_ratio = math.log10(larger / smaller)
            if int(log_ratio) == log_ratio:
                return True
        for factor, bound in _SCALE_SLIPS:
            if smaller <= larger / bound and _within_eps(smaller * factor, larger):
                return True
        if _round_up(larger, 3) == _round_up(smaller, 3):
            return True
        return _within_eps(prediction, gold)
    except (ArithmeticError, ValueError, TypeError):
        return False


def gold_number(sample: TaskSample, answer: str) -> float:
    """The gold as the official code reads it: `float(ground_truth)`."""
    try:
        return float(answer)
    except ValueError:
        raise DatasetError(
            f"sample {sample.id!r}: DocMath gold answer {answer!r} is not a number"
        ) from None


def _parse_answer(output: str, extract: bool) -> tuple[str | None, DocMathNumber | None]:
    """The answer (paper-extracted, or the output itself) and its DocMath number; None for no
    answer or "none"."""
    extracted = extract_paper(output) if extract else output
    if extracted is None or "none" in extracted.lower():
        return extracted, None
    return extracted, parse_docmath_number(extracted)


def _details(extracted: str | None, parsed: DocMathNumber | None, correct: bool) -> dict:
    number = None
    if parsed is not None and parsed.outcome == "number" and parsed.value is not None:
        number = format_number(parsed.value)
    outcome = "none" if parsed is None else parsed.outcome
    return {"extracted": extracted, "number": number, "outcome": outcome, "correct": correct}


class _DocMathMetric(RuleMetric):
    """What both DocMath metrics share: where the answer string comes from."""

    extract_answer: bool = True
    """Take the answer with the `paper` extractor (after `</think>`, after the last "answer
    is"), standing in for the official GPT extraction from a chain of thought. False: the
    output already is the extracted answer, compared as the official code compares it, quirks
    included (an empty answer normalises to "0" and matches a gold of 0). Default ours."""


class DocMath(_DocMathMetric):
    """DocMath-Eval accuracy (official comparison, paper extraction).

    Steps: `paper` extractor; no answer, or an answer containing "none" anywhere
    (case-insensitive: "None", "nonetheless"), scores 0; DocMath normalisation to a number
    (`qwenlong.evals.docmath_number`: "$1,234 million" -> 1234, "12%" -> 12, "yes" -> 1);
    non-numbers (tuples like "1,2", option letters) are wrong; text the official `eval` cannot
    evaluate is compared as 0, so it is right exactly when the gold is 0; numbers are compared
    by `official_docmath_match` with gold = float(answer). The official scorer has one gold per
    question; with several, any match counts. `details["outcome"]` is number, non_number,
    unparsed, or none (no answer or a "none" answer).

    QwenLong-L1's copy of this scorer differs (rounds at 2 decimals, normalises the gold too,
    extracts with a regex on "the answer is <number>"); it is not reproduced here.
    """

    def __call__(self, sample: TaskSample, output: str) -> Score:
        golds = [gold_number(sample, answer) for answer in sample.answers]
        extracted, parsed = _parse_answer(output, self.extract_answer)
        if not golds:
            return no_gold(extracted)
        correct = (
            parsed is not None
            and parsed.value is not None
            and any(official_docmath_match(parsed.value, gold) for gold in golds)
        )
        return binary(correct, **_details(extracted, parsed, correct))


class DocMathStrict(_DocMathMetric):
    """Numeric match within a relative tolerance, without DocMath's leniencies (ours).

    Same extraction, "none" rule and number parsing as `docmath`; correct iff the answer is a
    number and |p - g| <= rel_tol * |g| for some gold g. No power-of-ten, percent-slip or
    rounding leniency, signs count, and an unparsable answer is wrong (no fallback to 0).
    """

    rel_tol: float = Field(default=OFFICIAL_REL_TOL, ge=0)
    """Allowed |p - g| / |g|. Default 0.0015, the official `within_eps` tolerance; the strict
    metric itself is ours. A gold of 0 needs p == 0 exactly."""

    def __call__(self, sample: TaskSample, output: str) -> Score:
        golds = [gold_number(sample, answer) for answer in sample.answers]
        extracted, parsed = _parse_answer(output, self.extract_answer)
        if not golds:
            return no_gold(extracted)
        correct = False
        if parsed is not None and parsed.outcome == "number" and parsed.value is not None:
            correct = any(self._close(parsed.value, gold) for gold in golds)
        return binary(correct, **_details(extracted, parsed, correct))

    def _close(self, prediction: int | float, gold: float) -> bool:
        try:
            return abs(prediction - gold) <= self.rel_tol * abs(gold)
        except (ArithmeticError, TypeError):
            return False
