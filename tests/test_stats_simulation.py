"""Error rates and coverage by simulation (the harness is liftkit.stats.simulate).

Tolerances follow the binomial standard error of a simulated rate. At 2,000 experiments
that is √(0.05·0.95/2000) ≈ 0.49%, so "5% ± 1%" is only ≈ 2 SE: a correct engine fails it for
about one seed in twenty (seed 0 here gives 6.15% for the absolute normal case, 2.3 SE). Since
sufficient statistics of normal and binomial data can be drawn directly, CI runs 20,000
experiments instead (SE 0.15%, so ± 1% is ≈ 6.5 SE and coverage ± 1.5% ≈ 10 SE), and 200,000
with LIFTKIT_SLOW=1, where the rate must also sit within 3 SE of its target. Scenarios drawn
unit by unit use 2,000 (20,000 slow). Seeds are fixed, so every run is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from liftkit.stats import MeanStats, compare_many, simulate
from stats_oracles import SLOW, sims

N_SIMS = sims(20000, 200000)


def _rate_within(rate: float, target: float, tolerance: float, n: int) -> None:
    assert abs(rate - target) <= tolerance, (rate, target)
    if SLOW:
        assert abs(rate - target) <= 3 * np.sqrt(target * (1 - target) / n), (rate, target)


@pytest.mark.parametrize("difference", ["relative", "absolute"])
@pytest.mark.parametrize(("kind", "n"), [("normal", 1000), ("binomial", 2000)])
def test_aa_false_positive_rate(kind: str, n: int, difference: str) -> None:
    rate = simulate.aa_false_positive_rate(N_SIMS, kind=kind, n=n, difference=difference)
    _rate_within(rate, 0.05, 0.01, N_SIMS)


def test_aa_false_positive_rate_on_skewed_revenue_data() -> None:
    """Log-normal (σ = 1) values drawn unit by unit: Welch's test relies on the CLT here."""
    n_sims = sims(2000, 20000)
    rate = simulate.aa_false_positive_rate(n_sims, kind="lognormal", n=1000, difference="absolute")
    _rate_within(rate, 0.05, 0.01, n_sims)


@pytest.mark.parametrize("difference", ["relative", "absolute"])
def test_confidence_intervals_cover_a_planted_effect(difference: str) -> None:
    rate = simulate.coverage(N_SIMS, lift=0.05, difference=difference, seed=1)
    _rate_within(rate, 0.95, 0.015, N_SIMS)


def test_confidence_sequence_covers_at_every_look_at_once() -> None:
    """Time-uniform coverage: the share of experiments whose sequence *ever* misses the
    planted effect over 20 looks must be ≤ 5%."""
    rng = np.random.default_rng(2)
    looks, n_sims = 20, sims(5000, 50000)
    arms = []
    for mean in (10.0, 10.3):
        daily = simulate.normal_stats(rng, 100, mean, 3.0, (looks, n_sims))
        arms.append(
            MeanStats(
                np.cumsum(daily.n, 0), np.cumsum(daily.sum, 0), np.cumsum(daily.sum_squares, 0)
            )
        )
    res = compare_many(arms[0], arms[1], difference="absolute", sequential_tuning=4000.0)
    ever_missed = np.any((res.ci_low > 0.3) | (res.ci_high < 0.3), axis=0)
    assert ever_missed.mean() <= 0.05


def test_peeking_with_and_without_sequential_testing() -> None:
    rates = simulate.peeking_false_positive_rates(N_SIMS, looks=20, n_per_look=100, seed=3)
    assert rates.sequential <= 0.05
    assert rates.naive > 0.15
