"""CUPED for means (gbstats equality) and ratios (unit-level delta method), plus coverage."""

from __future__ import annotations

import numpy as np
import pytest
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)

from liftkit.stats import (
    CupedRatioStats,
    MeanStats,
    RatioStats,
    compare,
    compare_many,
)
from liftkit.stats.cuped import mean_theta
from stats_oracles import close, cuped_from_values, sims, to_gbstats


def _arm(
    rng: np.random.Generator, n: int, lift: float, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    pre = rng.gamma(2.0, 5.0, n)
    post = 10.0 * (1 + lift) + rho * (pre - 10.0) + rng.normal(0, 6.0, n)
    return post, pre


@pytest.mark.parametrize("difference", ["relative", "absolute"])
def test_mean_cuped_matches_gbstats(difference: str) -> None:
    rng = np.random.default_rng(31)
    for _ in range(20):
        n1, n2 = rng.integers(100, 4000, 2)
        a = cuped_from_values(*_arm(rng, int(n1), 0.0, rng.uniform(0.1, 1.5)))
        b = cuped_from_values(*_arm(rng, int(n2), rng.uniform(-0.1, 0.1), 0.8))
        cfg = FrequentistConfig(difference_type=difference)
        ref = TwoSidedTTest(to_gbstats(a), to_gbstats(b), cfg).compute_result()
        res = compare(a, b, difference=difference)  # type: ignore[arg-type]
        assert close(res.effect, ref.expected) and close(res.se, ref.uplift.stddev)
        assert close(res.ci_low, ref.ci[0]) and close(res.ci_high, ref.ci[1])
        assert close(res.p_value, ref.p_value, atol=1e-9)  # type: ignore[arg-type]

        seq_cfg = SequentialConfig(difference_type=difference, sequential_tuning_parameter=3000)
        seq_ref = SequentialTwoSidedTTest(to_gbstats(a), to_gbstats(b), seq_cfg).compute_result()
        seq = compare(a, b, difference=difference, sequential_tuning=3000.0)  # type: ignore[arg-type]
        assert close(seq.ci_low, seq_ref.ci[0]) and close(seq.ci_high, seq_ref.ci[1])
        assert close(seq.p_value, seq_ref.p_value, atol=1e-12)  # type: ignore[arg-type]

        bay_cfg = EffectBayesianConfig(difference_type=difference)
        bay_ref = EffectBayesianABTest(to_gbstats(a), to_gbstats(b), bay_cfg).compute_result()
        bay = compare(a, b, engine="bayesian", difference=difference)  # type: ignore[arg-type]
        assert close(bay.effect, bay_ref.expected) and close(bay.se, bay_ref.uplift.stddev)
        assert close(bay.chance_to_win, bay_ref.chance_to_win, atol=1e-12)  # type: ignore[arg-type]


def test_theta_is_the_pooled_regression_slope() -> None:
    rng = np.random.default_rng(32)
    (ya, xa), (yb, xb) = _arm(rng, 3000, 0.0, 0.7), _arm(rng, 2500, 0.05, 0.7)
    theta = mean_theta(cuped_from_values(ya, xa), cuped_from_values(yb, xb))
    y, x = np.concatenate([ya, yb]), np.concatenate([xa, xb])
    slope = np.polyfit(x, y, 1)[0]
    assert close(float(theta), slope, rtol=1e-9)


def test_constant_covariate_falls_back_to_the_unadjusted_test() -> None:
    rng = np.random.default_rng(33)
    ya, yb = rng.normal(10, 3, 500), rng.normal(10.5, 3, 600)
    a, b = cuped_from_values(ya, np.ones(500)), cuped_from_values(yb, np.ones(600))
    plain = compare(
        MeanStats(500, ya.sum(), (ya**2).sum()), MeanStats(600, yb.sum(), (yb**2).sum())
    )
    adjusted = compare(a, b)
    assert close(adjusted.effect, plain.effect) and close(adjusted.se, plain.se)


def _ratio_values(
    rng: np.random.Generator, n: int, lift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sessions and revenue per user, before (x, y) and during (m, d) the experiment."""
    activity = rng.gamma(2.0, 1.5, n)
    y = rng.poisson(activity) + 1.0
    d = rng.poisson(activity) + 1.0
    spend = rng.gamma(2.0, 2.0, n)
    x = y * spend + rng.normal(0, 1.0, n)
    m = d * spend * (1 + lift) + rng.normal(0, 1.0, n)
    return m, d, x, y


def _cuped_ratio(m: np.ndarray, d: np.ndarray, x: np.ndarray, y: np.ndarray) -> CupedRatioStats:
    return CupedRatioStats(
        float(m.size),
        m.sum(),
        (m**2).sum(),
        d.sum(),
        (d**2).sum(),
        x.sum(),
        (x**2).sum(),
        y.sum(),
        (y**2).sum(),
        (m * d).sum(),
        (m * x).sum(),
        (m * y).sum(),
        (d * x).sum(),
        (d * y).sum(),
        (x * y).sum(),
    )


def test_ratio_cuped_matches_unit_level_linearisation() -> None:
    """Independent route: linearise each unit, then plain (co)variances and the CUPED formula."""
    rng = np.random.default_rng(34)
    arms = [_ratio_values(rng, 3000, 0.0), _ratio_values(rng, 2000, 0.03)]
    lin = []
    for m, d, x, y in arms:
        r_post, r_pre = m.sum() / d.sum(), x.sum() / y.sum()
        lin.append(((m - r_post * d) / d.mean(), (x - r_pre * y) / y.mean(), r_post, r_pre))
    cov = [np.cov(post, pre, ddof=1) for post, pre, _, _ in lin]
    n = [arm[0].size for arm in arms]
    theta = sum(c[0, 1] / k for c, k in zip(cov, n, strict=True)) / sum(
        c[1, 1] / k for c, k in zip(cov, n, strict=True)
    )
    var = sum(
        (c[0, 0] + theta**2 * c[1, 1] - 2 * theta * c[0, 1]) / k
        for c, k in zip(cov, n, strict=True)
    )
    effect = (lin[1][2] - theta * lin[1][3]) - (lin[0][2] - theta * lin[0][3])
    res = compare(_cuped_ratio(*arms[0]), _cuped_ratio(*arms[1]), difference="absolute")
    assert close(res.effect, effect, rtol=1e-9) and close(res.se, np.sqrt(var), rtol=1e-9)
    plain = compare(
        *(
            RatioStats(float(m.size), m.sum(), (m**2).sum(), d.sum(), (d**2).sum(), (m * d).sum())
            for m, d, _, _ in arms
        ),
        difference="absolute",
    )
    assert res.se < 0.8 * plain.se  # the covariate is informative here


def test_ratio_cuped_without_pre_period_data_is_the_plain_ratio() -> None:
    rng = np.random.default_rng(35)
    arms = []
    for lift in (0.0, 0.05):
        m, d, _, _ = _ratio_values(rng, 1000, lift)
        arms.append((m, d, np.zeros_like(m), np.zeros_like(d)))
    res = compare(_cuped_ratio(*arms[0]), _cuped_ratio(*arms[1]))
    plain = compare(
        *(
            RatioStats(float(m.size), m.sum(), (m**2).sum(), d.sum(), (d**2).sum(), (m * d).sum())
            for m, d, _, _ in arms
        )
    )
    assert res.error is None
    assert close(res.effect, plain.effect) and close(res.se, plain.se)


def test_cuped_intervals_cover_the_planted_effect() -> None:
    """Mean and ratio CUPED intervals: coverage 95% ± 1.5% (3 binomial SE at 2,000 runs)."""
    rng = np.random.default_rng(36)
    n_sims, n = sims(2000, 20000), 400
    lift = 0.04

    def mean_arm(shift: float) -> list[object]:
        out = []
        for _ in range(n_sims):
            out.append(cuped_from_values(*_arm(rng, n, shift, 0.8)))
        return out

    res = compare_many(mean_arm(0.0), mean_arm(lift), difference="absolute")
    truth = 10.0 * lift
    assert abs(np.mean((res.ci_low <= truth) & (truth <= res.ci_high)) - 0.95) <= 0.015

    ratios = [
        (_cuped_ratio(*_ratio_values(rng, n, 0.0)), _cuped_ratio(*_ratio_values(rng, n, lift)))
        for _ in range(n_sims)
    ]
    res = compare_many([c for c, _ in ratios], [t for _, t in ratios])
    # True relative effect of the ratio metric: spend scales by (1 + lift) exactly in expectation.
    assert abs(np.mean((res.ci_low <= lift) & (lift <= res.ci_high)) - 0.95) <= 0.015
