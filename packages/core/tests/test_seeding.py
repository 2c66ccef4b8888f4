"""Derived seeds and generators: pinned values, so a change to the derivation cannot slip by."""

from __future__ import annotations

import random

from qwenlong.core.seeding import derive_rng, derive_seed


def test_derive_seed_matches_the_values_rl_has_always_drawn() -> None:
    """Pinned to the output of the original `qwenlong.rl.batching.derive_seed`."""
    assert derive_seed(0, "rollout", 3) == 8578604185602505796
    assert derive_seed(1234, "sampler", 0, "x") == 3458551162779357977
    assert derive_seed(7) == 4359823973405836615


def test_derive_seed_is_63_bits_and_separates_parts() -> None:
    seeds = [derive_seed(0, "step", step) for step in range(100)]
    assert all(0 <= s < 2**63 for s in seeds)
    assert len(set(seeds)) == 100
    assert derive_seed(0, "a", "bc") != derive_seed(0, "ab", "c")


def test_derive_rng_draws_what_random_seeded_with_the_joined_key_draws() -> None:
    ours, reference = derive_rng("a", "b", "c"), random.Random("a:b:c")
    assert [ours.random() for _ in range(5)] == [reference.random() for _ in range(5)]


def test_derive_rng_joins_non_string_parts_by_their_str() -> None:
    ours, reference = derive_rng(0, "report", "org-x", 2023), random.Random("0:report:org-x:2023")
    assert ours.getrandbits(64) == reference.getrandbits(64)
    assert derive_rng(0, "graph").random() != derive_rng(1, "graph").random()
