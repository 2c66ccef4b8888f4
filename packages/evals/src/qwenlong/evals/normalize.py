"""LongBench-v1 answer normalisation, shared by cover-EM, sub-EM, CorpusQA's rule and QA F1.

The official function (THUDM/LongBench, LongBench/metrics.py `normalize_answer`, the SQuAD
recipe) applies four steps in this order, and the order matters:

1. lower-case (Python's `str.lower`, so non-ASCII letters are lowered too);
2. delete every character of Python's `string.punctuation` (ASCII only: `…`, `“` or `–` stay);
3. replace each whole word `a`, `an`, `the` with a space (`\\b` is Unicode-aware, so "the" in
   "théorie" is not a whole word, and "a" in "a-b" becomes a word only after step 2 removed "-"
   and fused "ab", i.e. never);
4. collapse every run of whitespace (`str.split()`, which includes Unicode spaces) to one space
   and trim the ends.

Deleting punctuation before removing articles means "the-end" becomes "theend" (kept whole)
while "the end" becomes "end". We reproduce that exactly; `str.translate` replaces the official
per-character generator only for speed.
"""

from __future__ import annotations

import re
import string

_DELETE_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normalize_answer(text: str) -> str:
    """LongBench-v1 / SQuAD normalisation: lower, drop ASCII punctuation, drop articles, squash spaces."""
    lowered = text.lower().translate(_DELETE_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", lowered).split())


def normalized_tokens(text: str) -> list[str]:
    """The whitespace tokens of `normalize_answer(text)`: the units LongBench QA F1 counts."""
    return normalize_answer(text).split()
