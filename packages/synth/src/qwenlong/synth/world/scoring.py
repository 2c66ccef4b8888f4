"""Precision and recall of extracted triples against a world's ground truth.

Triples match when document, head, relation and tail agree after case folding and whitespace
collapsing; dates are compared only when asked, because a sentence can state a fact without its
year. Duplicates count once: an extractor gains nothing by repeating a triple.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from qwenlong.synth.interfaces import Triple

_SPACE = re.compile(r"\s+")

TripleKey = tuple[str, ...]


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().strip(".").casefold()


def triple_key(triple: Triple, with_date: bool = False) -> TripleKey:
    """What two triples must share to count as the same fact."""
    key = (triple.doc_id, _norm(triple.head), triple.relation, _norm(triple.tail))
    return (*key, triple.date or "") if with_date else key


@dataclass(frozen=True)
class ExtractionScore:
    """Set-level precision and recall of one extractor on one set of documents."""

    true_positives: int
    predicted: int
    expected: int

    @property
    def precision(self) -> float:
        """Share of predicted triples that are true; 1.0 when nothing was predicted."""
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        """Share of true triples that were predicted; 1.0 when nothing was expected."""
        return self.true_positives / self.expected if self.expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        return (
            f"precision {self.precision:.3f} recall {self.recall:.3f} f1 {self.f1:.3f} "
            f"({self.true_positives} of {self.predicted} predicted, {self.expected} expected)"
        )


def score_extraction(
    predicted: Iterable[Triple], expected: Iterable[Triple], with_date: bool = False
) -> ExtractionScore:
    """Compare predicted triples with ground truth, both spanning the same documents."""
    pred = {triple_key(t, with_date) for t in predicted}
    gold = {triple_key(t, with_date) for t in expected}
    return ExtractionScore(len(pred & gold), len(pred), len(gold))
