"""The history buffer: validated pairs per cluster, shown to the proposer from round two.

SPELL conditions its questioner on earlier accepted questions so that it moves on to harder,
different ones instead of rediscovering the easiest fact in the documents every round. The
buffer shows the `capacity` most recent pairs of a cluster (a prompt must stay short), but
remembers every accepted question, normalised, so a repeat is caught even after it has scrolled
out of view.
"""

from __future__ import annotations

from collections import deque

from qwenlong.evals.normalize import normalize_answer
from qwenlong.synth.mase.prompts import HistoryItem


class HistoryBuffer:
    """Validated (question, answer) pairs per cluster id."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._recent: dict[str, deque[HistoryItem]] = {}
        self._seen: dict[str, set[str]] = {}

    def add(self, cluster_id: str, item: HistoryItem) -> None:
        """Record a validated pair; the oldest shown pair drops out beyond `capacity`."""
        self._recent.setdefault(cluster_id, deque(maxlen=self.capacity)).append(item)
        self._seen.setdefault(cluster_id, set()).add(normalize_answer(item.question))

    def items(self, cluster_id: str) -> list[HistoryItem]:
        """The pairs the proposer sees for `cluster_id`, oldest first."""
        return list(self._recent.get(cluster_id, ()))

    def has_question(self, cluster_id: str, question: str) -> bool:
        """Whether an equal question (after answer normalisation) was ever accepted here."""
        return normalize_answer(question) in self._seen.get(cluster_id, set())

    def __len__(self) -> int:
        return sum(len(seen) for seen in self._seen.values())
