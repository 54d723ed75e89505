"""Fixed-horizon frequentist comparison: Welch's t-test on absolute or relative effects.

Absolute effect: Δ = μ̂_t − μ̂_c with Var = σ²_t/n_t + σ²_c/n_c and Welch–Satterthwaite degrees
of freedom (Welch 1947). Relative effect: Δ/|μ_c|, with the delta-method variance
σ²_t/(μ_c² n_t) + σ²_c μ_t²/(μ_c⁴ n_c) (as in gbstats; Kohavi, Tang & Xu 2020, ch. 18), tested
with the same degrees of freedom. Dividing by |μ_c| rather than μ_c keeps "positive means the
treatment is higher" true for metrics whose control mean is negative.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import special

from liftkit.stats._moments import ArmMoments
from liftkit.stats._sufficient import FloatArray

__all__ = ["Alternative", "effect_and_variance", "interval", "p_value", "welch_dof"]

Alternative = Literal["two-sided", "greater", "less"]


def effect_and_variance(
    a: ArmMoments, b: ArmMoments, *, relative: bool
) -> tuple[FloatArray, FloatArray]:
    """Point estimate of the effect of ``b`` over ``a`` and its sampling variance.

    Plain arithmetic (call under ``np.errstate(all="ignore")``): degenerate elements come out
    non-finite and are replaced by the caller.
    """
    diff = b.mean - a.mean
    var_abs_b = b.variance / b.n
    var_abs_a = a.variance / a.n
    if not relative:
        return diff, var_abs_b + var_abs_a
    base2 = a.raw_mean**2
    effect = diff / np.abs(a.raw_mean)
    return effect, (var_abs_b + var_abs_a * b.raw_mean**2 / base2) / base2


def welch_dof(a: ArmMoments, b: ArmMoments) -> FloatArray:
    """Welch–Satterthwaite degrees of freedom.

    Written with the arms' shares of the variance, (Σv)²/Σ(v²/(n−1)) = 1/Σ(w²/(n−1)), so it is
    scale-free: tiny or huge variances cannot underflow or overflow it.
    """
    va, vb = a.variance / a.n, b.variance / b.n
    total = va + vb
    wa, wb = va / total, vb / total
    out: FloatArray = 1.0 / (wa**2 / (a.n - 1.0) + wb**2 / (b.n - 1.0))
    return out


def interval(
    effect: FloatArray,
    se: FloatArray,
    dof: FloatArray,
    alpha: FloatArray | float,
    alternative: Alternative,
) -> tuple[FloatArray, FloatArray]:
    """Student-t confidence interval; one-sided alternatives give a half-line."""
    if alternative == "two-sided":
        width = special.stdtrit(dof, 1.0 - np.asarray(alpha) / 2.0) * se
        return effect - width, effect + width
    width = special.stdtrit(dof, 1.0 - np.asarray(alpha)) * se
    inf = np.full(np.shape(effect), np.inf)
    if alternative == "greater":
        return effect - width, inf
    return -inf, effect + width


def p_value(
    effect: FloatArray,
    se: FloatArray,
    dof: FloatArray,
    null: FloatArray | float,
    alternative: Alternative,
) -> FloatArray:
    """p-value of H0: effect = null (two-sided), ≤ null ("greater") or ≥ null ("less")."""
    t = (effect - null) / se
    if alternative == "two-sided":
        p: FloatArray = 2.0 * special.stdtr(dof, -np.abs(t))
    elif alternative == "greater":
        p = special.stdtr(dof, -t)
    else:
        p = special.stdtr(dof, t)
    return p
