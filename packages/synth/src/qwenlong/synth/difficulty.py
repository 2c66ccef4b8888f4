"""Difficulty as verification measures it: the pass rate, and the bins balancing draws from."""

from __future__ import annotations

from collections.abc import Sequence

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample

PASS_RATE_META = "pass_rate"
"""`TaskSample.meta` key verification writes the pass rate to (a decimal string in [0, 1]);
difficulty balancing and the report read it. Its absence means the sample was not verified."""


def pass_rate(sample: TaskSample) -> float | None:
    """The verified pass rate of `sample`, or None when verification did not run on it."""
    raw = sample.meta.get(PASS_RATE_META)
    if raw is None:
        return None
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0 <= rate <= 1:
        raise DatasetError(
            f"sample {sample.id}: meta[{PASS_RATE_META!r}] is {raw!r}, not a number in [0, 1]"
        )
    return rate


def bin_index(rate: float, edges: Sequence[float]) -> int:
    """Bin of `rate` among `edges`: bin i is (edges[i], edges[i+1]], the first also holds edges[0].

    Right-closed bins put a perfect pass rate (1.0) in the last bin and a pass rate just above a
    uniform edge (1/4 with k=4 lands on 0.25) in the lower bin, matching "pass rate at most x".
    """
    if not edges[0] <= rate <= edges[-1]:
        raise ValueError(f"pass rate {rate} is outside the bin edges {list(edges)}")
    for i in range(len(edges) - 1):
        if rate <= edges[i + 1]:
            return i
    return len(edges) - 2
