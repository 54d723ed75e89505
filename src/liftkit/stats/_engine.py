"""The public comparison entry points: one vectorised core, scalar wrappers around it.

``compare_many`` takes statistics whose fields are arrays (or sequences of scalar statistics)
and computes every comparison with a fixed number of numpy operations, whatever the count;
``compare`` is ``compare_many`` on one element.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from liftkit.stats import _errors, bayesian, corrections, frequentist, sequential
from liftkit.stats._moments import ArmMoments
from liftkit.stats._pairs import Issues, pair_moments
from liftkit.stats._results import ComparisonResult, ComparisonResults
from liftkit.stats._sufficient import FloatArray, SufficientStats, stack
from liftkit.stats.bayesian import GaussianPrior
from liftkit.stats.corrections import Correction
from liftkit.stats.frequentist import Alternative

__all__ = ["Difference", "Engine", "StatsInput", "compare", "compare_many"]

Engine = Literal["frequentist", "bayesian"]
Difference = Literal["relative", "absolute"]
StatsInput = SufficientStats | Sequence[SufficientStats] | npt.NDArray[np.object_]

_STATS_TYPES = SufficientStats.__args__


def _check_args(
    engine: str,
    difference: str,
    alpha: float,
    sequential_tuning: float | None,
    alternative: str,
    correction: str | None,
) -> None:
    if engine not in ("frequentist", "bayesian"):
        raise ValueError(f"engine must be 'frequentist' or 'bayesian', got {engine!r}")
    if difference not in ("relative", "absolute"):
        raise ValueError(f"difference must be 'relative' or 'absolute', got {difference!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be two-sided, greater or less, got {alternative!r}")
    if sequential_tuning is not None:
        if engine != "frequentist":
            raise ValueError("sequential_tuning applies to the frequentist engine only")
        if not (np.isfinite(sequential_tuning) and sequential_tuning > 0):
            raise ValueError("sequential_tuning (expected total sample size) must be > 0")
    if engine == "bayesian" and alternative != "two-sided":
        raise ValueError("the Bayesian engine reports two-sided credible intervals only")
    if correction is not None:
        if correction not in ("holm", "bh"):
            raise ValueError(f"correction must be 'holm' or 'bh', got {correction!r}")
        if engine != "frequentist":
            raise ValueError("multiple-comparison corrections apply to p-values (frequentist)")


def _moments(control: StatsInput, treatment: StatsInput) -> tuple[ArmMoments, ArmMoments, Issues]:
    """Moments for statistics objects, or for (nested) sequences of them, mixed types allowed."""
    if isinstance(control, _STATS_TYPES) and isinstance(treatment, _STATS_TYPES):
        return pair_moments(control, treatment)
    ctrl = np.empty(np.shape(np.asarray(control, dtype=object)), dtype=object)
    ctrl[...] = np.asarray(control, dtype=object)
    trt = np.empty(np.shape(np.asarray(treatment, dtype=object)), dtype=object)
    trt[...] = np.asarray(treatment, dtype=object)
    if ctrl.shape != trt.shape:
        raise ValueError(f"control and treatment shapes differ: {ctrl.shape} vs {trt.shape}")
    if ctrl.size == 0:
        raise ValueError("nothing to compare")
    flat_c, flat_t = ctrl.ravel(), trt.ravel()
    kinds = np.array([type(c).__name__ for c in flat_c])
    names = ("n", "mean", "raw_mean", "variance")
    arms = tuple({k: np.zeros(flat_c.size) for k in names} for _ in range(2))
    masks: dict[int, npt.NDArray[np.bool_]] = {}
    for kind in np.unique(kinds):
        idx = np.flatnonzero(kinds == kind)
        a, b, issues = pair_moments(stack(list(flat_c[idx])), stack(list(flat_t[idx])))
        for store, arm in zip(arms, (a, b), strict=True):
            for k in names:
                store[k][idx] = np.broadcast_to(getattr(arm, k), idx.shape)
        for code, mask in issues:
            masks.setdefault(code, np.zeros(flat_c.size, dtype=bool))[idx] = mask
    shape = ctrl.shape
    a_out, b_out = (ArmMoments(**{k: v.reshape(shape) for k, v in st.items()}) for st in arms)
    return a_out, b_out, [(code, mask.reshape(shape)) for code, mask in masks.items()]


def _family_view(
    x: npt.NDArray[Any], axes: tuple[int, ...] | None
) -> tuple[npt.NDArray[Any], tuple[int, ...]]:
    """Reshape so each correction family lies along the last axis; return the moved shape."""
    if axes is None:
        return x.reshape(1, -1), x.shape
    axes = tuple(a % x.ndim for a in axes)
    rest = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, rest + list(axes))
    return moved.reshape(*moved.shape[: len(rest)], -1), moved.shape


def _family_unview(
    y: FloatArray, moved_shape: tuple[int, ...], axes: tuple[int, ...] | None, ndim: int
) -> FloatArray:
    if axes is None:
        return y.reshape(moved_shape)
    axes = tuple(a % ndim for a in axes)
    rest = [a for a in range(ndim) if a not in axes]
    perm = rest + list(axes)
    return np.transpose(y.reshape(moved_shape), np.argsort(perm))


def _full(x: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    x = np.asarray(x, dtype=np.float64)
    return x if x.shape == shape else np.broadcast_to(x, shape).copy()


def _all_issues(
    type_issues: Issues,
    a: ArmMoments,
    n_min: FloatArray,
    min_var: FloatArray,
    se: FloatArray,
    uses_base: bool,
) -> Issues:
    """Every check with its code; the lowest code that applies is the one reported.

    "not > 0" rather than "<= 0" so that NaN variances count as zero; an effect whose
    standard error underflows to 0 has no usable standard error either.
    """
    issues = [
        *type_issues,
        (_errors.NO_UNITS, n_min < 1),
        (_errors.TOO_FEW_UNITS, n_min < 2),
        (_errors.ZERO_VARIANCE, ~(np.minimum(min_var, se) > 0)),
    ]
    if uses_base:
        issues.append((_errors.ZERO_BASELINE, a.raw_mean == 0))
    return issues


def _any_issue(issues: Issues, shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    bad = np.zeros(shape, dtype=bool)
    for _, mask in issues:
        bad = bad | mask
    return bad


def _correct(
    p: FloatArray,
    valid: npt.NDArray[np.bool_],
    method: Correction,
    axes: tuple[int, ...] | None,
    alpha: float,
) -> tuple[FloatArray, FloatArray]:
    """Adjusted p-values and the per-comparison α of the adjusted intervals."""
    fam_p, moved = _family_view(p, axes)
    fam_ok, _ = _family_view(valid, axes)
    adjust = corrections.holm_bonferroni if method == "holm" else corrections.benjamini_hochberg
    fam_adj = adjust(fam_p, fam_ok.astype(bool))
    fam_alpha = corrections.interval_alpha(method, fam_adj, alpha, fam_ok.astype(bool))
    return (
        _family_unview(fam_adj, moved, axes, p.ndim),
        _family_unview(fam_alpha, moved, axes, p.ndim),
    )


def _posterior(
    effect: FloatArray,
    var: FloatArray,
    base: FloatArray,
    prior: GaussianPrior | None,
    relative: bool,
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and sd, with the prior moved to the effect's scale if needed."""
    prior = prior or GaussianPrior(proper=False)
    prior_mean: FloatArray | float = prior.mean
    prior_var: FloatArray | float = prior.variance
    if prior.relative and not relative:  # relative prior, absolute effect
        prior_mean, prior_var = prior.mean * base, prior.variance * base**2
    elif relative and not prior.relative:  # absolute prior, relative effect
        prior_mean, prior_var = prior.mean / base, prior.variance / base**2
    return bayesian.posterior(effect, var, prior_mean, prior_var, prior.proper)


def compare_many(
    control: StatsInput,
    treatment: StatsInput,
    *,
    engine: Engine = "frequentist",
    difference: Difference = "relative",
    alpha: float = 0.05,
    sequential_tuning: float | None = None,
    prior: GaussianPrior | None = None,
    alternative: Alternative = "two-sided",
    inverse: bool = False,
    null: float = 0.0,
    correction: Correction | None = None,
    correction_axes: tuple[int, ...] | None = None,
) -> ComparisonResults:
    """Compare every treatment with its control; see :func:`compare` for the arguments.

    ``control`` and ``treatment`` are statistics objects with array fields (fastest), or
    equally-shaped (nested) sequences of scalar statistics objects, possibly of mixed types.
    ``correction`` ("holm" or "bh") adjusts p-values and intervals over the family formed by
    ``correction_axes`` (default: every comparison in the call).
    """
    _check_args(engine, difference, alpha, sequential_tuning, alternative, correction)
    # Degenerate elements produce NaN/inf below; they are flagged and replaced at the end.
    with np.errstate(all="ignore"):
        a, b, issues = _moments(control, treatment)
        relative = difference == "relative"
        shape = np.broadcast(a.n, a.mean, a.variance, b.n, b.mean, b.variance).shape
        n_min = np.minimum(a.n, b.n)
        min_var = np.minimum(a.variance, b.variance)
        uses_base = relative or (prior is not None and prior.proper and prior.relative != relative)

        effect, var = frequentist.effect_and_variance(a, b, relative=relative)
        se = np.sqrt(var)
        p = p_raw = ctw = risk_c = risk_t = None
        if engine == "frequentist":
            n_total = a.n + b.n
            dof = frequentist.welch_dof(a, b)
            if sequential_tuning is None:
                p = frequentist.p_value(effect, se, dof, null, alternative)
            else:
                p = sequential.p_value(
                    effect, var, n_total, null, alpha, sequential_tuning, alternative
                )
            level: FloatArray | float = alpha
            if correction is not None:
                valid = ~_any_issue(_all_issues(issues, a, n_min, min_var, se, uses_base), shape)
                p_raw = np.where(valid, p, 1.0)
                p, level = _correct(p_raw, valid, correction, correction_axes, alpha)
            if sequential_tuning is None:
                lo, hi = frequentist.interval(effect, se, dof, level, alternative)
            else:
                lo, hi = sequential.interval(
                    effect, var, n_total, level, sequential_tuning, alternative
                )
        else:
            effect, se = _posterior(effect, var, np.abs(a.raw_mean), prior, relative)
            z = float(special.ndtri(1.0 - alpha / 2.0))
            lo, hi = effect - z * se, effect + z * se
            ctw = bayesian.chance_to_win(effect, se, inverse=inverse)
            risk_c, risk_t = bayesian.risk(effect, se, inverse=inverse)
        # One cheap gate for the common all-valid case. Every degenerate input surfaces here:
        # too few units or a zero baseline make the estimate non-finite, zero variances fail
        # "> 0" (NaN too), and type-specific problems are in ``issues``. Whatever the input,
        # nothing non-finite leaves without an explanation.
        if alternative == "greater":
            outputs = lo
        elif alternative == "less":
            outputs = hi
        else:
            outputs = lo + hi
        outputs = outputs + (p if p is not None else ctw + risk_c + risk_t)  # type: ignore[operator]
        bad = (n_min < 2) | ~(np.minimum(min_var, se) > 0) | ~np.isfinite(effect + se + outputs)
        for _, mask in issues:
            bad = bad | mask
        control_mean, treatment_mean = a.raw_mean, b.raw_mean
        if bad.any():
            issues = _all_issues(issues, a, n_min, min_var, se, uses_base)
            issues.append((_errors.NOT_FINITE, bad))  # the lowest-priority explanation
            codes = _errors.from_masks(issues, shape)
            ok = ~bad
            effect, se = np.where(ok, effect, 0.0), np.where(ok, se, np.inf)
            lo, hi = np.where(ok, lo, -np.inf), np.where(ok, hi, np.inf)
            p = None if p is None else np.where(ok, p, 1.0)
            ctw = None if ctw is None else np.where(ok, ctw, 0.5)
            risk_c = None if risk_c is None else np.where(ok, risk_c, np.inf)
            risk_t = None if risk_t is None else np.where(ok, risk_t, np.inf)
            control_mean = np.where(np.isfinite(control_mean), control_mean, 0.0)
            treatment_mean = np.where(np.isfinite(treatment_mean), treatment_mean, 0.0)
        else:
            codes = np.zeros(shape, dtype=np.int8)

    return ComparisonResults(
        effect=_full(effect, shape),
        se=_full(se, shape),
        ci_low=_full(lo, shape),
        ci_high=_full(hi, shape),
        p_value=None if p is None else _full(p, shape),
        p_value_unadjusted=None if p_raw is None else _full(p_raw, shape),
        chance_to_win=None if ctw is None else _full(ctw, shape),
        risk_control=None if risk_c is None else _full(risk_c, shape),
        risk_treatment=None if risk_t is None else _full(risk_t, shape),
        control_mean=_full(control_mean, shape),
        treatment_mean=_full(treatment_mean, shape),
        control_n=_full(a.n, shape),
        treatment_n=_full(b.n, shape),
        error_code=codes,
        engine=engine,
        difference=difference,
        alternative=alternative,
        sequential=sequential_tuning is not None,
    )


def compare(
    control: SufficientStats,
    treatment: SufficientStats,
    *,
    engine: Engine = "frequentist",
    difference: Difference = "relative",
    alpha: float = 0.05,
    sequential_tuning: float | None = None,
    prior: GaussianPrior | None = None,
    alternative: Alternative = "two-sided",
    inverse: bool = False,
    null: float = 0.0,
) -> ComparisonResult:
    """Compare one treatment with its control on one metric.

    Args:
        control, treatment: sufficient statistics of one type (``MeanStats``,
            ``ProportionStats``, ``RatioStats``, ``CupedMeanStats``, ``CupedRatioStats`` or
            ``QuantileStats``) with scalar fields.
        engine: "frequentist" (Welch t-test, or a confidence sequence when
            ``sequential_tuning`` is set) or "bayesian" (Gaussian posterior on the effect).
        difference: "relative" (effect / |control mean|) or "absolute".
        alpha: 1 − confidence (or credible) level.
        sequential_tuning: expected total sample size of both arms; setting it makes the test
            sequential (anytime-valid). Frequentist only.
        prior: Bayesian prior on the effect; None means flat (improper).
        alternative: "two-sided", or one-sided "greater" / "less" (frequentist only).
        inverse: lower is better (flips chance to win and the risks; Bayesian only).
        null: the effect under the null hypothesis (frequentist p-value).

    Never raises on degenerate data: the result's ``error`` says why nothing was estimated.
    Raises ``ValueError`` on invalid arguments.
    """
    if not isinstance(control, _STATS_TYPES) or not isinstance(treatment, _STATS_TYPES):
        raise ValueError("compare() takes one statistics object per arm; see compare_many()")
    for value in (control.n, treatment.n):
        if np.ndim(value) != 0:
            raise ValueError("compare() takes scalar statistics; use compare_many() for arrays")
    results = compare_many(
        control,
        treatment,
        engine=engine,
        difference=difference,
        alpha=alpha,
        sequential_tuning=sequential_tuning,
        prior=prior,
        alternative=alternative,
        inverse=inverse,
        null=null,
    )
    return results.item(())
