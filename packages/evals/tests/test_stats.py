"""Bootstrap intervals, standard errors and breakdowns on hand-checked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.evals import stats
from qwenlong.evals.stats import bootstrap_ci, group_scores, mean_and_stderr


def test_constant_scores_give_a_zero_width_interval():
    assert bootstrap_ci([0.7] * 50) == pytest.approx((0.7, 0.7))
    assert bootstrap_ci([1.0]) == (1.0, 1.0)


def test_interval_is_reproducible_and_brackets_the_mean():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    lo, hi = bootstrap_ci(values, seed=3)
    assert (lo, hi) == bootstrap_ci(values, seed=3)
    assert 0.0 <= lo < 0.7 < hi <= 1.0
    dense = [0.11, 0.52, 0.93, 0.24, 0.65, 0.36, 0.87, 0.48]
    assert bootstrap_ci(dense, seed=3) != bootstrap_ci(dense, seed=4)


def test_bernoulli_half_matches_the_normal_approximation():
    # p = 0.5, n = 400: the 95% interval of the mean is about +-1.96 * sqrt(0.25 / 400) = +-0.049.
    values = [0.0, 1.0] * 200
    lo, hi = bootstrap_ci(values, n_resamples=4000)
    assert lo == pytest.approx(0.451, abs=0.01)
    assert hi == pytest.approx(0.549, abs=0.01)


def test_coverage_on_a_known_distribution():
    rng = np.random.default_rng(123)
    hits = 0
    trials = 200
    for trial in range(trials):
        sample = rng.normal(loc=2.0, scale=1.0, size=60)
        lo, hi = bootstrap_ci(sample, n_resamples=400, confidence=0.9, seed=trial)
        hits += lo <= 2.0 <= hi
    assert 0.82 <= hits / trials <= 0.96


def test_chunked_resampling_draws_the_same_intervals(monkeypatch):
    values = np.random.default_rng(0).random(37)
    whole = bootstrap_ci(values, n_resamples=500, seed=9)
    monkeypatch.setattr(stats, "_MAX_BATCH_ELEMENTS", 37 * 3)
    assert bootstrap_ci(values, n_resamples=500, seed=9) == whole


def test_mean_and_stderr_by_hand():
    # mean 2.5; sample variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3; stderr sqrt(5/3) / 2.
    mean, stderr = mean_and_stderr([1, 2, 3, 4])
    assert mean == 2.5
    assert stderr == pytest.approx(math.sqrt(5 / 3) / 2)
    single_mean, single_err = mean_and_stderr([0.3])
    assert single_mean == 0.3 and math.isnan(single_err)


def test_group_scores_averages_per_key_in_first_seen_order():
    groups = group_scores([1, 0, 1, 1, 0.5], ["hard", "easy", "hard", "easy", "long"])
    assert groups == {"hard": 1.0, "easy": 0.5, "long": 0.5}
    assert list(groups) == ["hard", "easy", "long"]
    assert group_scores([1.0], [3]) == {"3": 1.0}


def test_bad_inputs_name_the_function():
    with pytest.raises(DatasetError, match="bootstrap_ci: needs a non-empty"):
        bootstrap_ci([])
    with pytest.raises(DatasetError, match="NaN"):
        mean_and_stderr([1.0, float("nan")])
    with pytest.raises(ConfigError, match=r"confidence is 1\.0"):
        bootstrap_ci([1.0], confidence=1.0)
    with pytest.raises(ConfigError, match="n_resamples is 0"):
        bootstrap_ci([1.0], n_resamples=0)
    with pytest.raises(DatasetError, match="2 values but 1 keys"):
        group_scores([1, 2], ["a"])
