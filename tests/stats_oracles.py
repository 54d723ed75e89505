"""Shared helpers for the statistics tests: random valid inputs and gbstats equivalents.

gbstats is the independent implementation the engine is checked against; these helpers build
the gbstats statistic for the same sufficient statistics, so a test compares like with like.
"""

from __future__ import annotations

import os

import numpy as np
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)

from liftkit.stats import CupedMeanStats, MeanStats, ProportionStats, RatioStats

SLOW = os.environ.get("LIFTKIT_SLOW") == "1"


def sims(ci: int, slow: int) -> int:
    """Simulation size: ``ci`` by default, ``slow`` with LIFTKIT_SLOW=1."""
    return slow if SLOW else ci


def random_mean_stats(
    rng: np.random.Generator,
    n: int | None = None,
    shape: float | None = None,
    scale: float | None = None,
) -> MeanStats:
    """A realistic mean metric from actual unit-level draws (so the statistics are coherent)."""
    size = int(n if n is not None else rng.integers(20, 3000))
    k = shape if shape is not None else rng.uniform(0.5, 3.0)
    theta = scale if scale is not None else rng.uniform(0.5, 20.0)
    x = rng.gamma(k, theta, size)
    return MeanStats(n=float(size), sum=float(x.sum()), sum_squares=float((x**2).sum()))


def random_pair(rng: np.random.Generator, kind: str) -> tuple[object, object]:
    """Control and treatment of one metric, the treatment shifted by up to ±10%."""
    lift = rng.uniform(-0.1, 0.1)
    if kind == "mean":
        k, theta = rng.uniform(0.5, 3.0), rng.uniform(0.5, 20.0)
        return (
            random_mean_stats(rng, shape=k, scale=theta),
            random_mean_stats(rng, shape=k, scale=theta * (1 + lift)),
        )
    if kind == "proportion":
        p = rng.uniform(0.02, 0.6)
        n1, n2 = rng.integers(50, 5000, 2)
        return (
            ProportionStats(float(n1), float(rng.binomial(n1, p))),
            ProportionStats(float(n2), float(rng.binomial(n2, p * (1 + lift)))),
        )
    if kind == "ratio":
        return random_ratio_stats(rng), random_ratio_stats(rng, lift)
    raise ValueError(kind)


def random_proportion_stats(rng: np.random.Generator) -> ProportionStats:
    n = int(rng.integers(50, 5000))
    return ProportionStats(n=float(n), sum=float(rng.binomial(n, rng.uniform(0.02, 0.6))))


def random_ratio_stats(rng: np.random.Generator, lift: float = 0.0) -> RatioStats:
    n = int(rng.integers(50, 3000))
    d = rng.poisson(3.0, n) + 1.0
    m = rng.gamma(2.0, 1.0 + lift, n) * d
    return RatioStats(
        n=float(n),
        numerator_sum=float(m.sum()),
        numerator_sum_squares=float((m**2).sum()),
        denominator_sum=float(d.sum()),
        denominator_sum_squares=float((d**2).sum()),
        sum_products=float((m * d).sum()),
    )


def cuped_from_values(post: np.ndarray, pre: np.ndarray) -> CupedMeanStats:
    return CupedMeanStats(
        n=float(post.size),
        sum=float(post.sum()),
        sum_squares=float((post**2).sum()),
        pre_sum=float(pre.sum()),
        pre_sum_squares=float((pre**2).sum()),
        sum_products=float((post * pre).sum()),
    )


def to_gbstats(s: object) -> object:
    """The gbstats statistic for the same sufficient statistics."""
    if isinstance(s, MeanStats):
        return SampleMeanStatistic(n=int(s.n), sum=s.sum, sum_squares=s.sum_squares)
    if isinstance(s, ProportionStats):
        return ProportionStatistic(n=int(s.n), sum=s.sum)
    if isinstance(s, RatioStats):
        return RatioStatistic(
            n=int(s.n),
            m_statistic=SampleMeanStatistic(
                n=int(s.n), sum=s.numerator_sum, sum_squares=s.numerator_sum_squares
            ),
            d_statistic=SampleMeanStatistic(
                n=int(s.n), sum=s.denominator_sum, sum_squares=s.denominator_sum_squares
            ),
            m_d_sum_of_products=s.sum_products,
        )
    if isinstance(s, CupedMeanStats):
        return RegressionAdjustedStatistic(
            n=int(s.n),
            post_statistic=SampleMeanStatistic(n=int(s.n), sum=s.sum, sum_squares=s.sum_squares),
            pre_statistic=SampleMeanStatistic(
                n=int(s.n), sum=s.pre_sum, sum_squares=s.pre_sum_squares
            ),
            post_pre_sum_of_products=s.sum_products,
            theta=0,
        )
    raise TypeError(type(s))


def close(actual: float, expected: float, rtol: float = 1e-6, atol: float = 1e-12) -> bool:
    return bool(np.isclose(actual, expected, rtol=rtol, atol=atol))
