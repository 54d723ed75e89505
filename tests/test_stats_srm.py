"""Sample-ratio mismatch: scipy and gbstats equality, edge cases, alarm rates by simulation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from gbstats.utils import check_srm

from liftkit.stats import simulate, srm_check, srm_check_many
from stats_oracles import close, sims


def test_matches_scipy_chisquare_and_gbstats() -> None:
    rng = np.random.default_rng(51)
    for k in (2, 3, 5):
        for _ in range(20):
            weights = rng.dirichlet(np.ones(k))
            counts = rng.multinomial(int(rng.integers(100, 100000)), weights)
            res = srm_check(counts, weights)
            expected = weights * counts.sum()
            ref = scipy.stats.chisquare(counts, expected)
            assert close(res.statistic, ref.statistic, rtol=1e-9)
            assert close(res.p_value, ref.pvalue, rtol=1e-9, atol=1e-300)
            assert close(res.p_value, check_srm(list(counts), list(weights)), rtol=1e-9)
            assert res.dof == k - 1


def test_flags_below_the_threshold_only() -> None:
    assert srm_check([5000, 5000], [0.5, 0.5]).flagged is False
    assert srm_check([5000, 5400], [0.5, 0.5]).flagged is True  # p ≈ 9e-5
    lenient = srm_check([5000, 5200], [0.5, 0.5], threshold=0.05)
    assert lenient.flagged and not srm_check([5000, 5200], [0.5, 0.5]).flagged


def test_zero_weight_arms() -> None:
    assert srm_check([500, 480, 0], [0.5, 0.5, 0.0]).dof == 1
    leaked = srm_check([500, 480, 3], [0.5, 0.5, 0.0])
    assert leaked.p_value == 0.0 and leaked.flagged


def test_degenerate_inputs_explain_themselves() -> None:
    empty = srm_check([0, 0], [0.5, 0.5])
    assert empty.p_value == 1.0 and not empty.flagged and empty.error
    single = srm_check([10, 0], [1.0, 0.0])
    assert single.p_value == 1.0 and not single.flagged and single.error


@pytest.mark.parametrize(
    ("counts", "weights"),
    [([1, -1], [0.5, 0.5]), ([1, 1], [0.0, 0.0]), ([1, 1], [0.5, -0.5]), ([1.0, np.nan], [1, 1])],
)
def test_invalid_arguments_raise(counts: list[float], weights: list[float]) -> None:
    with pytest.raises(ValueError):
        srm_check(counts, weights)


def test_vectorised_over_dimensions() -> None:
    counts = np.array([[500, 510], [500, 700], [0, 0]])
    res = srm_check_many(counts, [0.5, 0.5])
    assert res.p_value.shape == (3,)
    for i in range(3):
        assert res.item(i) == srm_check(counts[i], [0.5, 0.5])


def test_false_alarms_and_power_by_simulation() -> None:
    """Under a correct split the test is calibrated; under a 50.5/49.5 split its power matches
    the non-central chi-square (λ = N Σ (pᵢ − wᵢ)²/wᵢ = 10). Tolerances: 3 binomial SE."""
    n_sims = sims(20000, 200000)
    se = np.sqrt(0.05 * 0.95 / n_sims)
    assert abs(simulate.srm_alarm_rate(n_sims, threshold=0.05, seed=1) - 0.05) <= 3 * se
    assert simulate.srm_alarm_rate(n_sims, seed=2) <= 0.001 + 3 * np.sqrt(0.001 / n_sims)
    power = scipy.stats.ncx2.sf(scipy.stats.chi2.isf(0.001, 1), 1, 10.0)
    observed = simulate.srm_alarm_rate(n_sims, true_share=0.505, seed=3)
    assert abs(observed - power) <= 3 * np.sqrt(power * (1 - power) / n_sims)
