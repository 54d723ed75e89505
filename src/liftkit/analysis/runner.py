"""Running an analysis: registry → plan → SQL in the warehouse → statistics → stored snapshot."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liftkit.analysis import health, results, sql
from liftkit.analysis import store as snapshot_store
from liftkit.analysis.plan import Plan, PlanError, build_plan, builtin_source
from liftkit.analysis.snapshot import Snapshot
from liftkit.registry.datasources import BUILTIN, DataSource, Segment
from liftkit.registry.experiments import Experiment

if TYPE_CHECKING:
    from liftkit.platform import Platform
    from liftkit.warehouse import Connection

#: Called with a short description of each step as it starts, and the number of steps.
Progress = Callable[[str, int], None]


def data_source(platform: Platform, key: str) -> DataSource:
    """A data source from the registry; ``events`` is the embedded store unless overridden."""
    found = platform.registry.find("data-sources", key)
    if isinstance(found, DataSource):
        return found
    if key != BUILTIN:
        raise PlanError(f"data source {key!r} does not exist")
    url = platform.settings.events_url
    if not url or url.startswith("duckdb:///"):
        url = str(
            Path(url.removeprefix("duckdb:///"))
            if url
            else platform.settings.data_dir / "events.duckdb"
        )
    return builtin_source(url)


def plan_experiment(
    platform: Platform, experiment: str | Experiment, *, now: datetime | None = None
) -> Plan:
    """The plan of an experiment's analysis as the registry defines it now.

    Given an ``Experiment`` object rather than a key, that object is planned as it is (the
    controller plans a copy with its own settings, metrics or phase).
    """
    reg = platform.registry
    if isinstance(experiment, str):
        found = reg.find("experiments", experiment)
        if not isinstance(found, Experiment):
            raise PlanError(f"experiment {experiment!r} does not exist")
        experiment = found
    source = data_source(platform, experiment.analysis.datasource)
    segment = None
    if experiment.analysis.segment is not None:
        seg = reg.find("segments", experiment.analysis.segment)
        if not isinstance(seg, Segment):
            raise PlanError(
                f"analysis.segment: segment {experiment.analysis.segment!r} does not exist"
            )
        segment = (seg.sql, seg.identifier_type)
    return build_plan(
        experiment,
        {m.key: m for m in reg.all("metrics")},
        {f.key: f for f in reg.all("fact-tables")},
        source,
        now=now or platform.clock(),
        segment=segment,
        # liftkit's exposures table keeps attributes as jsonb in PostgreSQL.
        attributes_type="jsonb" if source.type == "postgres" else "json",
    )


def connect_source(source: DataSource, *, threads: int | None = None) -> Connection:
    from liftkit.warehouse import RUNNABLE, connect

    if source.type not in RUNNABLE:
        raise PlanError(
            f"data source {source.key!r} is {source.type}: liftkit renders its SQL "
            f"(liftkit analyze --sql --dialect {source.type}) but can only run "
            f"{', '.join(RUNNABLE)} itself"
        )
    return connect(source.type, source.url, timeout=source.timeout_seconds, threads=threads)


@dataclass(frozen=True)
class Measured:
    """What the warehouse returned for a plan, before any comparison."""

    plan: Plan
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    quantile_rows: dict[str, dict[Any, dict[str, Any]]]
    queries: dict[str, str]
    dialect: str
    seconds: float

    def stats(self) -> tuple[list[list[Any] | None], np.ndarray[Any, Any], int]:
        """Per metric, the sufficient statistics of each arm; units per arm; units in several."""
        _, per_metric, units, multiple = _tally(
            self.plan, self.columns, self.rows, self.quantile_rows
        )
        return per_metric, units, multiple


def _tally(
    plan: Plan,
    columns: tuple[str, ...] | list[str],
    rows: list[tuple[Any, ...]],
    quantile_rows: dict[str, dict[Any, dict[str, Any]]],
) -> tuple[results.Cube, list[list[Any] | None], np.ndarray[Any, Any], int]:
    arms = len(plan.variations)
    cube = results.Cube.from_rows(plan, columns, rows)
    totals = cube.totals(np.ones(len(cube.arm), dtype=bool), arms)
    per_metric: list[list[Any] | None] = []
    for k, metric in enumerate(plan.metrics):
        if metric.type == "quantile":
            by_arm = quantile_rows.get(metric.key, {})
            per_metric.append(
                [results.quantile_stats(metric, by_arm.get(a, {})) for a in range(arms)]
            )
        else:
            per_metric.append([results.metric_stats(k, metric, totals, a) for a in range(arms)])
    return cube, per_metric, totals["units"], int(cube.units[cube.arm < 0].sum())


def measure(
    platform: Platform,
    plan: Plan,
    *,
    progress: Progress | None = None,
    connection: Connection | None = None,
) -> Measured:
    """Run a plan's queries in its data source."""
    started = time.perf_counter()
    queries = sql.build(plan)
    steps = 2 + len(queries.quantiles)
    tell = progress or (lambda step, total: None)
    own = connection is None
    conn = connection or connect_source(plan.source)
    try:
        texts = {"main": sql.render(queries.main, conn.dialect)}
        texts.update({k: sql.render(q, conn.dialect) for k, q in queries.quantiles.items()})
        tell("metrics query", steps)
        main = conn.query(texts["main"])
        quantile_rows: dict[str, dict[Any, dict[str, Any]]] = {}
        for name in queries.quantiles:
            tell(f"quantile {name}", steps)
            answer = conn.query(texts[name])
            quantile_rows[name] = {
                r["lk_sarm"]: r
                for r in ({k.lower(): v for k, v in rec.items()} for rec in answer.records())
            }
    finally:
        if own:
            conn.close()
    tell("statistics", steps)
    return Measured(
        plan,
        tuple(main.columns),
        main.rows,
        quantile_rows,
        texts,
        conn.dialect,
        time.perf_counter() - started,
    )


def run(
    platform: Platform,
    key: str,
    *,
    actor: str = "system",
    progress: Progress | None = None,
    connection: Connection | None = None,
    save: bool = True,
) -> Snapshot:
    """Analyse experiment ``key`` and store the snapshot (unless ``save`` is False)."""
    now = platform.clock()
    plan = plan_experiment(platform, key, now=now)
    measured = measure(platform, plan, progress=progress, connection=connection)
    return snapshot_of(platform, measured, now=now, actor=actor, save=save)


def snapshot_of(
    platform: Platform, measured: Measured, *, now: datetime, actor: str, save: bool = True
) -> Snapshot:
    """The snapshot of a measurement, stored unless ``save`` is False."""
    plan = measured.plan
    snapshot = analyse(
        plan, measured.columns, measured.rows, measured.quantile_rows, now=now, actor=actor
    )
    snapshot = snapshot.model_copy(
        update={
            "datasource": plan.source.key,
            "dialect": measured.dialect,
            "queries": measured.queries,
            "phase": plan.phase,
            "seconds": measured.seconds,
        }
    )
    return snapshot_store.save(platform.engine, snapshot) if save else snapshot


def analyse(
    plan: Plan,
    columns: tuple[str, ...] | list[str],
    rows: list[tuple[Any, ...]],
    quantile_rows: dict[str, dict[Any, dict[str, Any]]],
    *,
    now: datetime,
    actor: str,
) -> Snapshot:
    """Statistics, health and decision from the queries' results (no I/O)."""
    cube, per_metric, units, multiple = _tally(plan, columns, rows, quantile_rows)
    days = (plan.end - plan.start).total_seconds() / 86400
    projected = float(units.sum()) * plan.settings.planned_days / max(days, 1.0)
    comparer = results.Comparer(plan, sequential_tuning=max(projected, 1.0))
    metric_results = results.metric_results(
        plan, comparer, per_metric, correct=True, guardrails=True
    )
    checked, needed = health.check(plan, units, multiple, per_metric, days)
    return Snapshot(
        experiment=plan.experiment,
        phase=0,
        created_at=now,
        created_by=actor,
        start=plan.start,
        end=plan.end,
        datasource="",
        dialect=plan.dialect,
        engine=plan.settings.engine,
        sequential=plan.settings.sequential,
        correction=plan.settings.correction,
        alpha=plan.settings.alpha,
        variations=list(plan.variations),
        health=checked,
        decision=health.decide(plan, checked, metric_results, days, needed),
        results=metric_results,
        dimensions=results.slices(plan, cube, comparer),
        series=results.series(plan, cube, comparer),
        statistics=results.statistics_rows(plan, per_metric),
    )
