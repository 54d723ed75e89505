"""Planning from real data: traffic, baselines, sample size, duration, scores, sizing.

- **Traffic** is measured in the data source: distinct units assigned on the brief's hash
  attribute over the last 28 days, divided by the days observed. Units exposed to *any*
  experiment are the population a new one draws from; the brief's ``audience_share`` says what
  part of it reaches the surface. (Distinct units over four weeks per day slightly
  underestimates how fast new units arrive in a short test and overestimates it in a long one.)
- **Baselines** come from the newest snapshot that measured the metric: the control arm's mean
  and variance from its sufficient statistics. A brief can state its own baseline instead.
- **Sample size and duration** use the same power calculation as the analysis
  (``liftkit.stats.sample_size``), at the brief's MDE, alpha and power.
- **Scores**: ICE = impact × confidence × ease; PIE = (potential + importance + ease) / 3;
  RICE = reach × impact × confidence / effort — the usual definitions.
- **Opportunity**: monthly reach × baseline × expected lift × value per conversion × 12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlglot

from liftkit import stats
from liftkit.analysis.runner import connect_source, data_source
from liftkit.knowledge.records import Record
from liftkit.platform import Platform
from liftkit.registry.briefs import Brief, Scores, ScoringFramework
from liftkit.registry.datasources import DEFAULT_ATTRIBUTE_IDENTIFIERS

TRAFFIC_DAYS = 28


@dataclass(frozen=True)
class Traffic:
    daily_units: float
    units: int
    days: float
    hash_attribute: str
    datasource: str


@dataclass(frozen=True)
class Baseline:
    mean: float
    variance: float
    metric: str
    #: Where it came from: an experiment key, or "brief" when the brief stated it.
    source: str


@dataclass(frozen=True)
class Feasibility:
    mde: float
    sample_size: float | None
    daily_units: float | None
    days: float | None
    weeks: float | None
    baseline: Baseline | None
    traffic: Traffic | None
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Opportunity:
    reach_per_month: float | None
    baseline: float | None
    expected_lift: float | None
    value_per_conversion: float
    conversions_per_year: float | None
    impact_per_year: float | None
    missing: tuple[str, ...]


def measure_traffic(
    platform: Platform,
    *,
    hash_attribute: str = "id",
    datasource: str = "events",
    days: int = TRAFFIC_DAYS,
    connection: Any = None,
) -> Traffic | None:
    """Distinct units assigned on ``hash_attribute`` per day, over the last ``days`` days."""
    source = data_source(platform, datasource)
    now = platform.clock()
    since = now - timedelta(days=days)
    stamp = since.strftime("%Y-%m-%d %H:%M:%S")
    if source.exposure_sql is None:
        attr = hash_attribute.replace("'", "''")
        where = f"hash_attribute = '{attr}' AND timestamp >= TIMESTAMP '{stamp}'"
        sql = f"SELECT COUNT(DISTINCT hash_value), MIN(timestamp) FROM exposures WHERE {where}"
    else:
        unit = DEFAULT_ATTRIBUTE_IDENTIFIERS.get(hash_attribute, hash_attribute)
        sql = (
            f"SELECT COUNT(DISTINCT {unit}), MIN(timestamp) FROM ({source.exposure_sql}) AS "
            f"lk_src WHERE timestamp >= TIMESTAMP '{stamp}'"
        )
    own = connection is None
    conn = connection or connect_source(source)
    try:
        rendered = sqlglot.transpile(sql, read="duckdb", write=_dialect(conn.dialect))[0]
        row = conn.query(rendered).rows[0]
    finally:
        if own:
            conn.close()
    units, first = int(row[0] or 0), row[1]
    if units == 0 or first is None:
        return None
    if isinstance(first, str):
        first = datetime.fromisoformat(first)
    if first.tzinfo is None:
        first = first.replace(tzinfo=now.tzinfo)
    observed = max((now - max(first, since)).total_seconds() / 86400, 1.0)
    return Traffic(units / observed, units, round(observed, 2), hash_attribute, source.key)


def _dialect(name: str) -> str:
    return "postgres" if name in ("postgresql", "postgres") else name


def metric_baseline(records: list[Record], metric: str) -> Baseline | None:
    """The control arm's mean and variance in the newest snapshot that measured ``metric``."""
    newest = sorted(
        (r for r in records if r.experiment is not None and metric in r.metrics),
        key=lambda r: r.started_at or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    for record in newest:
        snapshot = record.snapshot
        if record.experiment is None or snapshot is None or not snapshot.variations:
            continue
        control = snapshot.variations[0]
        for row in snapshot.statistics:
            if row["metric"] == metric and row["variation"] == control:
                moments = _moments(row)
                if moments is not None:
                    return Baseline(*moments, metric=metric, source=record.experiment.key)
    return None


def _moments(row: dict[str, Any]) -> tuple[float, float] | None:
    n = float(row.get("n") or 0.0)
    if n <= 1:
        return None
    total = float(row.get("sum") or 0.0)
    mean = total / n
    if row["kind"] == "ProportionStats":
        return mean, mean * (1 - mean)
    if row["kind"] in ("MeanStats", "CupedMeanStats"):
        variance = (float(row["sum_squares"]) - total * total / n) / (n - 1)
        return mean, max(variance, 0.0)
    return None


def feasibility(
    brief: Brief,
    *,
    baseline: Baseline | None,
    traffic: Traffic | None,
    default_mde: float | None = None,
    arms: int = 2,
) -> Feasibility:
    """Units needed for the brief's MDE, and how long its share of real traffic takes."""
    problems: list[str] = []
    mde = brief.criteria.mde or default_mde or 0.05
    if brief.sizing.baseline is not None:
        b = brief.sizing.baseline
        metric = brief.metrics.primary[0] if brief.metrics.primary else ""
        baseline = Baseline(b, b * (1 - b), metric, "brief")
    if baseline is None:
        problems.append("no baseline: no snapshot measured the primary metric yet; state one")
    n_total: float | None = None
    if baseline is not None:
        if baseline.mean == 0 or baseline.variance == 0:
            problems.append(f"baseline of {baseline.metric} is {baseline.mean:g}: nothing to lift")
        else:
            n_pair = float(
                stats.sample_size(
                    mean=baseline.mean, variance=baseline.variance, mde=mde,
                    alpha=brief.criteria.alpha, power=brief.criteria.power,
                )
            )  # fmt: skip
            # Every extra treatment is compared with the same control: n per arm stays the same.
            n_total = n_pair / 2 * arms if math.isfinite(n_pair) else None
            if n_total is None:
                problems.append(f"no sample size reaches power {brief.criteria.power}")
    daily = None
    if brief.sizing.reach_per_month is not None:
        daily = brief.sizing.reach_per_month / 30.0
    elif traffic is not None:
        daily = traffic.daily_units * brief.sizing.audience_share
    if daily is None or daily <= 0:
        problems.append("no traffic: nothing assigned on this attribute in the last 28 days")
    days = None
    if n_total is not None and daily:
        days = float(math.ceil(n_total / daily))
    return Feasibility(
        mde=mde,
        sample_size=n_total,
        daily_units=daily,
        days=days,
        weeks=None if days is None else round(days / 7, 1),
        baseline=baseline,
        traffic=traffic,
        problems=tuple(problems),
    )


def score(scores: Scores, framework: ScoringFramework) -> float | None:
    """The idea's priority score, or None when an input the framework needs is missing."""
    s = scores
    if framework == "ice":
        if s.impact is None or s.confidence is None or s.ease is None:
            return None
        return float(s.impact * s.confidence * s.ease)
    if framework == "pie":
        if s.potential is None or s.importance is None or s.ease is None:
            return None
        return round((s.potential + s.importance + s.ease) / 3, 4)
    if s.reach is None or s.impact is None or s.confidence is None or s.effort is None:
        return None
    # RICE confidence is a share (0.8); a 1–10 score is read as tenths.
    confidence = s.confidence / 10 if s.confidence > 1 else s.confidence
    return round(s.reach * s.impact * confidence / s.effort, 4)


def opportunity(brief: Brief, *, baseline: Baseline | None, traffic: Traffic | None) -> Opportunity:
    """Projected 12-month impact: reach × baseline × lift × value per conversion."""
    sizing = brief.sizing
    reach = sizing.reach_per_month
    if reach is None and traffic is not None:
        reach = traffic.daily_units * sizing.audience_share * 30.0
    rate = sizing.baseline if sizing.baseline is not None else (baseline.mean if baseline else None)
    given = {"reach": reach, "baseline": rate, "expected_lift": sizing.expected_lift}
    missing = [name for name, value in given.items() if value is None]
    conversions = None
    impact = None
    if not missing:
        conversions = reach * 12 * rate * sizing.expected_lift  # type: ignore[operator]
        impact = conversions * sizing.value_per_conversion
    return Opportunity(
        reach_per_month=reach,
        baseline=rate,
        expected_lift=sizing.expected_lift,
        value_per_conversion=sizing.value_per_conversion,
        conversions_per_year=conversions,
        impact_per_year=impact,
        missing=tuple(missing),
    )
