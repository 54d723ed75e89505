"""Analysis SQL: one plan exercising every metric feature, rendered for every dialect.

The dialects liftkit cannot run here (BigQuery, Snowflake, Redshift, Trino, Databricks) are kept
as golden files, so any change to the generated SQL shows up in review; the runnable ones are
kept too, and are executed for real in test_analysis_engines.py. Regenerate after an intended
change with ``LIFTKIT_UPDATE_GOLDEN=1 pytest tests/test_analysis_sql.py``.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from analysis_support import registry_objects
from liftkit.analysis import PlanError, build_plan
from liftkit.analysis import sql as analysis_sql
from liftkit.registry.datasources import DataSource
from liftkit.registry.experiments import Experiment
from liftkit.registry.metrics import FactTable, Metric

GOLDEN = Path(__file__).parent / "golden" / "analysis"
DIALECTS = (
    "duckdb", "postgres", "clickhouse", "spark", "bigquery", "snowflake", "redshift", "trino",
    "databricks",
)  # fmt: skip
NOW = datetime(2026, 3, 20, tzinfo=UTC)

EXTRA_METRICS: list[dict[str, Any]] = [
    {"key": "big_spenders", "type": "mean", "cuped": False,
     "numerator": {"fact_table": "orders", "column": "amount", "aggregation": "max"},
     "capping": {"type": "absolute", "value": 500}},
    {"key": "capped_revenue", "type": "mean",
     "numerator": {"fact_table": "orders", "column": "amount"},
     "capping": {"type": "percentile", "value": 0.99}, "window": {"type": "conversion",
                                                                  "delay_hours": 1, "hours": 72}},
    {"key": "recent_orders", "type": "mean", "cuped": False,
     "numerator": {"fact_table": "orders", "aggregation": "count"},
     "window": {"type": "lookback", "hours": 48}},
    {"key": "order_days", "type": "mean", "cuped": False,
     "numerator": {"fact_table": "orders", "column": "amount", "aggregation": "count_distinct"}},
    {"key": "p90_order", "type": "quantile", "quantile": 0.9, "quantile_level": "event",
     "numerator": {"fact_table": "orders", "column": "amount"}},
    {"key": "p50_spend", "type": "quantile", "quantile": 0.5,
     "numerator": {"fact_table": "orders", "column": "amount"}},
    {"key": "came_back", "type": "retention", "retention_days": [1, 7],
     "numerator": {"fact_table": "views"}},
    {"key": "viewed", "numerator": {"fact_table": "views"}, "inverse": True},
]  # fmt: skip


def full_plan(dialect: str = "duckdb", **analysis: Any) -> Any:
    """A plan using every feature: windows, capping, CUPED, ratio, quantiles, retention,
    activation, a segment, an identifier join and a dimension."""
    objects = registry_objects(dialect)
    facts = {b["key"]: FactTable(**b) for c, b in objects if c == "fact-tables"}
    metrics = {b["key"]: Metric(**b) for c, b in objects if c == "metrics"}
    metrics.update({b["key"]: Metric(**b) for b in EXTRA_METRICS})
    source = next(DataSource(**b) for c, b in objects if c == "data-sources")
    body = next(b for c, b in objects if c == "experiments")
    body["metrics"]["secondary"] += [m["key"] for m in EXTRA_METRICS]
    body["metrics"]["activation"] = "viewed"
    body["analysis"].update(analysis)
    experiment = Experiment(**body)
    segment = ("SELECT user_id FROM identities WHERE user_id <> 'u0'", "user_id")
    return build_plan(experiment, metrics, facts, source, now=NOW, segment=segment)


@functools.cache
def rendered(dialect: str) -> str:
    queries = analysis_sql.build(full_plan())
    parts = [f"-- main\n{analysis_sql.render(queries.main, dialect)};"]
    for key, query in queries.quantiles.items():
        parts.append(f"-- quantile {key}\n{analysis_sql.render(query, dialect)};")
    return "\n\n".join(parts) + "\n"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_sql(dialect: str) -> None:
    text = rendered(dialect)
    path = GOLDEN / f"{dialect}.sql"
    if os.environ.get("LIFTKIT_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with LIFTKIT_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"SQL for {dialect} changed; see {path}"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rendered_sql_parses_in_its_dialect(dialect: str) -> None:
    statements = [s for s in sqlglot.parse(rendered(dialect), read=dialect) if s is not None]
    assert len(statements) == 3  # main and two quantile metrics


def test_dialect_specific_spellings() -> None:
    """Exact percentiles and JSON access are spelled the way each engine needs."""
    assert "quantileExactInclusive(0.99)" in rendered("clickhouse")
    assert "PERCENTILE(" in rendered("spark") and "PERCENTILE_APPROX" not in rendered("spark")
    assert "PERCENTILE_CONT(0.99) WITHIN GROUP" in rendered("postgres")
    assert "JSONExtractString(attributes, 'country')" in rendered("clickhouse")
    assert "INTERVAL '3600 SECOND'" in rendered("postgres")
    assert "AS DATETIME" not in rendered("bigquery")  # absolute time: TIMESTAMP


def test_every_feature_reaches_the_sql() -> None:
    text = rendered("duckdb")
    assert "identities" in text  # identifier join and segment
    assert "INTERVAL 3600 SECOND" in text  # conversion delay
    assert "INTERVAL 262800 SECOND" in text  # delay + 72 h window
    assert "INTERVAL 604800 SECOND" in text  # retention end (and CUPED lookback of 7 days? no: 14)
    assert "INTERVAL 1209600 SECOND" in text  # CUPED lookback, 14 days
    assert "LEAST(" in text and "QUANTILE_CONT" in text  # absolute and percentile capping
    assert "COUNT(DISTINCT" in text and "ROW_NUMBER()" in text
    assert "CAST('2026-03-09 00:00:00' AS TIMESTAMP)" in text  # lookback: end − 48 h


def test_bad_user_sql_is_named() -> None:
    plan = full_plan()
    broken = dict(plan.facts)
    broken["orders"] = broken["orders"].model_copy(update={"sql": "DELETE FROM events"})
    with pytest.raises(ValueError, match="fact table 'orders': must be a SELECT"):
        analysis_sql.build(plan.__class__(**{**plan.__dict__, "facts": broken}))
    with pytest.raises(ValueError, match="dimensions"):
        analysis_sql.build(
            plan.__class__(**{**plan.__dict__, "dimensions": ("country'; DROP TABLE x",)})
        )


def test_plan_errors_say_what_to_change() -> None:
    objects = registry_objects()
    facts = {b["key"]: FactTable(**b) for c, b in objects if c == "fact-tables"}
    source = next(DataSource(**b) for c, b in objects if c == "data-sources")
    experiment = Experiment(**next(b for c, b in objects if c == "experiments"))
    with pytest.raises(PlanError, match="metric 'purchase' is not in the registry"):
        build_plan(experiment, {}, facts, source, now=NOW)
    no_join = source.model_copy(update={"identifier_joins": []})
    metrics = {b["key"]: Metric(**b) for c, b in objects if c == "metrics"}
    with pytest.raises(PlanError, match="fact table 'views' has no 'user_id' column"):
        build_plan(experiment, metrics, facts, no_join, now=NOW)
    unstarted = experiment.model_copy(update={"phases": []})
    with pytest.raises(PlanError, match="no phase yet"):
        build_plan(unstarted, metrics, facts, source, now=NOW)
