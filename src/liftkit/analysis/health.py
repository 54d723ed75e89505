"""Health checks and the decision a person should take.

Checks: sample-ratio mismatch (chi-square against the phase's weights), units seen in more
than one variation, too little data, and low power (the primary metric could not detect the
target effect even at the planned duration). The decision reads them first: results of an
unhealthy experiment are not acted on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from liftkit import stats
from liftkit.analysis.plan import Plan
from liftkit.analysis.snapshot import Decision, Health, MetricResult

#: Below this many units in any variation, results are reported but not acted on.
MIN_UNITS = 100
#: Above this share of units seen in several variations, assignment is broken somewhere.
MAX_MULTIPLE_SHARE = 0.01


def _mean_variance(st: Any) -> tuple[float, float] | None:
    """A control's per-unit mean and variance, for power (proportions and means only)."""
    n = float(st.n)
    if n < 2:
        return None
    if isinstance(st, stats.ProportionStats):
        p = float(st.sum) / n
        return p, p * (1 - p)
    if isinstance(st, stats.MeanStats | stats.CupedMeanStats):
        mean = float(st.sum) / n
        return mean, max(float(st.sum_squares) / n - mean * mean, 0.0) * n / (n - 1)
    return None


def check(
    plan: Plan,
    units: np.ndarray[Any, Any],
    multiple: int,
    per_metric: list[list[Any] | None],
    days: float,
) -> tuple[Health, float | None]:
    """The health of an analysis, and the total units the primary metric needs (or None)."""
    names = list(plan.variations)
    counts = [int(u) for u in units]
    total = sum(counts)
    warnings: list[str] = []
    srm_p = None
    srm = False
    if total > 0:
        result = stats.srm_check(counts, list(plan.weights))
        srm_p, srm = result.p_value, result.flagged
        if srm:
            warnings.append(
                f"sample ratio mismatch (p = {result.p_value:.2g}): units per variation "
                f"{counts} do not match the weights {list(plan.weights)}; check assignment "
                "and exposure logging before trusting any result"
            )
    share = multiple / (total + multiple) if total + multiple else 0.0
    if share > MAX_MULTIPLE_SHARE:
        warnings.append(
            f"{multiple} units ({share:.1%}) were exposed to more than one variation and were "
            "left out; look for changing hash attributes or a cached variation"
        )
    too_little = min(counts, default=0) < MIN_UNITS
    if too_little:
        warnings.append(f"too little data: fewer than {MIN_UNITS} units in a variation")
    low_power: list[str] = []
    needed = None
    treatment_share = 1.0 - plan.weights[0] if len(plan.weights) == 2 else 0.5
    projected = total * plan.settings.planned_days / max(days, 1.0)
    for k, metric in enumerate(plan.metrics):
        arms = per_metric[k]
        if metric.role != "primary" or arms is None:
            continue
        mv = _mean_variance(arms[0])
        if mv is None or mv[0] == 0 or mv[1] == 0:
            continue
        common: dict[str, Any] = {
            "mean": mv[0],
            "variance": mv[1],
            "mde": plan.settings.target_mde,
            "alpha": plan.settings.alpha,
            "treatment_share": treatment_share,
        }
        reach = float(stats.power(projected, **common))
        if reach < 0.8:
            low_power.append(metric.key)
            warnings.append(
                f"low power: {metric.key} has {reach:.0%} power to detect a "
                f"{plan.settings.target_mde:.0%} effect by day {plan.settings.planned_days}"
            )
        if needed is None:
            needed = float(stats.sample_size(**common))
    health = Health(
        units=dict(zip(names, counts, strict=True)),
        expected_shares=dict(zip(names, plan.weights, strict=True)),
        srm_p_value=srm_p,
        srm=srm,
        multiple_exposures=multiple,
        multiple_exposure_share=share,
        low_power=low_power,
        too_little_data=too_little,
        warnings=warnings,
    )
    return health, needed


def decide(
    plan: Plan, health: Health, results: list[MetricResult], days: float, needed: float | None
) -> Decision:
    """Ship, roll back, keep running (with days left), stop, or investigate first."""
    if health.srm or health.multiple_exposure_share > 0.05:
        reason = health.warnings[0]
        return Decision(action="investigate", reason=reason)
    guard_lost = [
        f"{m.metric} ({v.variation})"
        for m in results
        if m.role == "guardrail"
        for v in m.variations[1:]
        if v.significance == "lose"
    ]
    primary = next((m for m in results if m.role == "primary"), None)
    if primary is not None and not health.too_little_data:
        winners = [v for v in primary.variations[1:] if v.significance == "win"]
        safe = [v for v in winners if not any(g.endswith(f"({v.variation})") for g in guard_lost)]
        if safe:
            best = max(safe, key=lambda v: abs(v.effect or 0.0))
            unproven = [
                m.metric
                for m in results
                if m.role == "guardrail"
                for v in m.variations[1:]
                if v.variation == best.variation and v.non_inferior is False
            ]
            caveat = f"; not yet shown within the margin: {', '.join(unproven)}" if unproven else ""
            return Decision(
                action="ship",
                variation=best.variation,
                reason=f"{best.variation} wins on {primary.metric} ({(best.effect or 0):+.1%}) "
                f"and no guardrail is significantly hurt{caveat}",
            )
        losers = [v for v in primary.variations[1:] if v.significance == "lose"]
        if guard_lost or (losers and len(losers) == len(primary.variations) - 1):
            why = (
                f"guardrail hurt: {', '.join(guard_lost)}"
                if guard_lost
                else f"every variation loses on {primary.metric}"
            )
            return Decision(action="roll back", variation=plan.variations[0], reason=why)
    left = plan.settings.planned_days - days
    if left <= 0:
        return Decision(
            action="stop",
            reason=f"no significant result after the planned {plan.settings.planned_days} days",
        )
    days_left = math.ceil(left)
    total = sum(health.units.values())
    if needed is not None and math.isfinite(needed) and total > 0 and days > 0:
        days_left = max(1, min(days_left, math.ceil(max(needed - total, 0) / (total / days))))
    reason = "not enough evidence yet"
    if health.too_little_data:
        reason = "too little data yet"
    return Decision(action="keep running", reason=reason, days_left=days_left)
