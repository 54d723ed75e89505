"""Sequential testing: asymptotic confidence sequences, valid however often you look.

A confidence sequence covers the effect at every sample size simultaneously with probability
1 − α, so a team may check results daily and stop whenever they like (Waudby-Smith, Arbour,
Sinha, Kennedy & Ramdas 2023, "Time-uniform central limit theory and asymptotic confidence
sequences", arXiv:2103.06476; the form gbstats uses). With N units in total and per-unit
variance s² = N·Var(Δ̂), the two-sided half-width is

    s · √( 2(Nρ² + 1) / (N²ρ²) · log(√(Nρ² + 1) / α) ),

and the one-sided one replaces the log term by log(1 + √(Nρ² + 1) / (2α)). The mixing
parameter ρ is chosen so the interval is tightest at the *tuning* sample size N* (the expected
total sample size): ρ² = (−2 log α' + log(−2 log α' + 1)) / N*, with α' = α two-sided and 2α
one-sided. Wrong N* costs width, never validity.

p-values are the smallest α whose sequence excludes the null, at the ρ of the configured α,
so ``p ≤ α`` exactly when the interval excludes the null. Two-sided this is the inverse of the
mixture e-value exp(ρ²N²d²/(2s²(Nρ²+1))) / √(Nρ²+1); one-sided it solves the one-sided
boundary for α in closed form.

The functions are plain numpy arithmetic; the public entry points call them under
``np.errstate(all="ignore")`` and replace the outputs of degenerate elements.
"""

from __future__ import annotations

import numpy as np

from liftkit.stats._sufficient import FloatArray
from liftkit.stats.frequentist import Alternative

__all__ = ["halfwidth", "interval", "p_value", "rho"]

_MAX_EXPONENT = 700.0  # exp() overflows just above 709; larger exponents mean p ≈ 0 anyway.


def rho(alpha: FloatArray | float, tuning: FloatArray | float, *, two_sided: bool) -> FloatArray:
    """Mixing parameter that makes the sequence tightest at ``tuning`` total units."""
    a = np.asarray(alpha, dtype=np.float64) * (1.0 if two_sided else 2.0)
    log_term = -2.0 * np.log(a)
    return np.asarray(np.sqrt((log_term + np.log(log_term + 1.0)) / tuning), dtype=np.float64)


def halfwidth(
    variance: FloatArray,
    n_total: FloatArray,
    alpha: FloatArray | float,
    tuning: FloatArray | float,
    *,
    two_sided: bool,
) -> FloatArray:
    """Half-width of the confidence sequence for an effect with sampling variance ``variance``."""
    r2 = rho(alpha, tuning, two_sided=two_sided) ** 2
    nr2 = n_total * r2
    if two_sided:
        log_term = np.log(np.sqrt(nr2 + 1.0) / alpha)
    else:
        log_term = np.log1p(np.sqrt(nr2 + 1.0) / (2.0 * np.asarray(alpha)))
    s2 = variance * n_total
    return np.asarray(
        np.sqrt(s2 * 2.0 * (nr2 + 1.0) / (nr2 * n_total) * log_term), dtype=np.float64
    )


def interval(
    effect: FloatArray,
    variance: FloatArray,
    n_total: FloatArray,
    alpha: FloatArray | float,
    tuning: FloatArray | float,
    alternative: Alternative,
) -> tuple[FloatArray, FloatArray]:
    """The confidence sequence at the current sample size."""
    width = halfwidth(variance, n_total, alpha, tuning, two_sided=alternative == "two-sided")
    inf = np.full(np.shape(effect), np.inf)
    if alternative == "two-sided":
        return effect - width, effect + width
    if alternative == "greater":
        return effect - width, inf
    return -inf, effect + width


def p_value(
    effect: FloatArray,
    variance: FloatArray,
    n_total: FloatArray,
    null: FloatArray | float,
    alpha: FloatArray | float,
    tuning: FloatArray | float,
    alternative: Alternative,
) -> FloatArray:
    """Anytime-valid p-value of the null, consistent with :func:`interval` at ``alpha``."""
    two_sided = alternative == "two-sided"
    r2 = rho(alpha, tuning, two_sided=two_sided) ** 2
    nr2 = n_total * r2
    d = effect - null
    s2 = variance * n_total
    # d² / (s² · 2(Nρ²+1)/(N²ρ²)): the squared distance in units of the boundary's scale.
    scaled = np.minimum(d**2 * nr2 * n_total / (s2 * 2.0 * (nr2 + 1.0)), _MAX_EXPONENT)
    root = np.sqrt(nr2 + 1.0)
    if two_sided:
        p = root * np.exp(-scaled)
    else:
        p = root / (2.0 * np.expm1(scaled))  # +inf (so 1 below) when the effect is at null
        wrong_side = d <= 0 if alternative == "greater" else d >= 0
        p = np.where(wrong_side, 1.0, p)
    return np.asarray(np.minimum(p, 1.0), dtype=np.float64)
