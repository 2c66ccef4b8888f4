"""MinHash near-duplicate removal: estimates track true Jaccard; the first of a group is kept."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pydantic import ValidationError

from qwenlong.core.records import TaskSample
from qwenlong.synth.filter import (
    DedupConfig,
    MinHasher,
    estimated_jaccard,
    remove_near_duplicates,
    shingles,
)


def sample(sid: str, question: str, answer: str = "Ana Lorr") -> TaskSample:
    return TaskSample(id=sid, task_type="multihop", question=question, answers=[answer])


def test_shingles_are_normalised_word_ngrams() -> None:
    assert shingles("The Cat sat, on the MAT!", 2) == {"cat sat", "sat on", "on mat"}
    assert shingles("Hello there", 3) == {"hello there"}
    assert shingles("", 3) == set()


@pytest.mark.parametrize("overlap", [0, 25, 50, 75, 100])
def test_minhash_estimate_is_close_to_the_true_jaccard(overlap: int) -> None:
    # |A| = |B| = 100, |A & B| = overlap: J = overlap / (200 - overlap)
    a = {f"w{i}" for i in range(100)}
    b = {f"w{i}" for i in range(100 - overlap, 200 - overlap)}
    truth = overlap / (200 - overlap)
    hasher = MinHasher(num_perm=512, seed=1)
    estimate = estimated_jaccard(hasher.signature(a), hasher.signature(b))
    assert abs(estimate - truth) <= 4 * max(np.sqrt(truth * (1 - truth) / 512), 0.01)


def test_signatures_are_order_free_and_seeded() -> None:
    items = [f"s{i}" for i in range(30)]
    shuffled = items[:]
    random.Random(0).shuffle(shuffled)
    hasher = MinHasher(64, seed=3)
    assert np.array_equal(hasher.signature(items), hasher.signature(shuffled))
    assert np.array_equal(hasher.signature(items), MinHasher(64, seed=3).signature(items))
    assert not np.array_equal(hasher.signature(items), MinHasher(64, seed=4).signature(items))


def test_reworded_copies_go_and_different_questions_stay() -> None:
    question = (
        "Which organisation employed the person who was born in the city where Vell was founded"
    )
    samples = [
        sample("first", question),
        sample("copy", question + "?"),  # punctuation only: identical shingles
        sample("reworded", question.replace("organisation", "company")),
        sample("other", "In which year did the river port of Kest open to foreign trade", "1987"),
        sample("other_answer", question, "Bo Denn"),
    ]
    result = remove_near_duplicates(samples, DedupConfig())
    assert [s.id for s in result.kept] == ["first", "reworded", "other", "other_answer"]
    (drop,) = result.drops
    assert (drop.sample_id, drop.reason, drop.stage) == ("copy", "duplicate", "dedup")
    assert drop.detail == "Jaccard ~1.00 with first"


def test_a_threshold_below_the_pair_similarity_catches_rewordings() -> None:
    question = (
        "Which organisation employed the person who was born in the city where Vell was founded"
    )
    samples = [
        sample("first", question),
        sample("reworded", question.replace("organisation", "company")),
    ]
    # 13 shingles each (articles dropped), 11 shared: J = 11/15 = 0.73
    assert len(remove_near_duplicates(samples, DedupConfig(threshold=0.6)).kept) == 1
    assert len(remove_near_duplicates(samples, DedupConfig(threshold=0.9)).kept) == 2


def test_bands_must_divide_the_permutations() -> None:
    with pytest.raises(ValidationError, match="not a multiple of bands"):
        DedupConfig(num_perm=100, bands=32)
