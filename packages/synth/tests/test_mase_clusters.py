"""MASE clusters: name and word profiles on hand-worked text, and the grouping rule."""

from __future__ import annotations

import random

import pytest

from qwenlong.core.records import Document
from qwenlong.synth.mase.clusters import build_clusters, content_profile, entity_names, jaccard
from qwenlong.synth.mase.config import ClusterConfig


def test_entity_names_keep_runs_and_drop_sentence_openers() -> None:
    text = (
        "In Paris, Ada Lovelace met staff of the Bank of England. Rain fell on Harlow Works. "
        "The company grew. Later, Tomas visited The Hague."
    )
    assert entity_names(text) == {
        "Paris",
        "Ada Lovelace",
        "Bank of England",
        "Harlow Works",
        "Tomas",
        "Hague",
    }


def test_content_profile_ranks_by_frequency_then_alphabet() -> None:
    text = "Otters swim. Otters dive; rivers flow and rivers bend. Otters rest with stones."
    assert content_profile(text, 2) == {"otters", "rivers"}
    assert content_profile(text, 3) == {"otters", "rivers", "bend"}  # "with" is a stop word


def test_jaccard() -> None:
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 0.0


def _doc(doc_id: str, text: str, domain: str = "general") -> Document:
    return Document(id=doc_id, text=text, domain=domain)


def _tokens(doc: Document) -> int:
    return len(doc.text.split())


CORPUS = [
    _doc("a1", "Ada Lovelace founded Harlow Works in Marrowby."),
    _doc("a2", "Harlow Works sold looms; its chair was Ada Lovelace."),
    _doc("a3", "Critics of Harlow Works said the looms were loud."),
    _doc("b1", "Quentin Abara runs Sunmere Fisheries on the coast."),
    _doc("b2", "Sunmere Fisheries exported cod, says Quentin Abara."),
    _doc("c1", "Ada Lovelace wrote about Harlow Works in her diary.", domain="literature"),
    _doc("z1", "nothing shared here at all, only lowercase words"),
]


def test_related_documents_cluster_and_unrelated_ones_stay_out() -> None:
    clusters = build_clusters(CORPUS, _tokens, ClusterConfig(size=3, min_size=2), random.Random(0))
    groups = sorted(sorted(c.doc_ids) for c in clusters)
    assert groups == [["a1", "a2", "a3"], ["b1", "b2"]]
    by_first = {sorted(c.doc_ids)[0]: c for c in clusters}
    assert by_first["a1"].shared_names == ("Ada Lovelace", "Harlow Works")
    assert by_first["b1"].domain == "general"


def test_domains_never_mix() -> None:
    config = ClusterConfig(size=5, min_size=1)
    domain = {doc.id: doc.domain for doc in CORPUS}
    for seed in range(5):
        for cluster in build_clusters(CORPUS, _tokens, config, random.Random(seed)):
            assert {domain[doc_id] for doc_id in cluster.doc_ids} == {cluster.domain}


def test_size_and_token_budget_cap_a_cluster() -> None:
    small = build_clusters(CORPUS, _tokens, ClusterConfig(size=2, min_size=2), random.Random(0))
    assert all(len(c.documents) == 2 for c in small)
    budget = ClusterConfig(size=3, min_size=2, max_tokens=17)
    for cluster in build_clusters(CORPUS, _tokens, budget, random.Random(0)):
        assert sum(_tokens(d) for d in cluster.documents) <= 17
        assert len(cluster.documents) == 2


def test_min_size_drops_lonely_documents_and_max_clusters_stops() -> None:
    singles = build_clusters(CORPUS, _tokens, ClusterConfig(size=3, min_size=1), random.Random(0))
    assert sorted(d for c in singles for d in c.doc_ids) == sorted(d.id for d in CORPUS)
    capped = ClusterConfig(size=3, min_size=1, max_clusters=2)
    assert len(build_clusters(CORPUS, _tokens, capped, random.Random(0))) == 2


def test_clusters_are_reproducible_with_stable_ids() -> None:
    config = ClusterConfig(size=3, min_size=2)
    first = build_clusters(CORPUS, _tokens, config, random.Random(3))
    again = build_clusters(list(reversed(CORPUS)), _tokens, config, random.Random(3))
    assert [c.id for c in first] == [c.id for c in again]


def test_min_size_above_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="exceeds size"):
        ClusterConfig(size=2, min_size=3)


def test_words_common_to_most_documents_do_not_make_them_related() -> None:
    """60 documents share only the word "harbour" (overlap 1/3 each, above the threshold), but
    a word in more than 50 documents of a domain is not used to find candidates."""
    docs = [
        _doc(f"d{i:02d}", f"harbour {chr(97 + i // 26)}{chr(97 + i % 26)}xyz") for i in range(60)
    ]
    config = ClusterConfig(size=2, min_size=2, min_word_overlap=0.3)
    assert build_clusters(docs, _tokens, config, random.Random(0)) == []
    assert len(build_clusters(docs[:40], _tokens, config, random.Random(0))) == 20
