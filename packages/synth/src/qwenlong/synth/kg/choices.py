"""Multiple-choice options: three distractors of the answer's kind, shuffled with the answer.

Distractors that are merely of the same kind are easy to rule out ("a city" among persons);
ones that are tails of the same relation elsewhere in the graph ("another employer") are not,
so those come first and the rest of the same kind fills up. A distractor is never on the path
(the anchor or an intermediate would be a trap with a defensible reading) and never shares a
normalised name with the answer or another option.
"""

from __future__ import annotations

import random
import string
from collections import defaultdict

from qwenlong.synth.kg.graph import KnowledgeGraph, normalize_name
from qwenlong.synth.kg.questions import Question

N_CHOICES = 4
"""A-D, as the evals prompt and the LongBench-V2 scorer expect."""


class ChoiceMaker:
    """Builds (choices, letter) for a question from the graph's entities and values."""

    def __init__(self, graph: KnowledgeGraph) -> None:
        self.graph = graph
        self._tails: dict[str, set[str]] = defaultdict(set)
        for _, tail, relation in graph.g.edges(keys=True):
            self._tails[relation].add(tail)
        self._nodes = sorted(graph.g.nodes)

    def _similar(self, answer: str, node: str) -> bool:
        """Same kind; for a year answer, also a year."""
        graph = self.graph
        if graph.kind(node) != graph.kind(answer):
            return False
        return graph.year(answer) is None or graph.year(node) is not None

    def make(self, question: Question, rng: random.Random) -> tuple[list[str], str] | None:
        """Options in A-D order and the answer's letter; None when too few distractors exist."""
        answer = question.answer
        relation = question.path.hops[question.answer_position - 1].relation
        taken = {normalize_name(f) for f in (self.graph.display(answer), *self.graph.forms(answer))}
        on_path = set(question.path.nodes)
        picks: list[str] = []
        pools = [sorted(self._tails[relation]), self._nodes]
        for pool in pools:
            fresh = [
                n for n in pool if n not in on_path and n not in picks and self._similar(answer, n)
            ]
            rng.shuffle(fresh)
            for node in fresh:
                key = normalize_name(self.graph.display(node))
                if key and key not in taken and len(picks) < N_CHOICES - 1:
                    picks.append(node)
                    taken.add(key)
        if len(picks) < N_CHOICES - 1:
            return None
        options = [self.graph.display(n) for n in [answer, *picks]]
        rng.shuffle(options)
        letter = string.ascii_uppercase[options.index(self.graph.display(answer))]
        return options, letter
