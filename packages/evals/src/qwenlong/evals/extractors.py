"""Answer extractors: the part of a model's output that a metric compares with the gold answer.

`EXTRACTORS` maps a name to `fn(text) -> str | None` (None: no answer found). The official
extractors (`longbench_v2`, `corpusqa`) reproduce their benchmark's code character for
character, including case sensitivity; `paper` is the QwenLong-L1/L1.5 convention used for
cover-EM and RL rewards; `docmath_number` is DocMath-Eval's number normalisation.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from qwenlong.core.registry import Registry
from qwenlong.evals.docmath_number import format_number, parse_docmath_number
from qwenlong.evals.reasoning import answer_text

Extractor = Callable[[str], str | None]

EXTRACTORS: Registry[Extractor] = Registry("answer extractor")

_THROUGH_LAST_MARKER = re.compile(r".*answer is", re.IGNORECASE | re.DOTALL)
_LEADING_NOISE = " \t\r\n:"


@EXTRACTORS.register("paper")
def extract_paper(text: str) -> str | None:
    """The paper's answer: the short phrase after the last "answer is" in the final answer.

    Steps, in order:
    1. keep the text after the last `</think>` (all of it when there is none);
    2. delete every `*` (markdown bold would otherwise hide the marker: "the answer **is** X");
    3. keep the text after the last case-insensitive "answer is", which covers "the answer is",
       "The correct answer is" and "Therefore, the answer is" alike (the prompt asks for the
       latter); without the marker keep the whole text;
    4. drop leading whitespace and colons ("the answer is: X"), keep the first line, strip
       whitespace, then trailing periods, then whitespace again.

    Returns None when nothing is left. Differences from QwenLong-L1's own code, which does steps
    1-3 with a case-sensitive "the answer is" and returns None without it: the marker is
    case-insensitive, a missing marker keeps the whole answer, and only the first line is kept
    (L1 keeps every line after the marker). Step 4's colon removal is ours.
    """
    answer = answer_text(text).replace("*", "")
    through_marker = _THROUGH_LAST_MARKER.match(answer)  # greedy: ends at the LAST marker
    tail = answer[through_marker.end() :] if through_marker else answer
    first_line = tail.lstrip(_LEADING_NOISE).split("\n", 1)[0]
    cleaned = first_line.strip().rstrip(".").strip()
    return cleaned or None


_LBV2_PARENTHESISED = re.compile(r"The correct answer is \(([A-D])\)")
_LBV2_BARE = re.compile(r"The correct answer is ([A-D])")


@EXTRACTORS.register("longbench_v2")
def extract_longbench_v2(text: str) -> str | None:
    """LongBench v2's letter (THUDM/LongBench pred.py `extract_answer`).

    Delete every `*`, then take the first "The correct answer is (X)"; if there is none, the
    first "The correct answer is X"; X in A-D. Case-sensitive: "the correct answer is (B)"
    and "The correct answer is (b)" yield None. The search runs over all of `text`; scorers
    decide beforehand whether reasoning is included.
    """
    text = text.replace("*", "")
    match = _LBV2_PARENTHESISED.search(text) or _LBV2_BARE.search(text)
    return match.group(1) if match else None


_CORPUSQA_ANSWER = re.compile(r"The answer is: (.*)")


@EXTRACTORS.register("corpusqa")
def extract_corpusqa(text: str) -> str:
    """CorpusQA's answer (Tongyi-Zhiwen/CorpusQA src/eval.py `extract_answer`).

    The rest of the line after the first "The answer is: " (case-sensitive, colon and space
    required), stripped; without it the whole text, stripped. Never None: an empty response
    gives "".
    """
    match = _CORPUSQA_ANSWER.search(text)
    return match.group(1).strip() if match else text.strip()


@EXTRACTORS.register("docmath_number")
def extract_docmath_number(text: str) -> str | None:
    """The number DocMath-Eval's normalisation reads in `text`, as a decimal string.

    See `qwenlong.evals.docmath_number`. None when the official code would not obtain a number:
    text it cannot evaluate (which it then compares as 0; the `docmath` metric does the same)
    and values that are not numbers (tuples, option letters). "yes"/"no" give "1"/"0".
    """
    parsed = parse_docmath_number(text)
    if parsed.outcome != "number" or parsed.value is None:
        return None
    return format_number(parsed.value)
