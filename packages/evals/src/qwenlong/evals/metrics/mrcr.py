"""OpenAI MRCR's grade: a prefix gate, then difflib's similarity ratio.

Source: the `grade` function on the openai/mrcr dataset card. The model must begin its answer
with the sample's random string; without it the score is 0. Otherwise the string is removed
from the start of the response and of the gold answer, and the score is
`difflib.SequenceMatcher(None, response, answer).ratio()`: default arguments, so difflib's
"autojunk" heuristic is on (when the gold has 200+ characters, characters making up more than
1% of it are matched only as extensions of matches between rarer characters). Nothing is
stripped or normalised. The ratio is computed by `sequence_ratio`, difflib's algorithm
specialised to these arguments: the same value, about 3x faster.
"""

from __future__ import annotations

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.interfaces import Score
from qwenlong.evals.metrics.common import RuleMetric, no_gold
from qwenlong.evals.metrics.sequence_ratio import sequence_ratio
from qwenlong.evals.reasoning import THINK_END

PREFIX_KEY = "prefix"
"""`TaskSample.meta` key holding MRCR's `random_string_to_prepend`."""


def mrcr_response(output: str, strip_reasoning: bool = True) -> str:
    """The response MRCR grades: after the last `</think>`, minus the newlines right after it.

    Qwen3's chat template puts "\\n\\n" between `</think>` and the answer: formatting, not
    part of the answer, and graded as is it would fail every prefix check. Removing exactly
    those newline characters (not spaces, not anything further) leaves what the model
    answered. Without `</think>` the output is used unchanged, so a leading space before the
    prefix scores 0, as officially. `strip_reasoning` False uses the output unchanged always.
    """
    cut = output.rfind(THINK_END)
    if cut < 0 or not strip_reasoning:
        return output
    return output[cut + len(THINK_END) :].lstrip("\n")


def mrcr_ratio(response: str, answer: str, prefix: str) -> float:
    """The dataset card's `grade(response, answer, random_string_to_prepend)`.

    `removeprefix` on the answer removes the prefix only where the answer starts with it, as
    officially.
    """
    if not response.startswith(prefix):
        return 0.0
    return sequence_ratio(response.removeprefix(prefix), answer.removeprefix(prefix))


class Mrcr(RuleMetric):
    """MRCR similarity (official `grade`): 0 without the random prefix, else SequenceMatcher ratio.

    The prefix comes from `sample.meta["prefix"]` (a missing key is a `DatasetError`); the gold
    is each of `sample.answers` (MRCR has one; with several the best ratio counts). Reasoning
    is removed as `mrcr_response` describes. `correct` is value == 1.0, i.e. the response
    after the prefix equals the gold after the prefix (difflib gives 1.0 for equal texts and
    below 1.0 for any difference).
    """

    strip_reasoning: bool = True
    """Grade the text after the last `</think>` (minus the newlines right after it). The
    official grade never saw reasoning (reasoning servers return it apart from the content);
    False grades the output exactly as given. Default ours."""

    def __call__(self, sample: TaskSample, output: str) -> Score:
        if PREFIX_KEY not in sample.meta:
            raise DatasetError(f"sample {sample.id!r}: MRCR needs meta[{PREFIX_KEY!r}], missing")
        prefix = sample.meta[PREFIX_KEY]
        response = mrcr_response(output, self.strip_reasoning)
        if not sample.answers:
            return no_gold(response)
        has_prefix = response.startswith(prefix)
        value = max(mrcr_ratio(response, gold, prefix) for gold in sample.answers)
        return Score(value, value == 1.0, {"extracted": response, "has_prefix": has_prefix})
