"""CUPED: regression adjustment on a pre-exposure covariate (Deng, Xu, Kohavi & Walker 2013).

The adjusted estimate of each arm is ``Ȳ − θ·X̄`` with one θ pooled over both arms. Because θ
is the same in both arms, ``θ·(X̄_t − X̄_c)`` has expectation zero under randomisation, so the
adjusted difference is unbiased for the same effect as the unadjusted one, with variance
reduced by the share of variance the covariate explains. Relative effects keep the unadjusted
control mean as their base (as gbstats does), so CUPED changes precision, not the estimand.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from liftkit.stats._moments import (
    ArmMoments,
    covariance,
    denoise,
    f64,
    mean_and_variance,
    ratio_moments,
    safe_div,
)
from liftkit.stats._sufficient import CupedMeanStats, CupedRatioStats, FloatArray

__all__ = ["adjusted_mean_moments", "adjusted_ratio_moments", "mean_theta", "ratio_theta"]


def mean_theta(control: CupedMeanStats, treatment: CupedMeanStats) -> FloatArray:
    """θ = Cov(Y, X) / Var(X) on both arms pooled (gbstats' choice); 0 if either is constant.

    θ = 0 means no adjustment, which is what a covariate without variance can justify.
    """
    n = f64(control.n) + f64(treatment.n)
    s = f64(control.sum) + f64(treatment.sum)
    _, var_post = mean_and_variance(n, s, f64(control.sum_squares) + f64(treatment.sum_squares))
    x = f64(control.pre_sum) + f64(treatment.pre_sum)
    _, var_pre = mean_and_variance(
        n, x, f64(control.pre_sum_squares) + f64(treatment.pre_sum_squares)
    )
    cov = covariance(n, s, x, f64(control.sum_products) + f64(treatment.sum_products))
    usable = (var_pre > 0) & (var_post > 0) & np.isfinite(cov)
    return np.where(usable, safe_div(cov, var_pre), 0.0)


def _adjusted_mean(s: CupedMeanStats, theta: FloatArray) -> ArmMoments:
    n = f64(s.n)
    mean_post, var_post = mean_and_variance(n, f64(s.sum), f64(s.sum_squares))
    mean_pre, var_pre = mean_and_variance(n, f64(s.pre_sum), f64(s.pre_sum_squares))
    cov = covariance(n, f64(s.sum), f64(s.pre_sum), f64(s.sum_products))
    direct = var_post + theta**2 * var_pre
    var = denoise(direct - 2.0 * theta * cov, direct)
    return ArmMoments(n, mean_post - theta * mean_pre, mean_post, var)


def adjusted_mean_moments(
    control: CupedMeanStats, treatment: CupedMeanStats
) -> tuple[ArmMoments, ArmMoments]:
    """CUPED-adjusted moments of both arms of a mean metric."""
    theta = mean_theta(control, treatment)
    return _adjusted_mean(control, theta), _adjusted_mean(treatment, theta)


def _linearised(
    s: CupedRatioStats,
) -> tuple[
    FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]
]:
    """Post ratio, pre ratio, and the per-unit (co)variances of their linearisations.

    With g_post = (1/d̄, −m̄/d̄², 0, 0) and g_pre = (0, 0, 1/ȳ, −x̄/ȳ²) the gradients of m̄/d̄
    and x̄/ȳ, the delta method gives Var = gᵀΣg and Cov = g_postᵀΣg_pre, where Σ is the 4×4
    per-unit covariance of (m, d, x, y).
    """
    n = f64(s.n)
    m, d, x, y = (
        f64(s.numerator_sum),
        f64(s.denominator_sum),
        f64(s.pre_numerator_sum),
        f64(s.pre_denominator_sum),
    )
    r_post, v_post, mean_d = ratio_moments(
        n,
        m,
        f64(s.numerator_sum_squares),
        d,
        f64(s.denominator_sum_squares),
        f64(s.numerator_denominator_products),
    )
    r_pre, v_pre, mean_y = ratio_moments(
        n,
        x,
        f64(s.pre_numerator_sum_squares),
        y,
        f64(s.pre_denominator_sum_squares),
        f64(s.pre_numerator_pre_denominator_products),
    )
    # Without pre-period denominators (e.g. only new users) the pre ratio is undefined: its
    # gradient is set to zero, so θ = 0 and the metric is analysed unadjusted.
    g_m, g_d = 1.0 / mean_d, -(m / n) / mean_d**2
    g_x, g_y = safe_div(1.0, mean_y), -safe_div(x / n, mean_y**2)
    c_mx = covariance(n, m, x, f64(s.numerator_pre_numerator_products))
    c_my = covariance(n, m, y, f64(s.numerator_pre_denominator_products))
    c_dx = covariance(n, d, x, f64(s.denominator_pre_numerator_products))
    c_dy = covariance(n, d, y, f64(s.denominator_pre_denominator_products))
    cov = g_m * g_x * c_mx + g_m * g_y * c_my + g_d * g_x * c_dx + g_d * g_y * c_dy
    r_pre = np.where(mean_y != 0, r_pre, 0.0)
    v_pre = np.where(mean_y != 0, v_pre, 0.0)
    zero_den: npt.NDArray[np.bool_] = mean_d == 0
    return n, r_post, r_pre, v_post, v_pre, cov, zero_den


def ratio_theta(control: CupedRatioStats, treatment: CupedRatioStats) -> FloatArray:
    """θ minimising the variance of the adjusted difference: Σ C_k/n_k / Σ V_pre,k/n_k.

    This pools both arms, weighting each by its sampling precision; 0 without pre variance.
    """
    na, _, _, _, va, ca, _ = _linearised(control)
    nb, _, _, _, vb, cb, _ = _linearised(treatment)
    num, den = ca / na + cb / nb, va / na + vb / nb
    return np.where((den > 0) & np.isfinite(num), safe_div(num, den), 0.0)


def adjusted_ratio_moments(
    control: CupedRatioStats, treatment: CupedRatioStats
) -> tuple[ArmMoments, ArmMoments, npt.NDArray[np.bool_]]:
    """CUPED-adjusted moments of both arms of a ratio metric, and a zero-denominator mask."""
    arms = (_linearised(control), _linearised(treatment))
    na, _, _, _, va, ca, _ = arms[0]
    nb, _, _, _, vb, cb, _ = arms[1]
    num, den = ca / na + cb / nb, va / na + vb / nb
    theta = np.where((den > 0) & np.isfinite(num), safe_div(num, den), 0.0)
    out: list[ArmMoments] = []
    for n, r_post, r_pre, v_post, v_pre, cov, _ in arms:
        direct = v_post + theta**2 * v_pre
        var = denoise(direct - 2.0 * theta * cov, direct)
        out.append(ArmMoments(n, r_post - theta * r_pre, r_post, var))
    zero_den = arms[0][6] | arms[1][6]
    return out[0], out[1], zero_den
