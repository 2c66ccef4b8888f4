"""Difficulty balancing: the same number of samples from each pass-rate bin.

Generators produce far more easy samples than hard ones; trained on as they come, the policy
sees mostly questions it already solves (zero advantage under GRPO) and few it cannot. Binning
by verified pass rate and taking an equal count per bin flattens the difficulty distribution
(RECIPE.md section 1, "difficulty balancing").

Only verified samples carry a pass rate (`meta["pass_rate"]`); the others pass through
untouched, since a generator's difficulty level (a path length, say) is no pass rate. With no
verified sample at all the stage reports itself as skipped.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from qwenlong.core.records import TaskSample
from qwenlong.synth.difficulty import bin_index, pass_rate
from qwenlong.synth.filter.config import BalanceConfig
from qwenlong.synth.interfaces import Drop


@dataclass
class BalanceResult:
    """Kept samples in input order, the drops, per-group bin counts, and how the stage ran."""

    kept: list[TaskSample]
    drops: list[Drop]
    bins_before: dict[str, list[int]]
    """Group (task type, or "all") -> samples per bin before balancing."""
    bins_after: dict[str, list[int]]
    mode: str


def balance_by_difficulty(
    samples: Sequence[TaskSample], config: BalanceConfig, rng: random.Random
) -> BalanceResult:
    """Keep `per_bin` samples (default: the smallest non-empty bin's count) from every bin.

    Within a bin the kept samples are a uniform draw from `rng`; a bin with fewer samples than
    the quota keeps them all, and an empty bin contributes nothing rather than emptying its
    group. Dropped samples get the reason "unbalanced".
    """
    if not config.enabled:
        return BalanceResult(list(samples), [], {}, {}, "skipped (disabled)")
    edges = config.edges()
    groups: dict[str, list[list[int]]] = {}
    for index, sample in enumerate(samples):
        rate = pass_rate(sample)
        if rate is None:
            continue
        group = sample.task_type if config.group_by == "task_type" else "all"
        bins = groups.setdefault(group, [[] for _ in range(len(edges) - 1)])
        bins[bin_index(rate, edges)].append(index)
    if not groups:
        return BalanceResult(list(samples), [], {}, {}, "skipped (no verified pass rates)")
    dropped: dict[int, str] = {}
    before, after = {}, {}
    for group in sorted(groups):
        bins = groups[group]
        quota = config.per_bin or min(len(b) for b in bins if b)
        before[group] = [len(b) for b in bins]
        after[group] = []
        for b, members in enumerate(bins):
            keep = set(rng.sample(members, quota)) if len(members) > quota else set(members)
            detail = f"{group} bin {b} held {len(members)}, quota {quota}"
            dropped.update((i, detail) for i in members if i not in keep)
            after[group].append(len(keep))
    kept = [s for i, s in enumerate(samples) if i not in dropped]
    drops = [
        Drop.of(s, "unbalanced", "balance", dropped[i])
        for i, s in enumerate(samples)
        if i in dropped
    ]
    bins_text = ", ".join(f"{edge:g}" for edge in edges)
    mode = f"{len(edges) - 1} bins [{bins_text}] per {config.group_by}"
    return BalanceResult(kept, drops, before, after, mode)
