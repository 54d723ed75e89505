"""Power analysis: statsmodels equality, round trips, and achieved power by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower

from liftkit.stats import (
    MeanStats,
    compare_many,
    expected_duration,
    mid_experiment_power,
    minimum_detectable_effect,
    power,
    sample_size,
    simulate,
)
from stats_oracles import sims


@pytest.mark.parametrize("share", [0.5, 0.2])
@pytest.mark.parametrize("sides", ["two-sided", "one-sided"])
def test_absolute_power_matches_statsmodels(share: float, sides: str) -> None:
    ref = NormalIndPower()
    alt = "two-sided" if sides == "two-sided" else "larger"
    for effect_size in (0.02, 0.1, 0.3):
        sd = 3.0
        n_control = ref.solve_power(
            effect_size=effect_size,
            alpha=0.05,
            power=0.8,
            ratio=share / (1 - share),
            alternative=alt,
        )
        total = n_control / (1 - share)
        ours = power(
            total,
            mean=10.0,
            variance=sd**2,
            mde=effect_size * sd,
            difference="absolute",
            treatment_share=share,
            alternative=sides,
        )  # type: ignore[arg-type]
        assert abs(ours - 0.8) < 1e-6  # statsmodels' root finder stops near 1e-8  # type: ignore[operator]
        needed = sample_size(
            mean=10.0,
            variance=sd**2,
            mde=effect_size * sd,
            difference="absolute",
            treatment_share=share,
            alternative=sides,
        )  # type: ignore[arg-type]
        assert 0 <= needed - total < 1 + 1e-6 * total  # type: ignore[operator]
        mde = minimum_detectable_effect(
            total,
            mean=10.0,
            variance=sd**2,
            difference="absolute",
            treatment_share=share,
            alternative=sides,
        )  # type: ignore[arg-type]
        assert abs(mde / (effect_size * sd) - 1) < 1e-6  # type: ignore[operator]


@pytest.mark.parametrize("tuning", [None, 20000.0])
def test_relative_round_trip(tuning: float | None) -> None:
    n = sample_size(mean=0.1, variance=0.09, mde=0.05, sequential_tuning=tuning)
    assert power(n, mean=0.1, variance=0.09, mde=0.05, sequential_tuning=tuning) >= 0.8  # type: ignore[operator]
    assert power(n - 1, mean=0.1, variance=0.09, mde=0.05, sequential_tuning=tuning) < 0.8  # type: ignore[operator]
    mde = minimum_detectable_effect(n, mean=0.1, variance=0.09, sequential_tuning=tuning)
    assert 0.049 < mde <= 0.05  # type: ignore[operator]


def test_sequential_designs_need_more_units() -> None:
    fixed = sample_size(mean=10.0, variance=9.0, mde=0.02)
    seq = sample_size(mean=10.0, variance=9.0, mde=0.02, sequential_tuning=fixed)
    assert fixed < seq < 3 * fixed  # type: ignore[operator]


def test_vectorised_over_metrics() -> None:
    means = np.array([0.05, 0.1, 10.0])
    variances = means * (1 - means)
    variances[2] = 9.0
    n = sample_size(mean=means, variance=variances, mde=0.05)
    assert np.shape(n) == (3,)
    for i in range(3):
        assert n[i] == sample_size(mean=means[i], variance=variances[i], mde=0.05)  # type: ignore[index]


def test_achieved_power_by_simulation() -> None:
    """At the planned sample size, a true 3% lift is detected 80% ± 3 SE of the time."""
    n_total = int(sample_size(mean=10.0, variance=9.0, mde=0.03))  # type: ignore[arg-type]
    rng = np.random.default_rng(71)
    n_sims = sims(2000, 50000)
    a = simulate.normal_stats(rng, n_total // 2, 10.0, 3.0, n_sims)
    b = simulate.normal_stats(rng, n_total // 2, 10.3, 3.0, n_sims)
    res = compare_many(a, b)
    assert res.p_value is not None
    achieved = np.mean(res.p_value < 0.05)
    assert abs(achieved - 0.8) <= 3 * np.sqrt(0.8 * 0.2 / n_sims)


def test_duration_and_mid_experiment_power() -> None:
    assert expected_duration(10001, 1000) == 11.0
    a = MeanStats(n=2000, sum=20000.0, sum_squares=200000.0 + 9.0 * 1999)
    b = MeanStats(n=2000, sum=20500.0, sum_squares=20500.0**2 / 2000 + 9.0 * 1999)
    now = mid_experiment_power(a, b, mde=0.02)
    later = mid_experiment_power(a, b, mde=0.02, n_total=20000)
    planned = power(4000, mean=10.0, variance=9.0, mde=0.02)
    assert abs(now - planned) < 1e-3 and later > now  # type: ignore[operator]
    # The observed effect (5%) plays no part: same variance, different means, same power.
    b2 = MeanStats(n=2000, sum=20000.0, sum_squares=200000.0 + 9.0 * 1999)
    assert abs(mid_experiment_power(a, b2, mde=0.02) - now) < 1e-3  # type: ignore[operator]
    assert mid_experiment_power(MeanStats(1, 1.0, 1.0), b, mde=0.02) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [{"alpha": 0.0}, {"power": 1.0}, {"mde": 0.0}, {"treatment_share": 1.0}, {"variance": -1.0}],
)
def test_invalid_arguments_raise(kwargs: dict[str, float]) -> None:
    args: dict[str, float] = {"mean": 10.0, "variance": 9.0, "mde": 0.05} | kwargs
    with pytest.raises(ValueError):
        sample_size(**args)  # type: ignore[arg-type]
