"""``liftkit events import`` and ``liftkit events status``.

Thin shells over ``events.importer.import_file`` and the ``EventStore``. ``import`` exits 0 when
at least one row was accepted (stored or already there) or the file holds no rows, and 1 when
every row was rejected or the import could not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from liftkit.cli._common import ConfigFile, DataDir, console, err_console, fail, load_settings
from liftkit.events.importer import (
    TYPES,
    ImportFailed,
    ImportReport,
    check_readable,
    detect_format,
    import_file,
)
from liftkit.events.pipeline import open_store
from liftkit.events.store import EventStore, StoreBusy
from liftkit.settings import Settings

events_app = typer.Typer(help="The event store: bulk imports and row counts.", no_args_is_help=True)

EventsUrl = Annotated[
    str | None,
    typer.Option(
        "--events-url",
        help="event store: duckdb:///PATH or postgresql://… "
        "[env LIFTKIT_EVENTS_URL; default DATA_DIR/events.duckdb]",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``events`` commands to ``app``."""
    app.add_typer(events_app, name="events")


@events_app.command("import")
def import_events(
    file: Annotated[
        Path, typer.Argument(help="Parquet, CSV or NDJSON file of exposure and track events")
    ],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="parquet, csv or ndjson (default: from the extension)"),
    ] = None,
    event_type: Annotated[
        str | None,
        typer.Option("--type", help="exposure or track: the type of rows without one"),
    ] = None,
    events_url: EventsUrl = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Validate and load events from a file, as POST /api/v1/events would (history allowed).

    Events whose event_id is already stored are skipped, so importing a file again is safe.
    Exit code 0 when at least one row was accepted (or the file is empty), 1 when every row
    was rejected.
    """
    try:
        detect_format(file, file_format)
        check_readable(file)
    except ImportFailed as exc:
        fail(escape(str(exc)))
    if event_type is not None and event_type not in TYPES:
        fail(f"--type must be exposure or track, not {escape(repr(event_type))}")
    settings = load_settings(data_dir, None, config, events_url=events_url)
    store = _open_store(settings)
    try:
        with _ProgressBar(file.name) as on_progress:
            report = import_file(
                file,
                store,
                format=file_format,
                default_type=event_type,
                max_future_seconds=settings.ingest_max_future_seconds,
                progress=on_progress,
            )
    except ImportFailed as exc:
        if exc.report is not None and exc.report.rows_read:
            _show(exc.report, store)
        fail(escape(str(exc)))
    finally:
        store.close()
    _show(report, store)
    if report.rows_read and not report.accepted:
        raise typer.Exit(1)


@events_app.command("status")
def status(
    events_url: EventsUrl = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Rows per table of the event store, and the last spool segment loaded into it."""
    settings = load_settings(data_dir, None, config, events_url=events_url)
    default = settings.data_dir / "events.duckdb"
    if not settings.events_url and not default.exists():
        console.print(f"No event store yet: {escape(str(default))} does not exist.")
        return
    store = _open_store(settings)
    try:
        counts = store.counts()
        through = store.loaded_through()
    except StoreBusy as exc:
        fail(f"{escape(store.description)} is open in another process: {escape(str(exc))}")
    finally:
        store.close()
    table = Table(title=escape(store.description), title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(f"Spool segments loaded through: {through}")


def _open_store(settings: Settings) -> EventStore:
    try:
        return open_store(settings)
    except StoreBusy as exc:
        fail(
            f"{escape(str(exc))}; close it there (a notebook's connection, another import) "
            "and try again"
        )
    except Exception as exc:
        where = settings.events_url or settings.data_dir / "events.duckdb"
        fail(f"cannot open the event store {escape(str(where))}: {escape(str(exc))}")


class _RateColumn(ProgressColumn):
    """Rows per second, from Rich's moving estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s", style="progress.data.speed")


class _ProgressBar:
    """A Rich progress bar on stderr; the object entered is the ``progress`` callback."""

    def __init__(self, name: str) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            console=err_console,
        )
        self.task = self.bar.add_task(
            escape(name if len(name) <= 24 else name[:23] + "…"), total=None
        )

    def __enter__(self) -> _ProgressBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)


def _show(report: ImportReport, store: EventStore) -> None:
    """The summary table, then the first rejections."""
    table = Table(
        title=f"{escape(report.path.name)} → {escape(store.description)}", title_justify="left"
    )
    table.add_column("rows")
    table.add_column("", justify="right")
    table.add_column("", style="dim")
    rate = f"in {report.seconds:.1f} s, {report.rows_per_second:,.0f} rows/s"
    table.add_row("read", f"{report.rows_read:,}", rate)
    table.add_row("accepted", f"{report.accepted:,}", "")
    table.add_row(
        "stored",
        f"{report.stored:,}",
        f"{report.exposures:,} exposures, {report.events:,} track events",
    )
    table.add_row("duplicates", f"{report.duplicates:,}", "event_id already stored: skipped")
    table.add_row("rejected", f"{report.rejected:,}", "")
    console.print(table)
    if not report.rejections:
        return
    shown = len({r.index for r in report.rejections})
    problems = Table(
        title=f"First problems ({shown} of {report.rejected:,} rejected rows)",
        title_justify="left",
    )
    problems.add_column("row", justify="right")
    problems.add_column("field")
    problems.add_column("problem")
    for rejection in report.rejections:
        problems.add_row(str(rejection.index), escape(rejection.field), escape(rejection.message))
    console.print(problems)
