"""Reasoning paths through the graph: random walk and BFS under a sparsity constraint.

A path is a chain of hops from an anchor entity to an answer. Every hop must be *determined*:
given its head and relation, a reader must reach exactly one tail, either because the head has
only that tail for the relation ("only"), or because the facts are dated with distinct years so
the question can pick one by its date ("dated"). Otherwise the gold answer would be one of
several equally right ones. Other rules, from the paper and our own:

- no node twice (no cycles, no answer equal to the anchor);
- a literal value (year, number) can only end a path: nothing is read *from* a value;
- sparsity: each hop is read from one document chosen among the edge's documents, and
  neighbouring hops (or all hops, with `sparsity: all`) come from different documents, so a
  path spreads its evidence across the corpus;
- the path length is the sample's difficulty.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from qwenlong.core.registry import Registry
from qwenlong.synth.kg.config import PathConfig
from qwenlong.synth.kg.graph import Edge, KnowledgeGraph

Selector = Literal["only", "dated"]


@dataclass(frozen=True)
class Hop:
    """One step: (head, relation, tail) read from `doc_id`."""

    head: str
    relation: str
    tail: str
    doc_id: str
    date: str | None
    """The fact's date when its documents give exactly one."""
    selector: Selector
    """"only": the head has no other tail for the relation; "dated": it has others, all dated
    with distinct years, so the date picks this one."""


@dataclass(frozen=True)
class Path:
    hops: tuple[Hop, ...]
    strategy: str = ""

    @property
    def nodes(self) -> list[str]:
        return [self.hops[0].head, *(h.tail for h in self.hops)]

    @property
    def docs(self) -> list[str]:
        return [h.doc_id for h in self.hops]

    def __len__(self) -> int:
        return len(self.hops)


def hop_selector(graph: KnowledgeGraph, edge: Edge, dated_selection: bool) -> Selector | None:
    """How a question can pin this edge down among its head's edges of the same relation."""
    rivals = [e for e in graph.edges_from(edge.head) if e.relation == edge.relation]
    if len(rivals) == 1:
        return "only"
    if not dated_selection:
        return None
    years = [e.year for e in rivals]
    if any(y is None for y in years) or len(set(years)) != len(years):
        return None
    return "dated"


@dataclass(frozen=True)
class _Step:
    edge: Edge
    selector: Selector
    docs: tuple[str, ...]


PathFilter = Callable[[Path], bool]


class PathSampler:
    """Draws paths of a requested length; the strategy is a `PATH_STRATEGIES` name."""

    def __init__(self, graph: KnowledgeGraph, config: PathConfig) -> None:
        self.graph = graph
        self.config = config
        self._steps: dict[str, list[_Step]] = {}
        for node in graph.entities():
            steps = []
            for edge in graph.edges_from(node):
                selector = hop_selector(graph, edge, config.dated_selection)
                if selector is not None:
                    steps.append(_Step(edge, selector, tuple(sorted(edge.docs))))
            if steps:
                self._steps[node] = steps
        self.starts = sorted(self._steps)
        """Entities with at least one determined out-edge: where paths may begin."""

    def steps(
        self, node: str, visited: frozenset[str], used_docs: tuple[str, ...], last: bool
    ) -> list[tuple[_Step, tuple[str, ...]]]:
        """Admissible next steps from `node`, each with the documents it may be read from."""
        out = []
        banned = set(used_docs[-1:]) if self.config.sparsity == "consecutive" else set(used_docs)
        for step in self._steps.get(node, []):
            tail = step.edge.tail
            if tail in visited or (self.graph.is_value(tail) and not last):
                continue
            docs = tuple(d for d in step.docs if d not in banned)
            if docs:
                out.append((step, docs))
        return out

    def draw(
        self, rng: random.Random, length: int, strategy: str, accept: PathFilter | None = None
    ) -> Path | None:
        """One path of exactly `length` hops that `accept` approves, or None if none was found."""
        if not self.starts:
            return None
        path = PATH_STRATEGIES.get(strategy)(self, rng, length, accept or (lambda _: True))
        return None if path is None else Path(path.hops, strategy)


def _hop(step: _Step, doc: str) -> Hop:
    edge = step.edge
    date = edge.dates[0] if len(edge.dates) == 1 else None
    return Hop(edge.head, edge.relation, edge.tail, doc, date, step.selector)


Strategy = Callable[[PathSampler, random.Random, int, PathFilter], Path | None]
PATH_STRATEGIES: Registry[Strategy] = Registry("path strategy")


@PATH_STRATEGIES.register("random_walk")
def random_walk(
    sampler: PathSampler, rng: random.Random, length: int, accept: PathFilter
) -> Path | None:
    """Walk from a random start, a random admissible step at a time; restart on a dead end.

    Cheap and unbiased towards hubs' neighbourhoods, but misses long paths in sparse graphs,
    which is what BFS is for.
    """
    for _ in range(sampler.config.walk_restarts):
        node = rng.choice(sampler.starts)
        hops: list[Hop] = []
        visited = frozenset([node])
        while len(hops) < length:
            options = sampler.steps(
                node, visited, tuple(h.doc_id for h in hops), last=len(hops) == length - 1
            )
            if not options:
                break
            step, docs = rng.choice(options)
            hops.append(_hop(step, rng.choice(docs)))
            node = step.edge.tail
            visited = visited | {node}
        if len(hops) == length and accept(Path(tuple(hops))):
            return Path(tuple(hops))
    return None


@PATH_STRATEGIES.register("bfs")
def bfs(sampler: PathSampler, rng: random.Random, length: int, accept: PathFilter) -> Path | None:
    """Expand every admissible path from a random start level by level; pick one at the end.

    Each level keeps at most `bfs_frontier` partial paths (a random subset), so the search
    stays bounded on hubs. Finds a path of the requested length whenever one exists within the
    kept frontier, where a random walk may keep running into dead ends.
    """
    for _ in range(sampler.config.walk_restarts):
        start = rng.choice(sampler.starts)
        frontier: list[tuple[Hop, ...]] = [()]
        for depth in range(length):
            grown: list[tuple[Hop, ...]] = []
            for hops in frontier:
                node = hops[-1].tail if hops else start
                visited = frozenset([start, *(h.tail for h in hops)])
                for step, docs in sampler.steps(
                    node, visited, tuple(h.doc_id for h in hops), last=depth == length - 1
                ):
                    grown.extend((*hops, _hop(step, doc)) for doc in docs)
            if len(grown) > sampler.config.bfs_frontier:
                grown = rng.sample(grown, sampler.config.bfs_frontier)
            frontier = grown
            if not frontier:
                break
        complete = [Path(h) for h in frontier if len(h) == length and accept(Path(h))]
        if complete:
            return rng.choice(complete)
    return None
