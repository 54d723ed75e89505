"""Guardrails: non-inferiority tests with a margin, fixed-horizon or sequential.

A guardrail metric (latency, errors, revenue while testing something else) need not improve;
it must not get worse by more than a tolerated margin. That is a one-sided test of
H0: effect ≤ −margin against H1: effect > −margin (Schuirmann 1987, one side of the TOST; for
lower-is-better metrics, H0: effect ≥ +margin). Passing means the one-sided 1 − α bound clears
the margin. With ``sequential_tuning`` the one-sided confidence sequence is used, so an
automated rollout can re-check the guardrail at every look without inflating its error rate.
"""

from __future__ import annotations

import numpy as np

from liftkit.stats._engine import Difference, StatsInput, compare_many
from liftkit.stats._results import GuardrailResult, GuardrailResults
from liftkit.stats._sufficient import SufficientStats
from liftkit.stats.frequentist import Alternative

__all__ = ["non_inferiority", "non_inferiority_many"]


def non_inferiority_many(
    control: StatsInput,
    treatment: StatsInput,
    *,
    margin: float,
    difference: Difference = "relative",
    alpha: float = 0.05,
    sequential_tuning: float | None = None,
    higher_is_better: bool = True,
) -> GuardrailResults:
    """Guardrail test: is the treatment no worse than control by more than ``margin``?

    One-sided test of H0: effect ≤ −margin (or ≥ +margin when lower is better) against the
    alternative that the treatment is within the margin or better (Schuirmann 1987, one side).
    ``margin`` is in the units of ``difference`` (0.02 = 2% relative). With
    ``sequential_tuning`` the one-sided confidence sequence is used, so the guardrail can be
    checked at every look. ``non_inferior`` is true when the one-sided bound clears the margin.
    """
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError("margin must be a finite number >= 0")
    alternative: Alternative = "greater" if higher_is_better else "less"
    null = -margin if higher_is_better else margin
    res = compare_many(
        control,
        treatment,
        engine="frequentist",
        difference=difference,
        alpha=alpha,
        sequential_tuning=sequential_tuning,
        alternative=alternative,
        null=null,
    )
    bound_clear = res.ci_low > null if higher_is_better else res.ci_high < null
    return GuardrailResults(comparison=res, margin=margin, non_inferior=res.ok & bound_clear)


def non_inferiority(
    control: SufficientStats,
    treatment: SufficientStats,
    *,
    margin: float,
    difference: Difference = "relative",
    alpha: float = 0.05,
    sequential_tuning: float | None = None,
    higher_is_better: bool = True,
) -> GuardrailResult:
    """Scalar form of :func:`non_inferiority_many`."""
    res = non_inferiority_many(
        control,
        treatment,
        margin=margin,
        difference=difference,
        alpha=alpha,
        sequential_tuning=sequential_tuning,
        higher_is_better=higher_is_better,
    )
    return res.item(())
