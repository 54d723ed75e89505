"""Power analysis: sample size for an MDE, MDE for a sample size, duration, mid-experiment power.

The effect estimate is treated as normal with the standard error the analysis will use, so
planning and analysis agree (Welch's t is the normal at planning-scale n). For an effect δ with
standard error se₀ under the null and se₁ under the alternative, and critical value c:

    power = Φ((δ − c)/se₁) + Φ((−δ − c)/se₁)      (two-sided; one-sided drops the 2nd term)

with c = z₁₋α/₂·se₀ for a fixed-horizon test (z₁₋α one-sided) and c = the confidence
sequence's half-width at the final sample size for a sequential design. The sequential power
is the power of the final look: a lower bound, since a sequential test may also stop earlier.
Relative effects use the delta-method standard error, which depends on δ itself (the
treatment mean is μ(1+δ)); sample size and MDE are found by bisection on the exact power.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from liftkit.stats import sequential
from liftkit.stats._moments import safe_div
from liftkit.stats._pairs import pair_moments
from liftkit.stats._sufficient import FloatArray, SufficientStats, Value

__all__ = [
    "expected_duration",
    "mid_experiment_power",
    "minimum_detectable_effect",
    "power",
    "sample_size",
]

Sides = Literal["two-sided", "one-sided"]
Difference = Literal["relative", "absolute"]
_BISECTION_STEPS = 200


def _out(x: FloatArray) -> Value:
    return float(x) if np.ndim(x) == 0 else x


def _check(alpha: float, share: FloatArray, sides: str, difference: str) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    if np.any((share <= 0) | (share >= 1)):
        raise ValueError("treatment_share must be in (0, 1)")
    if sides not in ("two-sided", "one-sided"):
        raise ValueError("alternative must be 'two-sided' or 'one-sided'")
    if difference not in ("relative", "absolute"):
        raise ValueError("difference must be 'relative' or 'absolute'")


def _power(
    n_total: FloatArray,
    mean: FloatArray,
    var_c: FloatArray,
    var_t: FloatArray,
    mde: FloatArray,
    relative: bool,
    alpha: float,
    share: FloatArray,
    sides: Sides,
    tuning: float | None,
) -> FloatArray:
    n_t, n_c = n_total * share, n_total * (1.0 - share)
    if relative:
        mu2 = mean**2
        se0_2 = safe_div(var_t, mu2 * n_t) + safe_div(var_c, mu2 * n_c)
        se1_2 = safe_div(var_t, mu2 * n_t) + safe_div(var_c * (1.0 + mde) ** 2, mu2 * n_c)
    else:
        se0_2 = se1_2 = safe_div(var_t, n_t) + safe_div(var_c, n_c)
    two = sides == "two-sided"
    if tuning is None:
        z = special.ndtri(1.0 - (alpha / 2.0 if two else alpha))
        crit = z * np.sqrt(se0_2)
    else:
        crit = sequential.halfwidth(se0_2, n_total, alpha, tuning, two_sided=two)
    se1 = np.sqrt(se1_2)
    delta = np.abs(mde)
    out = special.ndtr(safe_div(delta - crit, se1))
    if two:
        out = out + special.ndtr(safe_div(-delta - crit, se1))
    return np.asarray(out, dtype=np.float64)


def _inputs(
    mean: npt.ArrayLike, variance: npt.ArrayLike, variance_treatment: npt.ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    mu = np.asarray(mean, dtype=np.float64)
    var_c = np.asarray(variance, dtype=np.float64)
    var_t = var_c if variance_treatment is None else np.asarray(variance_treatment, dtype=float)
    if np.any(var_c <= 0) or np.any(var_t <= 0):
        raise ValueError("variances must be > 0")
    return mu, var_c, var_t


def power(
    n_total: npt.ArrayLike,
    *,
    mean: npt.ArrayLike,
    variance: npt.ArrayLike,
    mde: npt.ArrayLike,
    difference: Difference = "relative",
    alpha: float = 0.05,
    treatment_share: npt.ArrayLike = 0.5,
    alternative: Sides = "two-sided",
    sequential_tuning: float | None = None,
    variance_treatment: npt.ArrayLike | None = None,
) -> Value:
    """Probability of a significant result with ``n_total`` units if the true effect is ``mde``.

    ``mean`` and ``variance`` are the control's per-unit mean and variance (``p(1−p)`` for a
    proportion); ``mde`` is relative (0.02 = +2%) or absolute per ``difference``.
    """
    share = np.asarray(treatment_share, dtype=np.float64)
    _check(alpha, share, alternative, difference)
    mu, var_c, var_t = _inputs(mean, variance, variance_treatment)
    n = np.asarray(n_total, dtype=np.float64)
    if difference == "relative" and np.any(mu == 0):
        raise ValueError("a relative MDE needs a non-zero mean")
    return _out(
        _power(
            n,
            mu,
            var_c,
            var_t,
            np.asarray(mde, dtype=np.float64),
            difference == "relative",
            alpha,
            share,
            alternative,
            sequential_tuning,
        )
    )


def _smallest_reaching(
    f: Callable[[FloatArray], FloatArray], lo: FloatArray, hi: FloatArray, target: float
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Elementwise bisection for the smallest x in [lo, hi] with f(x) >= target (f increasing).

    Returns the upper end of the final bracket and whether ``hi`` reaches the target at all.
    """
    reachable = f(hi) >= target
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        enough = f(mid) >= target
        hi, lo = np.where(enough, mid, hi), np.where(enough, lo, mid)
    return hi, reachable


def sample_size(
    *,
    mean: npt.ArrayLike,
    variance: npt.ArrayLike,
    mde: npt.ArrayLike,
    difference: Difference = "relative",
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_share: npt.ArrayLike = 0.5,
    alternative: Sides = "two-sided",
    sequential_tuning: float | None = None,
    variance_treatment: npt.ArrayLike | None = None,
) -> Value:
    """Total units (both arms) needed to reach ``power`` for an effect of ``mde``.

    ``inf`` where no sample size reaches it (possible for large relative effects of very noisy
    metrics, whose delta-method standard error grows with the effect).
    """
    share = np.asarray(treatment_share, dtype=np.float64)
    _check(alpha, share, alternative, difference)
    if not 0.0 < power < 1.0:
        raise ValueError("power must be in (0, 1)")
    mu, var_c, var_t = _inputs(mean, variance, variance_treatment)
    delta = np.asarray(mde, dtype=np.float64)
    if np.any(delta == 0) or (difference == "relative" and np.any(mu == 0)):
        raise ValueError("mde must be non-zero (and the mean non-zero for a relative mde)")
    rel = difference == "relative"
    shape = np.broadcast_shapes(mu.shape, var_c.shape, var_t.shape, delta.shape, share.shape)
    lo, hi = np.full(shape, np.log(4.0)), np.full(shape, np.log(1e15))

    def f(log_n: FloatArray) -> FloatArray:
        return _power(
            np.exp(log_n),
            mu,
            var_c,
            var_t,
            delta,
            rel,
            alpha,
            share,
            alternative,
            sequential_tuning,
        )

    log_n, reachable = _smallest_reaching(f, lo, hi, power)
    return _out(np.where(reachable, np.ceil(np.exp(log_n) - 1e-9), np.inf))


def minimum_detectable_effect(
    n_total: npt.ArrayLike,
    *,
    mean: npt.ArrayLike,
    variance: npt.ArrayLike,
    difference: Difference = "relative",
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_share: npt.ArrayLike = 0.5,
    alternative: Sides = "two-sided",
    sequential_tuning: float | None = None,
) -> Value:
    """Smallest positive effect detected with probability ``power`` given ``n_total`` units.

    Equal variances are assumed in both arms. ``inf`` where no effect reaches the power.
    """
    share = np.asarray(treatment_share, dtype=np.float64)
    _check(alpha, share, alternative, difference)
    if not 0.0 < power < 1.0:
        raise ValueError("power must be in (0, 1)")
    mu, var_c, var_t = _inputs(mean, variance, None)
    n = np.asarray(n_total, dtype=np.float64)
    if np.any(n < 4):
        raise ValueError("n_total must be at least 4")
    rel = difference == "relative"
    if rel and np.any(mu == 0):
        raise ValueError("a relative MDE needs a non-zero mean")
    shape = np.broadcast_shapes(mu.shape, var_c.shape, n.shape, share.shape)
    # Bracket on the log scale: from far below one standard error to far above it.
    se0 = np.sqrt(safe_div(var_c, n * share) + safe_div(var_c, n * (1.0 - share)))
    scale = safe_div(se0, np.abs(mu)) if rel else se0
    lo = np.broadcast_to(np.log(scale * 1e-6), shape).copy()
    hi = np.broadcast_to(np.log(scale * 1e6), shape).copy()

    def f(log_d: FloatArray) -> FloatArray:
        return _power(
            n, mu, var_c, var_t, np.exp(log_d), rel, alpha, share, alternative, sequential_tuning
        )

    log_d, reachable = _smallest_reaching(f, lo, hi, power)
    return _out(np.where(reachable, np.exp(log_d), np.inf))


def expected_duration(n_total: npt.ArrayLike, daily_units: npt.ArrayLike) -> Value:
    """Days until ``n_total`` units have entered, at ``daily_units`` eligible units per day."""
    rate = np.asarray(daily_units, dtype=np.float64)
    if np.any(rate <= 0):
        raise ValueError("daily_units must be > 0")
    return _out(np.ceil(np.asarray(n_total, dtype=np.float64) / rate))


def mid_experiment_power(
    control: SufficientStats,
    treatment: SufficientStats,
    *,
    mde: npt.ArrayLike,
    n_total: npt.ArrayLike | None = None,
    difference: Difference = "relative",
    alpha: float = 0.05,
    alternative: Sides = "two-sided",
    sequential_tuning: float | None = None,
) -> Value:
    """Power to detect ``mde`` given the data so far, at ``n_total`` units (default: now).

    Uses the observed control mean, the observed variances and the observed split, never the
    observed effect: power computed at the observed effect is a restatement of the p-value
    (Hoenig & Heisey 2001). Where the data cannot estimate a variance the power is 0.
    """
    with np.errstate(all="ignore"):  # n < 2 gives NaN moments; they are masked below
        a, b, _ = pair_moments(control, treatment)
    share_now = safe_div(b.n, a.n + b.n, default=0.5)
    share = np.where((share_now > 0) & (share_now < 1), share_now, 0.5)
    _check(alpha, share, alternative, difference)
    n = a.n + b.n if n_total is None else np.asarray(n_total, dtype=np.float64)
    rel = difference == "relative"
    usable = (a.variance > 0) & (b.variance > 0) & (a.n > 1) & (b.n > 1) & (n > 0)
    if rel:
        usable = usable & (a.raw_mean != 0)
    mu = np.where(usable, a.raw_mean, 1.0)
    var_c, var_t = np.where(usable, a.variance, 1.0), np.where(usable, b.variance, 1.0)
    value = _power(
        np.where(usable, n, 4.0),
        mu,
        var_c,
        var_t,
        np.asarray(mde, dtype=float),
        rel,
        alpha,
        share,
        alternative,
        sequential_tuning,
    )
    return _out(np.where(usable, value, 0.0))
