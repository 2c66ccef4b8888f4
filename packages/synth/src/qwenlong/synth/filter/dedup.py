"""Near-duplicate removal: MinHash signatures of word shingles, LSH banding, keep the first.

Generators re-walk the same graph paths, re-run similar SQL templates and re-propose questions
from the same documents, so the same question comes out many times in slightly different words.
Each sample's question + answers becomes a set of word shingles (normalised as the answer
metrics normalise text); its MinHash signature estimates the Jaccard similarity of two sets as
the fraction of equal signature entries. LSH banding (bands of rows hashed to buckets) finds the
candidate pairs without comparing every pair; each candidate is confirmed on the whole
signature. Of a group of near-duplicates the earliest sample is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from qwenlong.core.records import TaskSample
from qwenlong.evals.normalize import normalized_tokens
from qwenlong.synth.filter.config import DedupConfig
from qwenlong.synth.interfaces import Drop

MERSENNE_31 = (1 << 31) - 1
"""Prime modulus of the hash family h(x) = (a * x + b) mod p used as random permutations."""


def shingles(text: str, size: int) -> set[str]:
    """Word `size`-grams of the normalised text; a shorter text is one shingle of all its words."""
    words = normalized_tokens(text)
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def _hash32(shingle: str) -> int:
    """A stable 32-bit hash (Python's `hash` of str is salted per process)."""
    return int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=4).digest(), "little")


class MinHasher:
    """MinHash signatures of `num_perm` entries from seeded hash permutations.

    Permutation i is h_i(x) = (a_i * x + b_i) mod p with p = 2^31 - 1, x a shingle's 32-bit hash
    reduced mod p, a_i in [1, p) and b_i in [0, p): the Carter-Wegman universal family. Every
    product stays below 2^62, so uint64 arithmetic is exact. Factors must span the modulus: a
    61-bit modulus with 31-bit factors rarely wraps, leaving h nearly monotone in x and the
    estimate badly biased (the estimate test catches that).
    """

    def __init__(self, num_perm: int, seed: int) -> None:
        gen = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.a = gen.integers(1, MERSENNE_31, size=num_perm, dtype=np.uint64)
        self.b = gen.integers(0, MERSENNE_31, size=num_perm, dtype=np.uint64)

    def signature(self, items: Iterable[str]) -> np.ndarray:
        """Per permutation, the least hashed value over `items` (all p for an empty set)."""
        hashes = np.fromiter((_hash32(s) % MERSENNE_31 for s in items), dtype=np.uint64)
        if hashes.size == 0:
            return np.full(self.num_perm, MERSENNE_31, dtype=np.uint64)
        permuted = (np.outer(hashes, self.a) + self.b) % np.uint64(MERSENNE_31)
        return permuted.min(axis=0)


def estimated_jaccard(first: np.ndarray, second: np.ndarray) -> float:
    """Fraction of equal signature entries: an unbiased estimate of the sets' Jaccard similarity."""
    return float(np.mean(first == second))


class LSHIndex:
    """Signatures of kept samples, bucketed by band, answering "which earlier one is this like?"."""

    def __init__(self, bands: int) -> None:
        self.bands = bands
        self._buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
        self._signatures: list[np.ndarray] = []

    def _keys(self, signature: np.ndarray) -> list[bytes]:
        return [band.tobytes() for band in np.split(signature, self.bands)]

    def most_similar(self, signature: np.ndarray) -> tuple[int, float] | None:
        """The indexed entry sharing a band with `signature` that is most similar, or None."""
        candidates: set[int] = set()
        for buckets, key in zip(self._buckets, self._keys(signature), strict=True):
            candidates.update(buckets.get(key, ()))
        if not candidates:
            return None
        scored = ((i, estimated_jaccard(signature, self._signatures[i])) for i in candidates)
        return max(scored, key=lambda pair: (pair[1], -pair[0]))

    def add(self, signature: np.ndarray) -> int:
        """Index `signature`; returns its entry number."""
        entry = len(self._signatures)
        self._signatures.append(signature)
        for buckets, key in zip(self._buckets, self._keys(signature), strict=True):
            buckets.setdefault(key, []).append(entry)
        return entry


def dedup_text(sample: TaskSample) -> str:
    """What near-duplicates are judged on: the question followed by the gold answers."""
    return " ".join([sample.question, *sample.answers])


@dataclass
class DedupResult:
    """Kept samples in input order, the duplicates dropped, and how the stage ran."""

    kept: list[TaskSample]
    drops: list[Drop]
    mode: str


def remove_near_duplicates(samples: Sequence[TaskSample], config: DedupConfig) -> DedupResult:
    """Drop every sample whose estimated Jaccard similarity to an earlier kept one reaches
    `config.threshold` (reason "duplicate", the detail names the kept sample)."""
    if not config.enabled:
        return DedupResult(list(samples), [], "skipped (disabled)")
    hasher = MinHasher(config.num_perm, config.seed)
    index = LSHIndex(config.bands)
    kept: list[TaskSample] = []
    drops: list[Drop] = []
    for sample in samples:
        signature = hasher.signature(shingles(dedup_text(sample), config.shingle_words))
        match = index.most_similar(signature)
        if match is not None and match[1] >= config.threshold:
            detail = f"Jaccard ~{match[1]:.2f} with {kept[match[0]].id}"
            drops.append(Drop.of(sample, "duplicate", "dedup", detail))
            continue
        index.add(signature)
        kept.append(sample)
    mode = (
        f"MinHash {config.num_perm} perms, {config.bands} bands, "
        f"{config.shingle_words}-word shingles, threshold {config.threshold:g}"
    )
    return DedupResult(kept, drops, mode)
