"""Bulk import of events from Parquet, CSV or NDJSON (``liftkit events import``).

Each row is validated exactly as ``POST /api/v1/events`` validates an event (``schema.EVENT``),
except that there is no age limit (loading history is what imports are for); timestamps further
in the future than the clock-skew limit are still refused. Accepted rows are normalised with
``schema.to_lines`` and loaded into the store in batches with ``segment=None``, so every
``event_id`` already stored (by the server, an earlier import or an earlier chunk) is skipped:
importing the same file twice stores nothing twice.

The file is read with DuckDB, streamed in chunks of ``chunk_rows`` (a 10M-row file never sits
in memory at once):

- Parquet: typed columns; integer or UUID id columns are taken as text, ``TIMESTAMPTZ`` as UTC.
- CSV: every column as text (``"007"`` stays ``"007"``); empty fields are missing values.
- NDJSON (``.ndjson``, ``.jsonl``, ``.json``; a JSON array also works): each line is one event
  as it would be POSTed; a line that is not JSON is rejected as ``(line)``. Blank lines are
  not rows (row numbers count records).

In Parquet and CSV, NULLs are missing values (so one file can mix exposures and track events in
the union of their columns), and ``attributes`` / ``properties`` may be JSON text. Files may be
compressed (``.csv.gz``, ``.ndjson.zst``). A ``received_at`` column (a quarantined spool segment
has one) is ignored: the store's ``received_at`` is the moment of the import. Rows without a
``type`` take ``default_type`` (``--type``).
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import ValidationError

from liftkit.events.schema import (
    EVENT,
    ExposureEvent,
    Limits,
    Rejection,
    TrackEvent,
    rejections,
    to_lines,
    utc_now,
)
from liftkit.events.store import TABLES, EventStore, LoadResult, StoreBusy

#: Format names accepted by ``format=`` (and ``--format``), with their aliases.
FORMATS = {
    "parquet": "parquet",
    "csv": "csv",
    "ndjson": "ndjson",
    "jsonl": "ndjson",
    "json": "ndjson",
}
_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".ndjson": "ndjson",
               ".jsonl": "ndjson", ".json": "ndjson"}  # fmt: skip
_COMPRESSED = (".gz", ".gzip", ".zst")
TYPES = ("exposure", "track")
MAX_REJECTIONS = 20

_TEXT_COLUMNS = {c.name for cs in TABLES.values() for c in cs if c.kind == "text"} | {"type"}
_JSON_COLUMNS = {c.name for cs in TABLES.values() for c in cs if c.kind == "json"}
_TIMESTAMP_COLUMNS = {"timestamp"}
_ID_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT", "UHUGEINT", "UUID"}  # fmt: skip
_IGNORED = "received_at"

Progress = Callable[[int, int], None]


class ImportFailed(Exception):
    """The file cannot be imported (or the store refused a load); ``report`` says what was done.

    Chunks loaded before the failure stay stored; importing the file again is safe.
    """

    def __init__(self, message: str, report: ImportReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(slots=True)
class ImportReport:
    """What an import did. ``rejections`` holds the first ``MAX_REJECTIONS`` problems, each
    with its 1-based data row (the header of a CSV file is not a row), field and message."""

    path: Path
    format: str
    total_rows: int = 0
    rows_read: int = 0
    accepted: int = 0
    exposures: int = 0
    events: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def stored(self) -> int:
        return self.exposures + self.events

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def add(self, result: LoadResult) -> None:
        self.exposures += result.exposures
        self.events += result.events
        self.duplicates += result.duplicates

    def reject(self, problems: list[Rejection]) -> None:
        self.rejected += 1
        room = MAX_REJECTIONS - len(self.rejections)
        if room > 0:
            self.rejections.extend(problems[:room])


def detect_format(path: Path, given: str | None = None) -> str:
    """``given`` (a name or alias in ``FORMATS``), else the format the file's extension names."""
    if given is not None:
        try:
            return FORMATS[given.strip().lower()]
        except KeyError:
            raise ImportFailed(
                f"unknown format {given!r}; use one of: parquet, csv, ndjson"
            ) from None
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    found = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if found is None:
        raise ImportFailed(
            f"cannot tell the format of {path.name} from its extension "
            "(.parquet, .csv, .ndjson, .jsonl or .json); give it with --format"
        )
    return found


def import_file(
    path: Path,
    store: EventStore,
    *,
    format: str | None = None,
    default_type: str | None = None,
    now: datetime | None = None,
    max_future_seconds: float = 300.0,
    chunk_rows: int = 50_000,
    load_rows: int = 250_000,
    progress: Progress | None = None,
    busy_retries: int = 5,
    busy_wait: float = 0.2,
) -> ImportReport:
    """Validate the rows of ``path`` and load the valid ones into ``store``.

    Rows are read and validated ``chunk_rows`` at a time; the accepted ones are appended to a
    temporary segment file that is loaded (``store.load(file, segment=None)``) whenever it
    holds ``load_rows`` events, and at the end. ``progress(rows_done, total_rows)`` is called
    before the first chunk and after each one.

    Raises ``ImportFailed`` when the file cannot be read as ``format`` (nothing is stored: the
    file is counted through first, which finds most such problems), when a load fails, or when
    the store stays busy (locked by another process) through ``busy_retries`` retries with
    growing waits from ``busy_wait`` seconds.
    """
    fmt = detect_format(path, format)
    if default_type is not None and default_type not in TYPES:
        raise ImportFailed(f"--type must be exposure or track, not {default_type!r}")
    if chunk_rows < 1 or load_rows < 1:
        raise ValueError("chunk_rows and load_rows must be at least 1")
    check_readable(path)
    now = utc_now() if now is None else now if now.tzinfo else now.replace(tzinfo=UTC)
    limits = Limits(
        now=now.astimezone(UTC).replace(tzinfo=None),
        max_future_seconds=max_future_seconds,
        max_age_days=None,
        max_events=sys.maxsize,
    )
    validate = EVENT.validate_python
    report = ImportReport(path=path, format=fmt)
    started = time.perf_counter()
    with duckdb.connect() as con, tempfile.TemporaryDirectory(prefix="liftkit-import-") as tmp:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        source = _source(path, fmt)
        try:
            report.total_rows = _count(con, source)
            names, select = _select(con, source, fmt)
        except duckdb.Error as error:
            raise ImportFailed(f"cannot read {path} as {fmt}: {_brief(error)}") from None
        if fmt == "csv" and len(names) == 1 and any(c in names[0] for c in ",;\t|"):
            raise ImportFailed(
                f"cannot make out the columns of {path.name}: DuckDB's CSV sniffer read one "
                f"column named {names[0][:80]!r}; check that every row has as many fields as "
                "the header"
            )
        if report.total_rows and fmt != "ndjson" and "type" not in names and not default_type:
            raise ImportFailed(
                f"{path.name} has no 'type' column; give the type of its rows with "
                "--type exposure or --type track"
            )
        to_item = _row_reader(fmt, names, default_type)
        segment = _Segment(Path(tmp) / "segment.ndjson", store, report, busy_retries, busy_wait)
        if progress is not None:
            progress(0, report.total_rows)
        for rows in _chunks(con, select, chunk_rows, path, fmt, report):
            accepted: list[ExposureEvent | TrackEvent] = []
            keep = accepted.append
            with _gc_paused():
                for number, row in enumerate(rows, report.rows_read + 1):
                    try:
                        event = validate(to_item(row))
                        problem = limits.problem(event.timestamp)
                        if problem is None:
                            keep(event)
                        else:
                            report.reject([Rejection(number, "timestamp", problem)])
                    except ValidationError as error:
                        report.reject(rejections(number, error))
                    except _Unreadable as error:
                        report.reject([Rejection(number, error.field, error.message)])
            report.rows_read += len(rows)
            report.accepted += len(accepted)
            segment.append(accepted, now)
            if segment.size >= load_rows:
                segment.load()
            report.seconds = time.perf_counter() - started
            if progress is not None:
                progress(report.rows_read, report.total_rows)
        segment.load()
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a chunk is validated.

    A chunk makes a few hundred thousand acyclic objects (freed by reference counting) and
    keeps the accepted events alive, so the collector would rescan them again and again: that
    costs a third of the import's time. It runs again between chunks.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Segment:
    """The temporary segment file accepted events collect in until they are loaded."""

    def __init__(
        self, path: Path, store: EventStore, report: ImportReport, retries: int, wait: float
    ) -> None:
        self.path = path
        self.store = store
        self.report = report
        self.retries = retries
        self.wait = wait
        self.size = 0

    def append(self, events: list[ExposureEvent | TrackEvent], received_at: datetime) -> None:
        if events:
            with self.path.open("ab") as file:
                file.write(to_lines(events, received_at=received_at))
            self.size += len(events)

    def load(self) -> None:
        if not self.size:
            return
        self.report.add(_load(self.store, self.path, self.report, self.retries, self.wait))
        self.path.unlink()
        self.size = 0


class _Unreadable(Exception):
    """A row that cannot even be handed to validation (not JSON, or a JSON column that isn't)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_readable(path: Path) -> None:
    """Raise ``ImportFailed`` unless ``path`` is a file this process can read."""
    if not path.exists():
        raise ImportFailed(f"{path}: no such file")
    if path.is_dir():
        raise ImportFailed(f"{path} is a directory, not a file")
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as error:
        raise ImportFailed(f"cannot read {path}: {error.strerror or error}") from None


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _source(path: Path, fmt: str) -> str:
    """The table function that reads ``path``."""
    if fmt == "parquet":
        return f"read_parquet({_quote(path)})"
    if fmt == "csv":
        return f"read_csv({_quote(path)}, header = true, all_varchar = true)"
    # Each record's raw JSON text; a line that is not JSON reads as NULL (rejected as "(line)").
    return f"read_json_objects({_quote(path)}, format = 'auto', ignore_errors = true)"


def _count(con: duckdb.DuckDBPyConnection, source: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {source}").fetchone()
    return int(row[0]) if row else 0


def _select(con: duckdb.DuckDBPyConnection, source: str, fmt: str) -> tuple[list[str], str]:
    """The column names and the query that streams the rows in file order."""
    described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    names = [str(row[0]) for row in described]
    if fmt != "parquet":
        return names, f"SELECT * FROM {source}"
    columns = []
    for name, kind in ((str(r[0]), str(r[1]).upper()) for r in described):
        quoted = '"' + name.replace('"', '""') + '"'
        if name in _TEXT_COLUMNS and kind in _ID_TYPES:
            columns.append(f"CAST({quoted} AS VARCHAR) AS {quoted}")
        elif name in _TIMESTAMP_COLUMNS and kind == "TIMESTAMP WITH TIME ZONE":
            # As UTC without a zone (the session is in UTC): no pytz needed to fetch it.
            columns.append(f"CAST({quoted} AS TIMESTAMP) AS {quoted}")
        else:
            columns.append(quoted)
    return names, f"SELECT {', '.join(columns)} FROM {source}"


def _chunks(
    con: duckdb.DuckDBPyConnection,
    select: str,
    size: int,
    path: Path,
    fmt: str,
    report: ImportReport,
) -> Iterator[list[tuple[Any, ...]]]:
    try:
        result = con.execute(select)
        while rows := result.fetchmany(size):
            yield rows
    except duckdb.Error as error:
        raise ImportFailed(
            f"cannot read {path} as {fmt} after row {report.rows_read}: {_brief(error)}",
            report,
        ) from None


RowReader = Callable[[tuple[Any, ...]], Any]


def _row_reader(fmt: str, names: Sequence[str], default_type: str | None) -> RowReader:
    """A function turning a row into what ``EVENT`` validates (or raising ``_Unreadable``)."""
    if fmt == "ndjson":

        def from_json(row: tuple[Any, ...]) -> Any:
            if row[0] is None:
                raise _Unreadable("(line)", "not valid JSON")
            try:
                item = json.loads(row[0])
            except ValueError:
                raise _Unreadable("(line)", "not valid JSON") from None
            if isinstance(item, dict):
                item.pop(_IGNORED, None)
                if default_type is not None and item.get("type") is None:
                    item["type"] = default_type
            return item

        return from_json

    json_columns = [name for name in names if name in _JSON_COLUMNS]
    ignored = _IGNORED in names
    fill_type = default_type is not None

    def from_columns(row: tuple[Any, ...]) -> Any:
        # NULL is a missing value (DuckDB reads an empty CSV field, quoted or not, as NULL).
        item = {k: v for k, v in zip(names, row, strict=True) if v is not None}
        if ignored:
            item.pop(_IGNORED, None)
        if fill_type and "type" not in item:
            item["type"] = default_type
        for name in json_columns:
            value = item.get(name)
            if isinstance(value, str):
                try:
                    item[name] = json.loads(value)
                except ValueError:
                    raise _Unreadable(name, "not valid JSON") from None
        return item

    return from_columns


def _load(
    store: EventStore, segment: Path, report: ImportReport, retries: int, wait: float
) -> LoadResult:
    for attempt in range(retries + 1):
        try:
            return store.load(segment, None)
        except StoreBusy as error:
            if attempt == retries:
                raise ImportFailed(
                    f"{error} (tried {retries + 1} times); close it there (a notebook's "
                    f"connection, another import) and run the import again. {_done(report)}",
                    report,
                ) from None
            time.sleep(wait * 2**attempt)
        except Exception as error:
            raise ImportFailed(
                f"loading into {store.description} failed: {type(error).__name__}: {error}. "
                f"{_done(report)}",
                report,
            ) from error
    raise AssertionError("unreachable")  # pragma: no cover


def _done(report: ImportReport) -> str:
    if not report.stored:
        return "Nothing was stored."
    return (
        f"{report.stored} events from the first rows were stored; importing the file again "
        "is safe (stored event_ids are skipped)."
    )


def _brief(error: Exception, limit: int = 300) -> str:
    """DuckDB's message without its list of possible fixes (about options liftkit sets)."""
    text = str(error).split("Possible fixes:")[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    brief = "; ".join(lines) or type(error).__name__
    return brief if len(brief) <= limit else brief[: limit - 1] + "…"
