"""An analysis plan: the registry objects an analysis needs, resolved and checked once.

The SQL builder and the statistics read only the plan, never the registry, so both can be tested
(and benchmarked) from a plan built by hand, and every registry problem (a missing metric, a fact
table without the experiment's identifier) is reported before any query runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from liftkit.registry.datasources import BUILTIN, DataSource, IdentifierJoin
from liftkit.registry.experiments import AnalysisSettings, Experiment
from liftkit.registry.metrics import Capping, FactTable, Metric, MetricSource

Role = Literal["primary", "secondary", "guardrail"]


class PlanError(ValueError):
    """The experiment cannot be analysed as configured (the message says what to change)."""


@dataclass(frozen=True)
class Variable:
    """One per-unit number aggregated from a fact table (a metric's numerator or denominator).

    ``binary`` variables are 1 when any row matches (proportions, retention), else 0.
    Window bounds are seconds relative to the unit's first exposure; ``lookback`` counts only
    rows in that many seconds before the analysis ends.
    """

    fact: str
    column: str
    aggregation: str
    filters: tuple[str, ...]
    binary: bool
    delay: int = 0
    window: int | None = None
    lookback: int | None = None


@dataclass(frozen=True)
class PlannedMetric:
    key: str
    name: str
    type: str
    role: Role
    inverse: bool
    numerator: Variable
    denominator: Variable | None = None
    #: CUPED pre-period length in seconds (None: no covariate).
    cuped: int | None = None
    capping: Capping = field(default_factory=Capping)
    quantile: float | None = None
    quantile_level: str = "unit"
    #: Retention: units are counted once this many seconds have passed since their exposure.
    complete_after: int | None = None
    min_sample_size: int = 0


@dataclass(frozen=True)
class Plan:
    experiment: str
    variations: tuple[str, ...]
    weights: tuple[float, ...]
    start: datetime
    end: datetime
    identifier: str
    dialect: str
    settings: AnalysisSettings
    #: The data source's exposure SQL; None means liftkit's ``exposures`` table.
    exposure_sql: str | None
    #: How the built-in exposures table stores attributes: ``json`` (DuckDB) or ``jsonb``.
    attributes_type: str
    segment_sql: str | None
    segment_identifier: str | None
    dimensions: tuple[str, ...]
    facts: dict[str, FactTable]
    joins: tuple[IdentifierJoin, ...]
    metrics: tuple[PlannedMetric, ...]
    #: Where the SQL runs, and the index of the phase analysed.
    source: DataSource
    phase: int
    activation: Variable | None = None


def _seconds(hours: float | None) -> int | None:
    return None if hours is None else round(hours * 3600)


def _variable(source: MetricSource, metric: Metric, binary: bool) -> Variable:
    window = metric.window
    delay = _seconds(window.delay_hours) or 0
    span = lookback = None
    if metric.retention_days is not None:
        first, last = metric.retention_days
        delay, span = round(first * 86400), round((last - first) * 86400)
    elif window.type == "conversion":
        span = _seconds(window.hours)
    elif window.type == "lookback":
        lookback = _seconds(window.hours)
    return Variable(
        fact=source.fact_table,
        column=source.column,
        aggregation=source.aggregation,
        filters=tuple(source.filters),
        binary=binary,
        delay=delay,
        window=span,
        lookback=lookback,
    )


def plan_metric(metric: Metric, role: Role, cuped_allowed: bool) -> PlannedMetric:
    """The plan of one metric; CUPED applies to proportions, means and ratios."""
    binary = metric.type in ("proportion", "retention")
    numerator = _variable(metric.numerator, metric, binary)
    denominator = None
    if metric.denominator is not None:
        denominator = _variable(metric.denominator, metric, False)
    cuped = None
    if cuped_allowed and metric.cuped and metric.type in ("proportion", "mean", "ratio"):
        cuped = metric.cuped_lookback_days * 86400
    complete_after = None
    if metric.retention_days is not None:
        complete_after = round(metric.retention_days[1] * 86400)
    return PlannedMetric(
        key=metric.key,
        name=metric.name or metric.key,
        type=metric.type,
        role=role,
        inverse=metric.inverse,
        numerator=numerator,
        denominator=denominator,
        cuped=cuped,
        capping=metric.capping,
        quantile=metric.quantile,
        quantile_level=metric.quantile_level,
        complete_after=complete_after,
        min_sample_size=metric.min_sample_size,
    )


def _fact_identifier(fact: FactTable, identifier: str, joins: tuple[IdentifierJoin, ...]) -> None:
    if identifier in fact.identifier_columns:
        return
    for join in joins:
        if identifier in join.identifiers and any(
            other in fact.identifier_columns for other in join.identifiers if other != identifier
        ):
            return
    raise PlanError(
        f"fact table {fact.key!r} has no {identifier!r} column (it has "
        f"{', '.join(fact.identifier_columns)}) and no identifier join maps one to it"
    )


def build_plan(
    experiment: Experiment,
    metrics: dict[str, Metric],
    facts: dict[str, FactTable],
    source: DataSource,
    *,
    now: datetime,
    segment: tuple[str, str] | None = None,
    attributes_type: str = "json",
) -> Plan:
    """Resolve an experiment's metrics into a plan; raises :class:`PlanError` on any gap.

    The window is the current phase: from its start to its end (or ``now`` while it runs).
    ``segment`` is the segment's (SQL, identifier type).
    """
    phase = experiment.current_phase()
    if phase is None:
        raise PlanError(f"experiment {experiment.key!r} has no phase yet: start it first")
    # Whole seconds: ClickHouse's DateTime literals have no fraction.
    end = (phase.ended_at or now).replace(microsecond=0)
    start = phase.started_at.replace(microsecond=0)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    if end <= start:
        raise PlanError(f"experiment {experiment.key!r}: its phase has not started yet")
    settings = experiment.analysis
    identifier = settings.identifier_type or source.identifier_for(experiment.hash_attribute)
    if identifier not in source.identifier_types:
        raise PlanError(
            f"analysis.identifier_type: {identifier!r} is not an identifier type of data source "
            f"{source.key!r} ({', '.join(source.identifier_types)})"
        )
    joins = tuple(source.identifier_joins)
    roles: list[tuple[str, Role]] = [
        *((k, "primary") for k in experiment.metrics.primary),
        *((k, "secondary") for k in experiment.metrics.secondary),
        *((k, "guardrail") for k in experiment.metrics.guardrails),
    ]
    planned: list[PlannedMetric] = []
    seen: set[str] = set()
    used: dict[str, FactTable] = {}

    def need(key: str) -> Metric:
        if key not in metrics:
            raise PlanError(f"metric {key!r} is not in the registry")
        metric = metrics[key]
        for src in (metric.numerator, metric.denominator):
            if src is None:
                continue
            if src.fact_table not in facts:
                raise PlanError(f"metric {key!r}: fact table {src.fact_table!r} does not exist")
            fact = facts[src.fact_table]
            if fact.datasource != source.key:
                raise PlanError(
                    f"metric {key!r}: fact table {fact.key!r} is in data source "
                    f"{fact.datasource!r}, the experiment is analysed in {source.key!r}"
                )
            _fact_identifier(fact, identifier, joins)
            used[fact.key] = fact
        return metric

    for key, role in roles:
        if key in seen:
            continue
        seen.add(key)
        planned.append(plan_metric(need(key), role, settings.cuped))
    if not planned:
        raise PlanError(f"experiment {experiment.key!r} has no metrics: add a primary metric")
    activation = None
    if experiment.metrics.activation is not None:
        act = need(experiment.metrics.activation)
        activation = _variable(act.numerator, act, True)
    weights = experiment.weights()
    return Plan(
        experiment=experiment.key,
        variations=tuple(v.key for v in experiment.variations),
        weights=tuple(weights),
        start=start,
        end=end,
        identifier=identifier,
        dialect=source.type,
        source=source,
        phase=len(experiment.phases) - 1,
        settings=settings,
        exposure_sql=source.exposure_sql,
        attributes_type=attributes_type,
        segment_sql=segment[0] if segment else None,
        segment_identifier=segment[1] if segment else None,
        dimensions=tuple(settings.dimensions),
        facts=used,
        joins=joins,
        metrics=tuple(planned),
        activation=activation,
    )


def builtin_source(events_url: str) -> DataSource:
    """The embedded event store as a data source (DuckDB file, or PostgreSQL when configured)."""
    if events_url.startswith(("postgresql://", "postgres://")):
        return DataSource(key=BUILTIN, name="liftkit events", type="postgres", url=events_url)
    return DataSource(key=BUILTIN, name="liftkit events", type="duckdb", url=events_url)
