"""Reduce each variation's sufficient statistics to the moments every test works from.

All tests (Welch, sequential, Bayesian, power) only need, per arm: the unit count ``n``, the
point estimate of the arm's mean (CUPED-adjusted where applicable), the unadjusted mean (the
base of relative effects) and the per-unit variance of that estimate (so that its sampling
variance is ``variance / n``). Computing them once here is what lets every metric type share
one code path.

Speed matters here (one call analyses thousands of comparisons in microseconds), so the
arithmetic is plain numpy and must run under ``np.errstate(all="ignore")``: where n < 2 or a
denominator is zero the moments may be NaN or infinite, and the caller flags those elements
(see ``Issues``) and replaces their outputs. ``safe_div`` is used only where a zero
denominator has a meaningful answer (e.g. no covariance → no CUPED adjustment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liftkit.stats._sufficient import FloatArray, MeanStats, ProportionStats, RatioStats


@dataclass(frozen=True)
class ArmMoments:
    """Per-arm moments; every field has the broadcast shape of the input."""

    n: FloatArray
    mean: FloatArray
    raw_mean: FloatArray
    variance: FloatArray


def f64(x: object) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def safe_div(num: object, den: object, default: float = 0.0) -> FloatArray:
    """``num / den`` where ``den != 0``, ``default`` elsewhere, without floating-point warnings."""
    num_a, den_a = f64(num), f64(den)
    out = np.full(np.broadcast(num_a, den_a).shape, default, dtype=np.float64)
    np.divide(num_a, den_a, out=out, where=den_a != 0)
    return out


def mean_and_variance(
    n: FloatArray, s: FloatArray, ss: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Sample mean and unbiased sample variance from n, Σx, Σx² (not finite where n < 2).

    Σx² − (Σx)²/n cancels catastrophically for (near-)constant data: what is left below
    ``RELATIVE_NOISE``·Σx² is rounding error, not variance, and is set to exactly 0. This keeps
    "zero variance" independent of the metric's units.
    """
    mean = s / n
    return mean, denoise(ss - s * mean, ss) / (n - 1.0)


RELATIVE_NOISE = 1e-12


def denoise(value: FloatArray, scale: FloatArray) -> FloatArray:
    """``value`` where it exceeds rounding noise relative to ``scale``, else 0 (never < 0)."""
    out: FloatArray = np.where(value > RELATIVE_NOISE * np.abs(scale), value, 0.0)
    return out


def covariance(n: FloatArray, s1: FloatArray, s2: FloatArray, sp: FloatArray) -> FloatArray:
    """Unbiased sample covariance from n, Σx, Σy, Σxy (not finite where n < 2)."""
    out: FloatArray = (sp - s1 * s2 / n) / (n - 1.0)
    return out


def mean_moments(s: MeanStats) -> ArmMoments:
    n = f64(s.n)
    mean, var = mean_and_variance(n, f64(s.sum), f64(s.sum_squares))
    return ArmMoments(n, mean, mean, var)


def proportion_moments(s: ProportionStats) -> ArmMoments:
    n = f64(s.n)
    p = f64(s.sum) / n
    return ArmMoments(n, p, p, np.maximum(p * (1.0 - p), 0.0))


def ratio_moments(
    n: FloatArray,
    m: FloatArray,
    mm: FloatArray,
    d: FloatArray,
    dd: FloatArray,
    md: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Ratio ``Σm / Σd`` and its per-unit delta-method variance; also the denominator mean.

    Var(m̄/d̄) ≈ (σ²_m/μ_d² − 2σ_md μ_m/μ_d³ + μ_m² σ²_d/μ_d⁴) / n (Deng et al. 2018).
    """
    mean_m, var_m = mean_and_variance(n, m, mm)
    mean_d, var_d = mean_and_variance(n, d, dd)
    cov_md = covariance(n, m, d, md)
    ratio = m / d
    inv_d: FloatArray = 1.0 / mean_d
    inv_d2 = inv_d * inv_d
    direct: FloatArray = var_m * inv_d2 + mean_m * mean_m * var_d * inv_d2 * inv_d2
    variance: FloatArray = direct - 2.0 * cov_md * mean_m * inv_d2 * inv_d
    return ratio, denoise(variance, direct), mean_d


def ratio_arm(s: RatioStats) -> tuple[ArmMoments, FloatArray]:
    n = f64(s.n)
    ratio, var, mean_d = ratio_moments(
        n,
        f64(s.numerator_sum),
        f64(s.numerator_sum_squares),
        f64(s.denominator_sum),
        f64(s.denominator_sum_squares),
        f64(s.sum_products),
    )
    return ArmMoments(n, ratio, ratio, var), mean_d
