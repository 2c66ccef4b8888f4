"""Uncertainty and breakdowns of per-item scores.

A benchmark of a few hundred items moves by several points between seeds, while the paper's
ablations differ by one or two; a score without an interval invites reading noise as signal.
The percentile bootstrap of the mean makes no normality assumption, which matters for 0/1 scores
near 0 or 1 and for dense scores (MRCR ratios) with skewed distributions.

All functions take scores in whatever unit they come in (0-1 per item) and return the same unit;
callers multiply by 100 for reports.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

from qwenlong.core.errors import ConfigError, DatasetError

_MAX_BATCH_ELEMENTS = 1 << 24
"""Resampled values held in memory at once (about 128 MB of float64); larger jobs are chunked."""


def _as_array(values: Sequence[float], what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise DatasetError(f"{what}: needs a non-empty list of numbers, got {array.size} values")
    if not np.isfinite(array).all():
        raise DatasetError(f"{what}: values include NaN or infinity")
    return array


def bootstrap_ci(
    values: Sequence[float],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values`.

    Draws `n_resamples` samples of the same size with replacement, takes each one's mean, and
    returns the (1-confidence)/2 and (1+confidence)/2 quantiles of those means. Same inputs and
    seed give the same interval.
    """
    if n_resamples < 1:
        raise ConfigError(f"bootstrap_ci: n_resamples is {n_resamples}, must be >= 1")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"bootstrap_ci: confidence is {confidence}, must be in (0, 1)")
    array = _as_array(values, "bootstrap_ci")
    rng = np.random.default_rng(seed)
    n = array.size
    per_batch = max(1, _MAX_BATCH_ELEMENTS // n)
    means = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, per_batch):
        stop = min(start + per_batch, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = array[idx].mean(axis=1)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std with n-1, over sqrt(n)).

    One value gives no estimate of spread: its standard error is NaN.
    """
    array = _as_array(values, "mean_and_stderr")
    if array.size == 1:
        return float(array[0]), math.nan
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(array.size))


def group_scores(values: Sequence[float], keys: Sequence[Hashable]) -> dict[str, float]:
    """Mean score per key (e.g. LongBench-V2 difficulty), keys in order of first appearance.

    Keys are reported as strings, the form they take in `TaskSample.meta` and in scores.json.
    """
    if len(values) != len(keys):
        raise DatasetError(f"group_scores: {len(values)} values but {len(keys)} keys")
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for value, key in zip(values, keys, strict=True):
        name = str(key)
        sums[name] = sums.get(name, 0.0) + float(value)
        counts[name] = counts.get(name, 0) + 1
    return {name: sums[name] / counts[name] for name in sums}
