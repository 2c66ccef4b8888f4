"""Path sampling: exact lengths, no repeated nodes, sparse documents, determined hops."""

from __future__ import annotations

import random

import pytest

from qwenlong.synth.interfaces import Triple
from qwenlong.synth.kg.config import PathConfig
from qwenlong.synth.kg.graph import KnowledgeGraph, build_graph
from qwenlong.synth.kg.paths import PATH_STRATEGIES, Path, PathSampler

STRATEGIES = ("random_walk", "bfs")


def t(head: str, rel: str, tail: str, doc: str, date: str | None = None) -> Triple:
    return Triple(head, rel, tail, doc, date)


def graph(*triples: Triple) -> KnowledgeGraph:
    return build_graph(list(triples))


def all_paths(sampler: PathSampler, length: int, strategy: str, draws: int = 60) -> set[tuple]:
    rng = random.Random(0)
    found = set()
    for _ in range(draws):
        path = sampler.draw(rng, length, strategy)
        if path is not None:
            found.add(tuple((h.head, h.relation, h.tail, h.doc_id) for h in path.hops))
    return found


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_consecutive_hops_must_come_from_different_documents(strategy: str) -> None:
    same_doc = graph(
        t("Ada", "employer", "Acme", "d1"), t("Acme", "headquartered in", "Oslo", "d1")
    )
    assert all_paths(PathSampler(same_doc, PathConfig(min_hops=1)), 2, strategy) == set()
    spread = graph(
        t("Ada", "employer", "Acme", "d1"),
        t("Acme", "headquartered in", "Oslo", "d1"),
        t("Acme", "headquartered in", "Oslo", "d2"),
    )
    assert all_paths(PathSampler(spread, PathConfig(min_hops=1)), 2, strategy) == {
        (("ada", "employer", "acme", "d1"), ("acme", "headquartered in", "oslo", "d2"))
    }


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sparsity_all_forbids_any_repeated_document(strategy: str) -> None:
    g = graph(
        t("A1", "employer", "B1", "d1"),
        t("B1", "headquartered in", "C1", "d2"),
        t("C1", "located in", "D1", "d1"),
    )
    consecutive = PathSampler(g, PathConfig(min_hops=1, sparsity="consecutive"))
    assert len(all_paths(consecutive, 3, strategy)) == 1
    every = PathSampler(g, PathConfig(min_hops=1, sparsity="all"))
    assert all_paths(every, 3, strategy) == set()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_node_twice_and_values_only_at_the_end(strategy: str) -> None:
    g = graph(
        t("Ada", "spouse", "Bo", "d1"),
        t("Bo", "spouse", "Ada", "d2"),
        t("Bo", "born", "1960", "d3"),
    )
    sampler = PathSampler(g, PathConfig(min_hops=1))
    assert all_paths(sampler, 2, strategy) == {
        (("ada", "spouse", "bo", "d1"), ("bo", "birth date", "v:1960", "d3"))
    }
    assert "v:1960" not in sampler.starts


def dated_employers(second_date: str | None) -> KnowledgeGraph:
    return graph(
        t("Ada", "employer", "Acme", "d1", "1991"),
        t("Ada", "employer", "Beta", "d2", second_date),
    )


def test_several_tails_need_distinct_dates_to_be_selectable() -> None:
    sampler = PathSampler(dated_employers("1998"), PathConfig(min_hops=1))
    hops = {p[0][2]: p for p in all_paths(sampler, 1, "bfs")}
    assert set(hops) == {"acme", "beta"}
    path = sampler.draw(random.Random(1), 1, "random_walk")
    assert path is not None and path.hops[0].selector == "dated"
    assert path.hops[0].date in ("1991", "1998")
    assert all_paths(PathSampler(dated_employers(None), PathConfig(min_hops=1)), 1, "bfs") == set()
    assert (
        all_paths(PathSampler(dated_employers("1991"), PathConfig(min_hops=1)), 1, "bfs") == set()
    )
    off = PathConfig(min_hops=1, dated_selection=False)
    assert all_paths(PathSampler(dated_employers("1998"), off), 1, "bfs") == set()


def test_single_tail_is_selected_as_only() -> None:
    sampler = PathSampler(graph(t("Ada", "employer", "Acme", "d1", "1991")), PathConfig(min_hops=1))
    path = sampler.draw(random.Random(0), 1, "random_walk")
    assert path is not None
    [hop] = path.hops
    assert (hop.selector, hop.date) == ("only", "1991")


def chain_graph(n: int) -> KnowledgeGraph:
    """N0 -> N1 -> ... -> Nn, each hop in its own document, plus dead-end branches."""
    triples = [t(f"N{i}", "next", f"N{i + 1}", f"d{i}") for i in range(n)]
    triples += [t(f"N{i}", "side", f"S{i}", f"e{i}") for i in range(n)]
    return graph(*triples)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_paths_have_exact_length_and_are_deterministic(strategy: str) -> None:
    sampler = PathSampler(chain_graph(6), PathConfig(min_hops=1, max_hops=5))
    for length in range(1, 6):
        a = sampler.draw(random.Random(length), length, strategy)
        b = sampler.draw(random.Random(length), length, strategy)
        assert a == b
        assert isinstance(a, Path) and len(a) == length and a.strategy == strategy
        nodes = a.nodes
        assert len(set(nodes)) == len(nodes)
        assert all(x.tail == y.head for x, y in zip(a.hops, a.hops[1:], strict=False))


def test_bfs_finds_the_only_long_path_where_walks_mostly_dead_end() -> None:
    sampler = PathSampler(chain_graph(5), PathConfig(min_hops=1, max_hops=5, walk_restarts=1))
    bfs_hits = sum(sampler.draw(random.Random(s), 5, "bfs") is not None for s in range(40))
    walk_hits = sum(sampler.draw(random.Random(s), 5, "random_walk") is not None for s in range(40))
    assert bfs_hits > walk_hits
    # Only N0 starts a 5-hop chain: BFS succeeds exactly when its one start is N0.
    assert bfs_hits == sum(random.Random(s).choice(sampler.starts) == "n0" for s in range(40))


def test_accept_filter_and_registry() -> None:
    sampler = PathSampler(chain_graph(3), PathConfig(min_hops=1))
    path = sampler.draw(random.Random(0), 1, "bfs", accept=lambda p: p.hops[0].relation == "side")
    assert path is not None and path.hops[0].relation == "side"
    assert set(PATH_STRATEGIES.names()) >= {"random_walk", "bfs"}
