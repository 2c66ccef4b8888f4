"""The cross-document knowledge graph: entities merged, relations clustered, edges aggregated.

Nodes are entities (keyed by their normalised name) or literal values (keyed "v:<text>"). Two
surface names become one node when they normalise alike (case, punctuation, articles: the same
normalisation the answer scorers use, so "The Acme Corp." and "acme corp" are one entity and one
answer) or when a triple says one is an alias of the other. Edges are keyed by canonical
relation: every document stating the same fact adds its id (and its domain) to one edge, which is
what lets a path hop between documents and what the sparsity constraint reads.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from qwenlong.evals.normalize import normalize_answer
from qwenlong.synth.interfaces import Triple
from qwenlong.synth.kg.config import GraphConfig
from qwenlong.synth.kg.relations import (
    ALIAS_LABELS,
    DATE_CANONICALS,
    RelationClusterer,
    normalize_label,
)

VALUE_KIND = "value"
"""Node kind of literals: dates, numbers, occupations written as plain values."""

_DATE = re.compile(r"^\s*(\d{3,4})(-\d{2}(?:-\d{2})?)?\s*$")
_NUMBER = re.compile(r"^\s*[-+]?\d[\d,]*(?:\.\d+)?\s*%?\s*$")
_KIND_SPELLING = {"organization": "organisation", "company": "organisation", "location": "place"}


def parse_year(text: str | None) -> int | None:
    """The year of an ISO year or date ("1995", "914", "1995-03", "1995-03-02"), else None.

    A bare number is a year only where a date is expected (a triple's date, the tail of a date
    relation); elsewhere "1920" may be a population. `KnowledgeGraph.year` knows the difference.
    """
    if not text:
        return None
    match = _DATE.match(text)
    return int(match.group(1)) if match else None


def normalize_name(name: str) -> str:
    """Entity key: NFKC, then the scorers' normalisation (lower, no punctuation or articles)."""
    return normalize_answer(unicodedata.normalize("NFKC", name))


def normalize_kind(kind: str) -> str:
    """Kinds as one spelling ("Organization" -> "organisation"); "" when unknown."""
    kind = kind.strip().lower()
    return _KIND_SPELLING.get(kind, kind)


def is_full_date(text: str) -> bool:
    """An ISO date with a month ("1995-03", "1995-03-02"): a date wherever it appears."""
    match = _DATE.match(text)
    return bool(match and match.group(2))


def is_value(text: str, kind: str) -> bool:
    """A literal rather than an entity: marked "value", or a date or number by its form."""
    return normalize_kind(kind) == VALUE_KIND or bool(_DATE.match(text) or _NUMBER.match(text))


def value_key(text: str) -> str:
    return "v:" + " ".join(text.split()).lower()


@dataclass(frozen=True)
class Edge:
    """One aggregated fact: every document that states (head, relation, tail)."""

    head: str
    relation: str
    tail: str
    docs: tuple[str, ...]
    domains: tuple[str, ...]
    dates: tuple[str, ...]
    """Distinct dates the documents give for the fact (usually zero or one)."""

    @property
    def year(self) -> int | None:
        """The fact's year when the documents agree on exactly one date."""
        return parse_year(self.dates[0]) if len(self.dates) == 1 else None


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class KnowledgeGraph:
    """A `networkx.MultiDiGraph` with typed accessors; edges keyed by canonical relation.

    Node data: `name` (display), `kind`, `forms` (surface names, most frequent first), and
    `year` on value nodes that are dates.
    Edge data: `docs`, `domains`, `dates`, `evidence` (doc id -> the sentence read).
    """

    def __init__(self, graph: nx.MultiDiGraph, index: Mapping[str, str]) -> None:
        self.g = graph
        self._index = dict(index)
        self._out: dict[str, list[Edge]] = {}

    def name(self, node: str) -> str:
        return self.g.nodes[node]["name"]

    def kind(self, node: str) -> str:
        return self.g.nodes[node]["kind"]

    def forms(self, node: str) -> tuple[str, ...]:
        """Every surface name of the node (aliases included), most frequent first."""
        return self.g.nodes[node]["forms"]

    def is_value(self, node: str) -> bool:
        return self.kind(node) == VALUE_KIND

    def year(self, node: str) -> int | None:
        """The year a value node denotes: a full ISO date, or a date relation's tail."""
        return self.g.nodes[node].get("year")

    def display(self, node: str) -> str:
        """How a node is written as an answer or option: a date by its year (questions ask for
        "the year of birth", and "1984" is what a reader gives), anything else by its name."""
        year = self.year(node)
        return str(year) if year is not None else self.name(node)

    def entities(self) -> list[str]:
        return sorted(n for n in self.g.nodes if not self.is_value(n))

    def find(self, name: str) -> str | None:
        """The entity node a surface name (or alias) denotes, if any."""
        return self._index.get(normalize_name(name))

    def edges_from(self, node: str) -> list[Edge]:
        """Out-edges of `node`, in a fixed order (relation, tail)."""
        if node not in self._out:
            edges = [
                Edge(node, rel, tail, data["docs"], data["domains"], data["dates"])
                for _, tail, rel, data in self.g.out_edges(node, keys=True, data=True)
            ]
            self._out[node] = sorted(edges, key=lambda e: (e.relation, e.tail))
        return self._out[node]

    def edge(self, head: str, relation: str, tail: str) -> Edge:
        data = self.g.edges[head, tail, relation]
        return Edge(head, relation, tail, data["docs"], data["domains"], data["dates"])

    def tails(self, head: str, relation: str) -> list[str]:
        return [e.tail for e in self.edges_from(head) if e.relation == relation]

    def evidence(self, head: str, relation: str, tail: str, doc: str) -> str:
        return self.g.edges[head, tail, relation]["evidence"].get(doc, "")

    def relations(self) -> list[str]:
        return sorted({rel for _, _, rel in self.g.edges(keys=True)})

    def restrict(self, domains: Iterable[str]) -> KnowledgeGraph:
        """The subgraph of edges read from documents of `domains` (their other docs dropped)."""
        wanted = set(domains)
        sub = nx.MultiDiGraph()
        sub.add_nodes_from(self.g.nodes(data=True))
        for head, tail, rel, data in self.g.edges(keys=True, data=True):
            pairs = [
                p for p in zip(data["docs"], data["doc_domains"], strict=True) if p[1] in wanted
            ]
            if pairs:
                docs, doc_domains = zip(*pairs, strict=True)
                sub.add_edge(head, tail, key=rel, **_edge_data(docs, doc_domains, data))
        sub.remove_nodes_from([n for n in list(sub.nodes) if sub.degree(n) == 0])
        index = {k: v for k, v in self._index.items() if v in sub}
        return KnowledgeGraph(sub, index)


def _edge_data(docs: Sequence[str], doc_domains: Sequence[str], data: Mapping) -> dict:
    return {
        "docs": tuple(docs),
        "doc_domains": tuple(doc_domains),
        "domains": tuple(sorted(set(doc_domains))),
        "dates": data["dates"],
        "evidence": {d: data["evidence"][d] for d in docs if d in data["evidence"]},
    }


def build_graph(
    triples: Sequence[Triple],
    domains: Mapping[str, str] | None = None,
    config: GraphConfig | None = None,
) -> KnowledgeGraph:
    """Merge triples from many documents into one `KnowledgeGraph`.

    `domains` maps document id -> domain (from `Document.domain`); unknown ids get "".
    Alias triples merge their two names into one node and add no edge; every other triple is
    mapped to its canonical relation (inverse labels swap head and tail) and added to, or
    aggregated into, the edge (head, relation, tail). Self-loops after merging are dropped.
    """
    config = config or GraphConfig()
    domains = domains or {}
    uf = _UnionFind()
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    facts: list[Triple] = []
    for t in triples:
        head, tail = t.head.strip(), t.tail.strip()
        if not normalize_name(head) or not normalize_name(tail):
            continue
        if normalize_label(t.relation) in ALIAS_LABELS:
            uf.union(normalize_name(head), normalize_name(tail))
            forms[normalize_name(tail)][tail] += 1
        else:
            facts.append(t)
        forms[normalize_name(head)][head] += 1
    if config.merge_surnames:
        _merge_surnames(facts, uf)
    clusterer = RelationClusterer(
        ((t.relation, parse_year(t.tail) is not None) for t in facts),
        config.relation_similarity,
        config.relation_synonyms,
    )
    g = nx.MultiDiGraph()
    node_forms: dict[str, Counter[str]] = defaultdict(Counter)
    for key, counter in forms.items():
        node_forms[uf.find(key)].update(counter)
    for t in facts:
        value_tail = is_value(t.tail.strip(), t.tail_kind)
        relation, inverted = clusterer.canonical(t.relation, parse_year(t.tail) is not None)
        head = uf.find(normalize_name(t.head))
        head_kind, tail_kind = normalize_kind(t.head_kind), normalize_kind(t.tail_kind)
        if value_tail:
            tail = value_key(t.tail)
            node_forms[tail][t.tail.strip()] += 1
            tail_kind = VALUE_KIND
            if inverted:  # a literal cannot head an edge: keep the label as written
                relation, inverted = normalize_label(t.relation), False
        else:
            tail = uf.find(normalize_name(t.tail))
            node_forms[tail][t.tail.strip()] += 1
        if inverted:
            head, tail, head_kind, tail_kind = tail, head, tail_kind, head_kind
        if head == tail:
            continue
        kinds[head][head_kind] += bool(head_kind)
        kinds[tail][tail_kind] += bool(tail_kind)
        _add_fact(g, head, relation, tail, t, domains.get(t.doc_id, ""))
    index: dict[str, str] = {}
    for node in g.nodes:
        ranked = sorted(node_forms[node].items(), key=lambda kv: (-kv[1], kv[0]))
        g.nodes[node]["forms"] = tuple(form for form, _ in ranked)
        g.nodes[node]["name"] = _display_name([form for form, _ in ranked])
        kind_votes = sorted(((-c, k) for k, c in kinds[node].items() if c and k))
        g.nodes[node]["kind"] = (
            VALUE_KIND if node.startswith("v:") else (kind_votes[0][1] if kind_votes else "")
        )
        if not node.startswith("v:"):
            index[node] = node
    for key in forms:
        if uf.find(key) in g:
            index[key] = uf.find(key)
    for _, tail, relation in g.edges(keys=True):
        name = g.nodes[tail]["name"]
        if tail.startswith("v:") and (relation in DATE_CANONICALS or is_full_date(name)):
            g.nodes[tail]["year"] = parse_year(name)
    return KnowledgeGraph(g, index)


def _merge_surnames(facts: Sequence[Triple], uf: _UnionFind) -> None:
    """Union each one-word person name with the one full person name of its document it ends."""
    people: dict[str, set[str]] = defaultdict(set)
    for t in facts:
        for name, kind in ((t.head, t.head_kind), (t.tail, t.tail_kind)):
            if normalize_kind(kind) == "person":
                people[t.doc_id].add(normalize_name(name))
    for doc in sorted(people):
        names = people[doc]
        for short in sorted(n for n in names if n and " " not in n):
            owners = {uf.find(n) for n in names if " " in n and n.split()[-1] == short}
            if len(owners) == 1:
                uf.union(short, owners.pop())


def _display_name(ranked: list[str]) -> str:
    """The most frequent form that is not part of a longer form ("Ada Park" over "Park").

    Prose repeats short forms (surnames, acronyms), so frequency alone would name a person by
    their surname; a form contained, as whole words, in another form of the same node yields.
    """
    keys = [f" {normalize_name(f)} " for f in ranked]
    for form, key in zip(ranked, keys, strict=True):
        if not any(key != other and key in other for other in keys):
            return form
    return ranked[0]


def _add_fact(
    g: nx.MultiDiGraph, head: str, relation: str, tail: str, t: Triple, domain: str
) -> None:
    if not g.has_edge(head, tail, relation):
        g.add_edge(
            head, tail, key=relation, docs=(), doc_domains=(), domains=(), dates=(), evidence={}
        )
    data = g.edges[head, tail, relation]
    if t.doc_id not in data["docs"]:
        data["docs"] = (*data["docs"], t.doc_id)
        data["doc_domains"] = (*data["doc_domains"], domain)
        data["domains"] = tuple(sorted({*data["domains"], domain}))
    if t.date and t.date.strip() not in data["dates"]:
        data["dates"] = tuple(sorted({*data["dates"], t.date.strip()}))
    data["evidence"].setdefault(t.doc_id, t.evidence)
