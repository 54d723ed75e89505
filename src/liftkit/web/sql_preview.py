"""What the metric and fact-table pages show of the warehouse: generated SQL and sample rows.

A metric has no SQL of its own: liftkit generates it per experiment (``analysis.sql``). To show
an analyst what their metric becomes, the preview plans the metric for an example experiment
(two variations, the last 14 days) with the analysis's own planner and SQL builder, so what is
shown is exactly what an analysis would run, rendered in any dialect liftkit supports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from liftkit.analysis import sql
from liftkit.analysis.plan import Plan, PlanError, plan_metric
from liftkit.analysis.runner import connect_source, data_source
from liftkit.platform import Platform
from liftkit.registry.experiments import AnalysisSettings
from liftkit.registry.metrics import FactTable, Metric
from liftkit.warehouse import QueryResult, WarehouseError

#: The experiment key the preview's SQL is written for.
EXAMPLE_EXPERIMENT = "example-experiment"
PREVIEW_DAYS = 14
#: Sample rows of a fact table, and how long fetching them may take.
PREVIEW_ROWS = 20
PREVIEW_TIMEOUT = 15.0


@dataclass(frozen=True)
class MetricSql:
    """The rendered analysis queries of a metric (``main``, plus one for a quantile)."""

    dialect: str
    source: str
    identifier: str
    queries: dict[str, str]


def _facts(platform: Platform, metric: Metric) -> dict[str, FactTable]:
    used: dict[str, FactTable] = {}
    for src in (metric.numerator, metric.denominator):
        if src is None:
            continue
        found = platform.registry.find("fact-tables", src.fact_table)
        if not isinstance(found, FactTable):
            raise PlanError(f"fact table {src.fact_table!r} does not exist")
        used[found.key] = found
    return used


def metric_sql(platform: Platform, metric: Metric, dialect: str | None = None) -> MetricSql:
    """The SQL an analysis of ``metric`` runs, in ``dialect`` (default: its data source's).

    Raises ``PlanError`` or ``ValueError`` with a message fit to show when it cannot be built.
    """
    facts = _facts(platform, metric)
    first = facts[metric.numerator.fact_table]
    source = data_source(platform, first.datasource)
    others = [f for f in facts.values() if f.datasource != source.key]
    if others:
        raise PlanError(
            f"fact tables {first.key!r} and {others[0].key!r} are in different data sources"
        )
    shared = [
        c
        for c in first.identifier_columns
        if all(c in f.identifier_columns for f in facts.values())
    ]
    identifier = (shared or first.identifier_columns)[0]
    end = platform.clock().replace(microsecond=0)
    end = end if end.tzinfo is not None else end.replace(tzinfo=UTC)
    plan = Plan(
        experiment=EXAMPLE_EXPERIMENT,
        variations=("control", "treatment"),
        weights=(0.5, 0.5),
        start=end - timedelta(days=PREVIEW_DAYS),
        end=end,
        identifier=identifier,
        dialect=source.type,
        settings=AnalysisSettings(),
        exposure_sql=source.exposure_sql,
        attributes_type="jsonb" if source.type == "postgres" else "json",
        segment_sql=None,
        segment_identifier=None,
        dimensions=(),
        facts=facts,
        joins=tuple(source.identifier_joins),
        metrics=(plan_metric(metric, "primary", cuped_allowed=True),),
        source=source,
        phase=0,
    )
    queries = sql.build(plan)
    target = dialect or source.type
    rendered = {"main": sql.render(queries.main, target)}
    rendered.update({f"quantile {k}": sql.render(q, target) for k, q in queries.quantiles.items()})
    return MetricSql(target, source.key, identifier, rendered)


@dataclass(frozen=True)
class Rows:
    """A fact table's first rows, or why they could not be read."""

    sql: str
    result: QueryResult | None = None
    error: str | None = None


def fact_rows(platform: Platform, fact: FactTable, limit: int = PREVIEW_ROWS) -> Rows:
    """The first ``limit`` rows of a fact table's SQL, run read-only with a short timeout."""
    try:
        source = data_source(platform, fact.datasource)
    except PlanError as error:
        return Rows(fact.sql, error=str(error))
    try:
        parsed = sqlglot.parse_one(fact.sql, read=source.type)
        if not isinstance(parsed, exp.Query):
            return Rows(fact.sql, error="the fact table's SQL is not a SELECT query")
        query = exp.select(exp.Star()).from_(parsed.subquery("lk_preview")).limit(limit)
        text = sql.render(query, source.type)
    except (SqlglotError, ValueError) as error:
        return Rows(fact.sql, error=f"cannot parse the SQL ({source.type}): {error}")
    bounded = source.model_copy(
        update={"timeout_seconds": min(source.timeout_seconds, PREVIEW_TIMEOUT)}
    )
    try:
        conn = connect_source(bounded, threads=1)
    except (PlanError, WarehouseError) as error:
        return Rows(text, error=str(error))
    try:
        return Rows(text, result=conn.query(text))
    except WarehouseError as error:
        return Rows(text, error=str(error))
    finally:
        conn.close()
