"""Simulation harness: checks the engine's error rates and coverage by brute force.

Thousands of experiments are simulated at once, as arrays, and analysed in one vectorised
call. Where the data are normal the sufficient statistics are drawn directly (exact: the mean
is N(μ, σ²/n) and (n−1)s²/σ² is χ²ₙ₋₁, independently), which makes 100,000 experiments cheap;
skewed and ratio data are drawn unit by unit. The tests run these at a size that fits CI and
larger with ``LIFTKIT_SLOW=1``; docs/stats.md lists the measured figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liftkit.stats._engine import Difference, Engine, compare_many
from liftkit.stats._sufficient import MeanStats, ProportionStats
from liftkit.stats.srm import srm_check_many

__all__ = [
    "PeekingRates",
    "aa_false_positive_rate",
    "coverage",
    "normal_stats",
    "peeking_false_positive_rates",
    "proportion_stats",
    "srm_alarm_rate",
]


def normal_stats(
    rng: np.random.Generator, n: int, mean: float, sd: float, size: int | tuple[int, ...]
) -> MeanStats:
    """Exact sufficient statistics of ``size`` independent samples of n normal values."""
    xbar = rng.normal(mean, sd / np.sqrt(n), size)
    ss_within = sd**2 * rng.chisquare(n - 1, size)
    return MeanStats(
        n=np.full(np.shape(xbar), float(n)), sum=n * xbar, sum_squares=ss_within + n * xbar**2
    )


def proportion_stats(
    rng: np.random.Generator, n: int, p: float, size: int | tuple[int, ...]
) -> ProportionStats:
    """Sufficient statistics of ``size`` independent samples of n Bernoulli(p) units."""
    conversions = rng.binomial(n, p, size).astype(np.float64)
    return ProportionStats(n=np.full(np.shape(conversions), float(n)), sum=conversions)


def lognormal_stats(
    rng: np.random.Generator, n: int, sigma: float, size: int, scale: float = 1.0
) -> MeanStats:
    """Sufficient statistics of skewed (log-normal, e.g. revenue) data drawn unit by unit."""
    x = scale * rng.lognormal(0.0, sigma, (size, n))
    return MeanStats(n=np.full(size, float(n)), sum=x.sum(axis=1), sum_squares=(x**2).sum(axis=1))


def aa_false_positive_rate(
    n_sims: int,
    *,
    kind: str = "normal",
    n: int = 1000,
    alpha: float = 0.05,
    difference: Difference = "relative",
    sequential_tuning: float | None = None,
    seed: int = 0,
) -> float:
    """Share of A/A experiments (no true effect) declared significant at ``alpha``."""
    rng = np.random.default_rng(seed)
    a: MeanStats | ProportionStats
    b: MeanStats | ProportionStats
    if kind == "normal":
        a, b = normal_stats(rng, n, 10.0, 3.0, n_sims), normal_stats(rng, n, 10.0, 3.0, n_sims)
    elif kind == "binomial":
        a, b = proportion_stats(rng, n, 0.1, n_sims), proportion_stats(rng, n, 0.1, n_sims)
    elif kind == "lognormal":
        a, b = lognormal_stats(rng, n, 1.0, n_sims), lognormal_stats(rng, n, 1.0, n_sims)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    res = compare_many(
        a,
        b,
        alpha=alpha,
        difference=difference,
        sequential_tuning=sequential_tuning,
    )
    assert res.p_value is not None
    return float(np.mean(res.ok & (res.p_value < alpha)))


@dataclass(frozen=True)
class PeekingRates:
    """False-positive rates when an A/A test is checked after every batch of data."""

    sequential: float
    naive: float
    final_look_only: float


def peeking_false_positive_rates(
    n_sims: int,
    *,
    looks: int = 20,
    n_per_look: int = 100,
    alpha: float = 0.05,
    seed: int = 0,
) -> PeekingRates:
    """Daily peeking: stop at the first significant look (sequential CS vs repeated t-tests).

    Each look adds ``n_per_look`` normal units per arm; the statistics accumulate exactly as
    a warehouse's cumulative query would (sums and sums of squares add). The sequential test is
    tuned to the final total sample size, the natural choice when planning the experiment.
    """
    rng = np.random.default_rng(seed)
    daily_a = normal_stats(rng, n_per_look, 10.0, 3.0, (looks, n_sims))
    daily_b = normal_stats(rng, n_per_look, 10.0, 3.0, (looks, n_sims))

    def cumulative(s: MeanStats) -> MeanStats:
        return MeanStats(
            n=np.cumsum(s.n, axis=0),
            sum=np.cumsum(s.sum, axis=0),
            sum_squares=np.cumsum(s.sum_squares, axis=0),
        )

    a, b = cumulative(daily_a), cumulative(daily_b)
    tuning = 2.0 * looks * n_per_look
    seq = compare_many(a, b, alpha=alpha, sequential_tuning=tuning)
    naive = compare_many(a, b, alpha=alpha)
    assert seq.p_value is not None and naive.p_value is not None
    return PeekingRates(
        sequential=float(np.mean(np.any(seq.p_value < alpha, axis=0))),
        naive=float(np.mean(np.any(naive.p_value < alpha, axis=0))),
        final_look_only=float(np.mean(naive.p_value[-1] < alpha)),
    )


def coverage(
    n_sims: int,
    *,
    n: int = 1000,
    lift: float = 0.05,
    difference: Difference = "relative",
    engine: Engine = "frequentist",
    alpha: float = 0.05,
    seed: int = 0,
) -> float:
    """Share of intervals that contain a planted effect (control mean 10, sd 3)."""
    rng = np.random.default_rng(seed)
    a = normal_stats(rng, n, 10.0, 3.0, n_sims)
    b = normal_stats(rng, n, 10.0 * (1.0 + lift), 3.0, n_sims)
    truth = lift if difference == "relative" else 10.0 * lift
    res = compare_many(
        a,
        b,
        alpha=alpha,
        difference=difference,
        engine=engine,
    )
    return float(np.mean((res.ci_low <= truth) & (truth <= res.ci_high)))


def srm_alarm_rate(
    n_sims: int,
    *,
    n: int = 100_000,
    true_share: float = 0.5,
    weights: tuple[float, float] = (0.5, 0.5),
    threshold: float = 0.001,
    seed: int = 0,
) -> float:
    """Share of experiments flagged for SRM when treatment truly gets ``true_share``."""
    rng = np.random.default_rng(seed)
    treated = rng.binomial(n, true_share, n_sims)
    counts = np.stack([n - treated, treated], axis=-1)
    return float(np.mean(srm_check_many(counts, weights, threshold=threshold).flagged))
