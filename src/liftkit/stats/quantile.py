"""Quantile metrics (e.g. p50 / p90 latency per user), compared through their standard errors.

The sampling distribution of a sample quantile is asymptotically normal with variance
ν(1−ν) / (n f(q)²), which needs the density f at the quantile: unknown in practice. The
distribution-free way round it (as in gbstats): the warehouse also returns the two order
statistics that bound a 95% binomial interval for the quantile, and half the interval's width
divided by z₀.₉₇₅ is the standard error. From there the quantile is a mean-like estimate with a
per-unit variance and enters the same Welch / sequential / Bayesian machinery.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from liftkit.stats._moments import ArmMoments, f64
from liftkit.stats._sufficient import QuantileStats

__all__ = ["quantile_moments", "quantile_stats_from_values", "too_few_units"]

Z_95 = 1.959963984540054  # Φ⁻¹(0.975): the level the order-statistic bounds are computed at.


def quantile_moments(s: QuantileStats) -> ArmMoments:
    """Per-unit variance ``(n*/n)(n−1)·((upper − lower) / 2z)²`` around the quantile estimate."""
    n = f64(s.n)
    n_star = n if s.n_star is None else f64(s.n_star)
    se_star = (f64(s.quantile_upper) - f64(s.quantile_lower)) / (2.0 * Z_95)
    var = n_star / n * (n - 1.0) * se_star**2
    q = f64(s.quantile)
    return ArmMoments(n, q, q, var)


def too_few_units(s: QuantileStats) -> npt.NDArray[np.bool_]:
    """True where the binomial interval would reach past rank 1 or rank n (normal approx fails).

    That is n ≤ z²ν/(1−ν) or n ≤ z²(1−ν)/ν: e.g. a p99 needs more than 380 units.
    """
    n, nu = f64(s.n), f64(s.nu)
    out: npt.NDArray[np.bool_] = (n <= Z_95**2 * nu / (1.0 - nu)) | (n <= Z_95**2 * (1.0 - nu) / nu)
    return out


def quantile_stats_from_values(values: npt.ArrayLike, nu: float) -> QuantileStats:
    """The statistics a warehouse returns for a quantile, computed from unit-level values.

    Estimate: the order statistic of rank ⌈nν⌉ (inverse of the empirical CDF). Bounds: ranks
    ⌊nν − z√(nν(1−ν))⌋ and ⌈nν + z√(nν(1−ν))⌉ (clipped to 1…n), because the number of units at
    or below the true quantile is Binomial(n, ν). The SQL generator mirrors these ranks.
    """
    if not 0.0 < nu < 1.0:
        raise ValueError("nu must be in (0, 1)")
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = x.size
    if n == 0:
        return QuantileStats(n=0.0, nu=nu, quantile=0.0, quantile_lower=0.0, quantile_upper=0.0)
    half = Z_95 * math.sqrt(n * nu * (1.0 - nu))
    rank = min(max(math.ceil(n * nu), 1), n)
    lower = min(max(math.floor(n * nu - half), 1), n)
    upper = min(max(math.ceil(n * nu + half), 1), n)
    return QuantileStats(
        n=float(n),
        nu=nu,
        quantile=float(x[rank - 1]),
        quantile_lower=float(x[lower - 1]),
        quantile_upper=float(x[upper - 1]),
    )
