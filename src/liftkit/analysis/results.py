"""From the warehouse's sums to compared results: totals, dimension slices and the series.

The main query returns sums per variation × exposure date × dimension values. Sums add up, so
every view is a ``numpy`` reduction of one array, and each view is compared with one
vectorised ``compare_many`` call over every metric × treatment (× slice, × date).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from liftkit import stats
from liftkit.analysis.plan import Plan, PlannedMetric
from liftkit.analysis.snapshot import (
    MetricResult,
    SeriesPoint,
    Significance,
    Slice,
    VariationResult,
)
from liftkit.analysis.sql import metric_columns, variables

FloatArray = npt.NDArray[np.float64]
OTHER = "(other)"
MISSING = "(none)"


@dataclass(frozen=True)
class Cube:
    """The main query's result as arrays: one row per variation × date × dimension values."""

    arm: npt.NDArray[np.int64]
    day: list[date]
    dims: list[list[str]]
    units: FloatArray
    sums: dict[str, FloatArray]

    @classmethod
    def from_rows(cls, plan: Plan, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> Cube:
        index = {c.lower(): i for i, c in enumerate(columns)}

        def column(name: str) -> list[Any]:
            i = index[name]
            return [r[i] for r in rows]

        sums = {}
        for k, metric in enumerate(plan.metrics):
            if _event_quantile(metric):
                continue
            for name in metric_columns(k, metric):
                sums[name] = np.array([float(v or 0.0) for v in column(name)])
        days = [_as_date(d) for d in column("lk_day")]
        return cls(
            arm=np.array([int(a) for a in column("lk_arm")], dtype=np.int64),
            day=days,
            dims=[
                [MISSING if v is None else str(v) for v in column(f"lk_d{i}")]
                for i in range(len(plan.dimensions))
            ],
            units=np.array([float(u) for u in column("lk_units")]),
            sums=sums,
        )

    def totals(self, mask: npt.NDArray[np.bool_], arms: int) -> dict[str, FloatArray]:
        """Sums per variation over the rows in ``mask`` (``units`` included)."""
        out = {}
        for name, values in {"units": self.units, **self.sums}.items():
            keep = mask & (self.arm >= 0)
            out[name] = np.bincount(self.arm[keep], values[keep], arms).astype(np.float64)
        return out


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value if type(value) is date else value.date()  # type: ignore[attr-defined]
    return date.fromisoformat(str(value)[:10])


def _event_quantile(metric: PlannedMetric) -> bool:
    return metric.type == "quantile" and metric.quantile_level == "event"


def metric_stats(k: int, metric: PlannedMetric, sums: dict[str, FloatArray], arm: int) -> Any:
    """The sufficient statistics of metric ``k`` for one variation."""
    count = len(variables(metric))
    s = [float(sums[f"m{k}_s{i}"][arm]) for i in range(count)]
    p = {(i, j): float(sums[f"m{k}_p{i}{j}"][arm]) for i in range(count) for j in range(i, count)}
    n = float(sums[f"m{k}_n"][arm])
    if metric.type == "ratio":
        if metric.cuped is None:
            return stats.RatioStats(n, s[0], p[0, 0], s[1], p[1, 1], p[0, 1])
        return stats.CupedRatioStats(
            n, s[0], p[0, 0], s[1], p[1, 1], s[2], p[2, 2], s[3], p[3, 3],
            p[0, 1], p[0, 2], p[0, 3], p[1, 2], p[1, 3], p[2, 3],
        )  # fmt: skip
    if metric.cuped is not None:
        return stats.CupedMeanStats(n, s[0], p[0, 0], s[1], p[1, 1], p[0, 1])
    if metric.type in ("proportion", "retention"):
        return stats.ProportionStats(n, min(s[0], n))
    return stats.MeanStats(n, s[0], p[0, 0])


def quantile_stats(metric: PlannedMetric, row: dict[str, Any]) -> stats.QuantileStats:
    """Order statistics (and, event-level, the cluster design effect) to QuantileStats.

    Events of one unit are correlated, so an event-level quantile's interval is widened by the
    design effect of the ratio "events at or below the quantile / events" over units (delta
    method); ``n`` becomes the effective number of independent events.
    """
    nu = float(metric.quantile or 0.5)
    n = float(row.get("lk_n") or 0.0)
    q, low, high = (float(row.get(c) or 0.0) for c in ("lk_quantile", "lk_lower", "lk_upper"))
    if metric.quantile_level != "event" or n == 0:
        return stats.QuantileStats(n, nu, q, low, high)
    k = float(row["lk_k"])
    sb, sc, sbb, scc, sbc = (
        float(row[c]) for c in ("lk_sb", "lk_sc", "lk_sbb", "lk_scc", "lk_sbc")
    )
    p = sb / sc
    # Σ(b − p c)² / k / c̄² is the per-unit variance of the ratio estimator.
    spread = (sbb - 2 * p * sbc + p * p * scc) / k
    var_p = spread / (sc / k) ** 2 / k
    deff = max(var_p / (nu * (1 - nu) / n), 1.0) if var_p > 0 else 1.0
    return stats.QuantileStats(n / deff, nu, q, low, high, n_star=n)


class Comparer:
    """Runs the experiment's configured comparison over many statistics at once."""

    def __init__(self, plan: Plan, sequential_tuning: float | None) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.tuning = sequential_tuning if plan.settings.sequential else None

    def compare(
        self, control: list[Any], treatment: list[Any], *, correct: bool
    ) -> tuple[stats.ComparisonResults, stats.ComparisonResults]:
        s = self.settings
        correction = s.correction if correct and s.engine == "frequentist" else "none"
        common: dict[str, Any] = {"engine": s.engine, "alpha": s.alpha}
        if s.engine == "frequentist":
            common["sequential_tuning"] = self.tuning
        rel = stats.compare_many(
            control,
            treatment,
            difference="relative",
            correction=None if correction == "none" else correction,
            **common,
        )
        absolute = stats.compare_many(control, treatment, difference="absolute", **common)
        return rel, absolute


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def significance(
    engine: str, alpha: float, inverse: bool, result: stats.ComparisonResult
) -> Significance:
    if not result.ok:
        return "neutral"
    if engine == "bayesian":
        ctw = result.chance_to_win or 0.5
        won, lost = ctw > 1 - alpha / 2, ctw < alpha / 2
        return "win" if won else "lose" if lost else "neutral"
    if result.p_value is None or result.p_value >= alpha:
        return "neutral"
    better = (result.effect > 0) != inverse
    return "win" if better else "lose"


def metric_results(
    plan: Plan,
    comparer: Comparer,
    per_metric: list[list[Any] | None],
    *,
    correct: bool,
    guardrails: bool,
) -> list[MetricResult]:
    """Compare every metric's treatments with its control (``per_metric[k][arm]``)."""
    arms = len(plan.variations)
    present = [k for k, s in enumerate(per_metric) if s is not None]
    out: dict[int, MetricResult] = {}
    if present and arms > 1:
        control = [[per_metric[k][0]] * (arms - 1) for k in present]  # type: ignore[index]
        treat = [per_metric[k][1:] for k in present]  # type: ignore[index]
        rel, absolute = comparer.compare(control, treat, correct=correct)
        guard = None
        if guardrails:
            guard = _guardrails(plan, comparer, present, control, treat)
        for row, k in enumerate(present):
            metric = plan.metrics[k]
            first = rel.item((row, 0))
            variations = [
                VariationResult(
                    variation=plan.variations[0],
                    units=int(first.control_n),
                    value=first.control_mean,
                )
            ]
            for j in range(1, arms):
                r, a = rel.item((row, j - 1)), absolute.item((row, j - 1))
                min_n = metric.min_sample_size
                small = min(r.control_n, r.treatment_n) < min_n
                variations.append(
                    VariationResult(
                        variation=plan.variations[j],
                        units=int(r.treatment_n),
                        value=r.treatment_mean,
                        baseline=r.control_mean,
                        effect=r.effect if r.ok else None,
                        ci_low=_finite(r.ci_low) if r.ok else None,
                        ci_high=_finite(r.ci_high) if r.ok else None,
                        absolute_effect=a.effect if a.ok else None,
                        absolute_ci_low=_finite(a.ci_low) if a.ok else None,
                        absolute_ci_high=_finite(a.ci_high) if a.ok else None,
                        p_value=r.p_value if r.ok else None,
                        chance_to_win=r.chance_to_win if r.ok else None,
                        risk=_finite(r.risk_treatment) if r.risk_treatment is not None else None,
                        significance="neutral"
                        if small
                        else significance(
                            plan.settings.engine, plan.settings.alpha, metric.inverse, r
                        ),
                        non_inferior=None
                        if guard is None or metric.role != "guardrail"
                        else bool(guard[row, j - 1]),
                        error=f"fewer than {min_n} units (the metric's minimum sample size)"
                        if small and r.ok
                        else r.error,
                    )
                )
            out[k] = _metric(metric, variations)
    return [out[k] for k in present]


def _guardrails(
    plan: Plan, comparer: Comparer, present: list[int], control: list[Any], treat: list[Any]
) -> npt.NDArray[np.bool_]:
    result = np.zeros((len(present), len(plan.variations) - 1), dtype=bool)
    for row, k in enumerate(present):
        metric = plan.metrics[k]
        if metric.role != "guardrail":
            continue
        checked = stats.non_inferiority_many(
            control[row],
            treat[row],
            margin=plan.settings.guardrail_margin,
            alpha=plan.settings.alpha,
            sequential_tuning=comparer.tuning,
            higher_is_better=not metric.inverse,
        )
        result[row] = checked.non_inferior
    return result


def _metric(metric: PlannedMetric, variations: list[VariationResult]) -> MetricResult:
    return MetricResult(
        metric=metric.key,
        name=metric.name,
        type=metric.type,
        role=metric.role,
        inverse=metric.inverse,
        cuped=metric.cuped is not None,
        variations=variations,
    )


def slices(plan: Plan, cube: Cube, comparer: Comparer) -> list[Slice]:
    """Each dimension's top values by units (then the rest as "(other)"), compared."""
    arms = len(plan.variations)
    out: list[Slice] = []
    for d, name in enumerate(plan.dimensions):
        values = np.array(cube.dims[d], dtype=object)
        counts: dict[str, float] = {}
        for value, units, arm in zip(values, cube.units, cube.arm, strict=True):
            if arm >= 0:
                counts[value] = counts.get(value, 0.0) + units
        ranked = sorted(counts, key=lambda v: (-counts[v], v))
        top = ranked[: plan.settings.top_n]
        groups = [(v, values == v) for v in top]
        if len(ranked) > len(top):
            groups.append((OTHER, ~np.isin(values, top)))
        for label, mask in groups:
            sums = cube.totals(mask, arms)
            per_metric = _per_metric(plan, sums, arms)
            results = metric_results(plan, comparer, per_metric, correct=False, guardrails=False)
            out.append(
                Slice(dimension=name, value=label, units=int(sums["units"].sum()), metrics=results)
            )
    return out


def _per_metric(plan: Plan, sums: dict[str, FloatArray], arms: int) -> list[list[Any] | None]:
    return [
        None
        if metric.type == "quantile"
        else [metric_stats(k, metric, sums, a) for a in range(arms)]
        for k, metric in enumerate(plan.metrics)
    ]


def series(plan: Plan, cube: Cube, comparer: Comparer) -> list[SeriesPoint]:
    """Cumulative effects by first-exposure date: all dates × metrics × treatments at once."""
    arms = len(plan.variations)
    days = sorted(set(cube.day))
    day_of = np.array([days.index(d) for d in cube.day], dtype=np.int64)
    keys = [k for k, m in enumerate(plan.metrics) if m.type != "quantile"]
    if not days or not keys or arms < 2:
        return []
    control, treat, units = [], [], []
    for i in range(len(days)):
        sums = cube.totals(day_of <= i, arms)
        per = _per_metric(plan, sums, arms)
        control.append([[per[k][0]] * (arms - 1) for k in keys])  # type: ignore[index]
        treat.append([per[k][1:] for k in keys])  # type: ignore[index]
        units.append(sums["units"])
    rel, _ = comparer.compare(control, treat, correct=False)
    points = []
    for i, day in enumerate(days):
        for row, k in enumerate(keys):
            for j in range(1, arms):
                r = rel.item((i, row, j - 1))
                points.append(
                    SeriesPoint(
                        date=day,
                        metric=plan.metrics[k].key,
                        variation=plan.variations[j],
                        units=int(units[i][0] + units[i][j]),
                        effect=r.effect if r.ok else None,
                        ci_low=_finite(r.ci_low) if r.ok else None,
                        ci_high=_finite(r.ci_high) if r.ok else None,
                    )
                )
    return points


def statistics_rows(plan: Plan, per_metric: list[list[Any] | None]) -> list[dict[str, Any]]:
    """The sufficient statistics as plain dicts (snapshot.statistics)."""
    rows = []
    for k, metric in enumerate(plan.metrics):
        arms = per_metric[k]
        if arms is None:
            continue
        for a, st in enumerate(arms):
            rows.append(
                {
                    "metric": metric.key,
                    "variation": plan.variations[a],
                    "kind": type(st).__name__,
                    **{f: (None if v is None else float(v)) for f, v in asdict(st).items()},
                }
            )
    return rows
