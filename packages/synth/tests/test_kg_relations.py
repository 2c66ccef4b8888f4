"""Relation labels: normalisation, the synonym table with directions, similarity clustering."""

from __future__ import annotations

from qwenlong.synth.kg.relations import (
    RelationClusterer,
    clause,
    normalize_label,
    noun_phrase,
    stem_label,
    surface_forms,
)


def test_normalize_label_drops_auxiliaries_articles_and_punctuation() -> None:
    assert normalize_label("Was born in") == "born in"
    assert normalize_label("is_employed_by") == "employed by"
    assert normalize_label("Has been a member of the") == "member of"
    assert normalize_label("Head-quarters") == "head quarters"
    assert normalize_label("O'Neil's employer") == "oneils employer"


def test_stem_strips_inflections_but_keeps_agent_nouns() -> None:
    assert stem_label("works for") == "work for"
    assert stem_label("founded by") == "found by"
    assert stem_label("employer") == "employer"  # the direction differs from "employ"


def clusterer(*labels: tuple[str, bool], threshold: float = 0.95) -> RelationClusterer:
    return RelationClusterer(labels, threshold)


def test_synonyms_map_to_one_canonical_relation_with_direction() -> None:
    c = clusterer(("works for", False), ("Employer", False), ("employs", False))
    assert c.canonical("works for", False) == ("employer", False)
    assert c.canonical("is employed by", False) == ("employer", False)
    assert c.canonical("Employer", False) == ("employer", False)
    assert c.canonical("employs", False) == ("employer", True)  # (Acme, employs, Bob): swap


def test_date_tails_use_the_date_table() -> None:
    c = clusterer(("born in", False), ("born in", True), ("founded", True), ("founded", False))
    assert c.canonical("born in", False) == ("birthplace", False)
    assert c.canonical("born in", True) == ("birth date", False)
    assert c.canonical("founded", True) == ("founding date", False)
    assert c.canonical("founded", False) == ("founded by", True)


def test_similar_labels_outside_the_table_cluster_and_unrelated_ones_do_not() -> None:
    c = clusterer(
        ("sponsored by", False),
        ("sponsored by", False),
        ("sponsorred by", False),
        ("funded by", False),
    )
    assert c.canonical("sponsorred by", False) == ("sponsored by", False)  # typo joins
    assert c.canonical("funded by", False) == ("funded by", False)  # not "founded by"


def test_similarity_one_disables_clustering() -> None:
    c = clusterer(("sponsored by", False), ("sponsorred by", False), threshold=1.0)
    assert c.canonical("sponsorred by", False) == ("sponsorred by", False)


def test_extra_synonyms_join_the_table() -> None:
    c = RelationClusterer([("patron", False)], 0.95, {"Patron": "sponsored by"})
    assert c.canonical("patron", False) == ("sponsored by", False)
    c = RelationClusterer([("boss", False)], 0.95, {"boss": "employer"})
    assert c.canonical("boss", False) == ("employer", False)


def test_phrasing_for_known_nouns_verbs_and_participles() -> None:
    assert noun_phrase("employer", "Ada") == "the employer of Ada"
    assert noun_phrase("headquartered in", "Acme") == "the headquarters of Acme"
    assert noun_phrase("mentor", "Ada") == "the mentor of Ada"
    assert noun_phrase("sponsors", "Ada") == "the entity that Ada sponsors"
    assert noun_phrase("managed by", "Acme") == "the entity that Acme is managed by"
    assert clause("birthplace", "Lyon") == "born in Lyon"
    assert clause("mentor", "Bo") == "whose mentor is Bo"
    assert clause("managed by", "Bo") == "managed by Bo"
    assert clause("sponsors", "Bo") == "that sponsors Bo"


def test_surface_forms_cover_label_variants_and_noun() -> None:
    forms = surface_forms("employer")
    assert {"employer", "works for", "employs"} <= set(forms)
    assert surface_forms("mentor") == ["mentor"]
