"""Thompson-sampling weights and unit-level capping helpers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from liftkit.stats import MeanStats, cap, thompson_weights, winsorize
from liftkit.stats.bandits import arm_posteriors


def test_two_arm_weights_match_the_closed_form() -> None:
    """P(B > A) = Φ((μ_B − μ_A)/√(σ²_A + σ²_B)); Monte Carlo error is ≤ 4 SE at 200k draws."""
    mu, var = np.array([1.0, 1.1]), np.array([0.01, 0.02])
    exact = scipy.stats.norm.cdf(0.1 / np.sqrt(0.03))
    w = thompson_weights(mu, var, min_share=0.0, draws=200_000)
    assert abs(w[1] - exact) <= 4 * np.sqrt(exact * (1 - exact) / 200_000)
    assert abs(w.sum() - 1.0) < 1e-12


def test_minimum_share_and_inverse() -> None:
    mu, var = np.array([1.0, 2.0, 3.0]), np.full(3, 1e-6)
    w = thompson_weights(mu, var, min_share=0.05)
    np.testing.assert_allclose(w, [0.05, 0.05, 0.9])
    w_inv = thompson_weights(mu, var, min_share=0.05, inverse=True)
    np.testing.assert_allclose(w_inv, [0.9, 0.05, 0.05])
    with pytest.raises(ValueError):
        thompson_weights(mu, var, min_share=0.5)


def test_arms_without_data_get_equal_weights_and_seed_reproduces() -> None:
    stats = [MeanStats(100, 100.0, 200.0), MeanStats(0, 0.0, 0.0), MeanStats(120, 150.0, 300.0)]
    mu, var = arm_posteriors(stats)
    assert var[1] == np.inf and np.all(np.isfinite(mu))
    np.testing.assert_allclose(thompson_weights(mu, var), np.full(3, 1 / 3))
    informed = arm_posteriors([stats[0], stats[2]])
    assert np.array_equal(thompson_weights(*informed, seed=7), thompson_weights(*informed, seed=7))


def test_vectorised_over_experiments() -> None:
    mu = np.array([[1.0, 2.0], [2.0, 1.0]])
    w = thompson_weights(mu, np.full((2, 2), 1e-6), min_share=0.1)
    np.testing.assert_allclose(w, [[0.1, 0.9], [0.9, 0.1]])


def test_cap_and_winsorize() -> None:
    x = np.array([1.0, 2.0, 3.0, 100.0, -50.0])
    np.testing.assert_array_equal(cap(x, upper=10.0), [1, 2, 3, 10, -50])
    np.testing.assert_array_equal(cap(x, upper=10.0, lower=0.0), [1, 2, 3, 10, 0])
    values = np.arange(1.0, 101.0)
    w = winsorize(values, upper_quantile=0.9, lower_quantile=0.1)
    assert w.max() == 90.0 and w.min() == 10.0  # observed values, as PERCENTILE_DISC
    with pytest.raises(ValueError):
        cap(x, upper=0.0, lower=1.0)
    with pytest.raises(ValueError):
        winsorize(x, upper_quantile=1.5)


def test_capping_reduces_the_variance_of_a_heavy_tailed_metric() -> None:
    rng = np.random.default_rng(81)
    x = rng.pareto(1.5, 100_000)
    assert winsorize(x, upper_quantile=0.99).var() < 0.2 * x.var()
