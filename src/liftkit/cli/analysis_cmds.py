"""``liftkit analyze EXPERIMENT``: run an experiment's analysis and show (or export) it.

``--sql`` prints the SQL instead, for any dialect liftkit renders (including the warehouses it
cannot run here), so an analyst can read or run it by hand.
"""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from liftkit.analysis import PlanError, Snapshot, plan_experiment, run
from liftkit.analysis import sql as analysis_sql
from liftkit.analysis.snapshot import MetricResult
from liftkit.cli._common import ConfigFile, DatabaseUrl, DataDir, console, fail, open_platform
from liftkit.registry.datasources import DIALECTS


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def register(app: typer.Typer) -> None:
    app.command()(analyze)


def analyze(
    experiment: Annotated[str, typer.Argument(help="the experiment's key")],
    format: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.table,
    save: Annotated[bool, typer.Option(help="store the snapshot (history is kept)")] = True,
    show_sql: Annotated[
        bool, typer.Option("--sql", help="print the SQL instead of running it")
    ] = False,
    dialect: Annotated[
        str | None,
        typer.Option(help=f"with --sql: render for this dialect ({', '.join(DIALECTS)})"),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Analyse an experiment: queries, statistics, health checks and a stored snapshot."""
    if dialect is not None and not show_sql:
        fail("--dialect only applies with --sql (an analysis runs in its data source's dialect)")
    platform = open_platform(data_dir, database_url, config)
    try:
        if show_sql:
            _print_sql(platform, experiment, dialect)
            return
        snapshot = _run(platform, experiment, save=save, quiet=format != Format.table)
    except PlanError as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc))
    finally:
        platform.close()
    if format == Format.json:
        print(snapshot.model_dump_json(indent=2))
    elif format == Format.csv:
        print(_csv(snapshot), end="")
    else:
        show(snapshot)


def _print_sql(platform: object, experiment: str, dialect: str | None) -> None:
    from liftkit.platform import Platform

    assert isinstance(platform, Platform)
    plan = plan_experiment(platform, experiment)
    target = dialect or plan.dialect
    if target not in DIALECTS:
        fail(f"--dialect must be one of {', '.join(DIALECTS)}, not {target!r}")
    queries = analysis_sql.build(plan)
    print(f"-- {experiment}: metrics ({target})")
    print(analysis_sql.render(queries.main, target) + ";")
    for key, query in queries.quantiles.items():
        print(f"\n-- quantile metric {key}")
        print(analysis_sql.render(query, target) + ";")


def _run(platform: object, experiment: str, *, save: bool, quiet: bool) -> Snapshot:
    from liftkit.platform import Platform
    from liftkit.warehouse import WarehouseError

    assert isinstance(platform, Platform)
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task(f"analysing {experiment}", total=None)

        def step(name: str, total: int) -> None:
            bar.update(task, description=f"{experiment}: {name}", total=total)
            bar.advance(task)

        try:
            return run(platform, experiment, actor="cli", progress=step, save=save)
        except WarehouseError as exc:
            fail(f"the warehouse query failed: {exc}")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:+.1%}"


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f"[{low:+.1%}, {high:+.1%}]"


def _evidence(snapshot: Snapshot, v: object) -> str:
    from liftkit.analysis.snapshot import VariationResult

    assert isinstance(v, VariationResult)
    if snapshot.engine == "bayesian":
        return "" if v.chance_to_win is None else f"{v.chance_to_win:.1%} to win"
    return "" if v.p_value is None else f"p = {v.p_value:.3g}"


_STYLE = {"win": "green", "lose": "red", "neutral": "dim"}


def _metric_rows(table: Table, snapshot: Snapshot, metric: MetricResult) -> None:
    for i, v in enumerate(metric.variations):
        verdict: str = v.significance or ""
        if v.non_inferior is not None:
            verdict += " (within margin)" if v.non_inferior else " (not shown safe)"
        table.add_row(
            f"{metric.name} [dim]{metric.role}[/]" if i == 0 else "",
            escape(v.variation),
            f"{v.units:,}",
            f"{v.value:.4g}",
            _pct(v.effect),
            _interval(v.ci_low, v.ci_high),
            _evidence(snapshot, v),
            f"[{_STYLE.get(v.significance or '', '')}]{verdict}[/]" if verdict else (v.error or ""),
        )


def show(snapshot: Snapshot) -> None:
    """The snapshot as a Rich table, its health warnings and the decision."""
    title = (
        f"{snapshot.experiment}: {snapshot.start:%Y-%m-%d} to {snapshot.end:%Y-%m-%d %H:%M} UTC "
        f"({snapshot.engine}{', sequential' if snapshot.sequential else ''})"
    )
    table = Table(title=escape(title))
    for name in ("metric", "variation", "units", "value", "effect", "95% CI", "evidence", ""):
        table.add_column(name, justify="right" if name in ("units", "value", "effect") else "left")
    for metric in snapshot.results:
        _metric_rows(table, snapshot, metric)
        table.add_section()
    console.print(table)
    health = snapshot.health
    srm = "n/a" if health.srm_p_value is None else f"{health.srm_p_value:.3g}"
    console.print(
        f"units: {', '.join(f'{k} {v:,}' for k, v in health.units.items())}; SRM p = {srm}; "
        f"multiple exposures: {health.multiple_exposures:,}"
    )
    for warning in health.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    d = snapshot.decision
    days = f" ({d.days_left} days left)" if d.days_left is not None else ""
    target = f" {d.variation}" if d.variation else ""
    console.print(f"[bold]decision: {d.action}{escape(target)}[/]{days}: {escape(d.reason)}")
    if snapshot.id is not None:
        console.print(f"[dim]snapshot {snapshot.id} saved; {snapshot.seconds:.2f} s[/]")


def _csv(snapshot: Snapshot) -> str:
    rows = snapshot.rows()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["experiment"])
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()}
        )
    return out.getvalue()
