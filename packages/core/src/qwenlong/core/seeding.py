"""Seeds and random generators derived from a run seed and a purpose, never carried along."""

from __future__ import annotations

import hashlib
import random


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed fixed by `seed` and `parts` (e.g. "rollout", step).

    Every random draw is seeded from (run seed, purpose, step, ...) alone, never from a generator
    carried along from one step to the next, so a resumed run draws exactly what the
    uninterrupted run drew. SHA-256 (not `hash`) makes the value the same on every platform and
    Python version; NUL separators keep ("a", "bc") apart from ("ab", "c"); 63 bits fit every
    consumer that wants a non-negative int64 (torch, numpy).
    """
    text = "\x00".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def derive_rng(seed: object, *parts: object) -> random.Random:
    """A `random.Random` keyed by `seed` and `parts` joined with ":" (e.g. "0:finance:org-x").

    Python's `Random` seeds a str from its bytes and their SHA-512, so the key string is the
    whole derivation. This is the key format synth has always used for its generators, so
    switching to this helper keeps synthesised outputs byte-identical.
    """
    return random.Random(":".join(str(part) for part in (seed, *parts)))
