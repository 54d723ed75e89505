"""Quantile metrics: gbstats equality, the order-statistic ranks, and interval coverage."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import QuantileStatistic

from liftkit.stats import ERROR_MESSAGES, QuantileStats, compare, compare_many, stack
from liftkit.stats.quantile import quantile_stats_from_values
from stats_oracles import close, sims


def _gb(s: QuantileStats) -> QuantileStatistic:
    return QuantileStatistic(
        n=int(s.n),
        n_star=int(s.n if s.n_star is None else s.n_star),
        nu=s.nu,
        quantile_hat=s.quantile,
        quantile_lower=s.quantile_lower,
        quantile_upper=s.quantile_upper,
    )


@pytest.mark.parametrize("nu", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("difference", ["relative", "absolute"])
def test_matches_gbstats(nu: float, difference: str) -> None:
    rng = np.random.default_rng(41)
    for _ in range(10):
        a = quantile_stats_from_values(rng.exponential(100.0, rng.integers(500, 5000)), nu)
        b = quantile_stats_from_values(rng.exponential(104.0, rng.integers(500, 5000)), nu)
        ref = TwoSidedTTest(_gb(a), _gb(b), FrequentistConfig(difference_type=difference))
        out = ref.compute_result()
        res = compare(a, b, difference=difference)  # type: ignore[arg-type]
        assert close(res.effect, out.expected) and close(res.se, out.uplift.stddev)
        assert close(res.ci_low, out.ci[0]) and close(res.ci_high, out.ci[1])
        assert close(res.p_value, out.p_value, atol=1e-9)  # type: ignore[arg-type]


def test_order_statistic_ranks_bound_a_95_percent_binomial_interval() -> None:
    n, nu = 1000, 0.9
    s = quantile_stats_from_values(np.arange(1.0, n + 1.0), nu)  # value = rank
    assert s.quantile == 900.0
    # P(Binomial(n, ν) in [lower, upper)) — the order-statistic interval's coverage.
    lower, upper = int(s.quantile_lower), int(s.quantile_upper)
    cover = scipy.stats.binom.cdf(upper - 1, n, nu) - scipy.stats.binom.cdf(lower - 1, n, nu)
    assert 0.95 <= cover <= 0.96


def test_too_few_units_for_an_extreme_quantile() -> None:
    rng = np.random.default_rng(42)
    a = quantile_stats_from_values(rng.exponential(1.0, 200), 0.99)
    b = quantile_stats_from_values(rng.exponential(1.0, 200), 0.99)
    assert compare(a, b).error == ERROR_MESSAGES[4]


def test_invalid_quantile_statistics_raise() -> None:
    with pytest.raises(ValueError):
        QuantileStats(n=100, nu=1.0, quantile=1.0, quantile_lower=0.5, quantile_upper=2.0)
    with pytest.raises(ValueError):
        QuantileStats(n=100, nu=0.5, quantile=1.0, quantile_lower=2.5, quantile_upper=2.0)


@pytest.mark.parametrize(("nu", "difference"), [(0.5, "absolute"), (0.9, "relative")])
def test_intervals_cover_the_true_quantile_difference(nu: float, difference: str) -> None:
    """Exponential data, treatment scaled by 1.05: the ν-quantile moves by 5% exactly.

    Coverage must be 95% ± 1.5% (3 binomial SE at 2,000 simulated experiments).
    """
    rng = np.random.default_rng(43)
    n_sims, n = sims(2000, 20000), 2000
    a_values = np.sort(rng.exponential(100.0, (n_sims, n)), axis=1)
    b_values = np.sort(rng.exponential(105.0, (n_sims, n)), axis=1)
    a = stack([quantile_stats_from_values(v, nu) for v in a_values])
    b = stack([quantile_stats_from_values(v, nu) for v in b_values])
    res = compare_many(a, b, difference=difference)  # type: ignore[arg-type]
    q = -100.0 * np.log(1 - nu)
    truth = 0.05 * q if difference == "absolute" else 0.05
    covered = (res.ci_low <= truth) & (truth <= res.ci_high)
    assert abs(covered.mean() - 0.95) <= 0.015
