"""`sequence_ratio` must equal difflib's SequenceMatcher(None, a, b).ratio() exactly."""

from __future__ import annotations

import random
from difflib import SequenceMatcher

import pytest

from qwenlong.evals.metrics.sequence_ratio import matched_characters, sequence_ratio


def reference(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b).ratio()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("", ""),
        ("", "abc"),
        ("abc", ""),
        ("abcd", "abxd"),
        ("a" * 300, "a" * 300),  # every character popular: still 1.0
        ("a" * 300, "a" * 299 + "b"),
        ("ab" * 150, "ba" * 150),
        ("x" * 199 + "y", "x" * 200),  # just below and at the autojunk threshold
        ("The quick brown fox.", "The quick brown fox jumps."),
    ],
)
def test_edge_cases(a: str, b: str) -> None:
    assert sequence_ratio(a, b) == reference(a, b)


def _mutate(rng: random.Random, text: str, alphabet: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, 12)):
        if chars and rng.random() < 0.5:
            del chars[rng.randrange(len(chars))]
        else:
            chars.insert(rng.randint(0, len(chars)), rng.choice(alphabet))
    return "".join(chars)


def test_random_pairs_match_difflib() -> None:
    rng = random.Random(20240601)
    full = "abcdefghijklmnopqrstuvwxyz ABC.,;\n"
    for _ in range(1500):
        alphabet = full[: rng.randint(1, len(full))]
        length = rng.choice([0, 1, 3, 20, 150, 199, 200, 201, 260, 500])
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, length)))
        kind = rng.random()
        if kind < 0.35:
            b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, length)))
        elif kind < 0.75:
            b = _mutate(rng, a, alphabet)
        elif kind < 0.85:
            b = a
        else:
            b = a[rng.randint(0, len(a)) :] + a[: rng.randint(0, len(a))]
        if rng.random() < 0.5:
            a, b = b, a
        assert sequence_ratio(a, b) == reference(a, b), (a, b)


def test_matched_characters_is_the_block_total() -> None:
    blocks = SequenceMatcher(None, "abxcd", "abcyd").get_matching_blocks()
    assert matched_characters("abxcd", "abcyd") == sum(block.size for block in blocks) == 4
