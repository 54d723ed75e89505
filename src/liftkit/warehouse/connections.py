"""Read-only connections to the warehouses liftkit runs analysis SQL against.

``connect(kind, url)`` opens one; ``Connection.query(sql)`` runs a single read-only query with
the connection's timeout and returns plain Python values, the same types from every engine, so
analysis code compares results across engines without caring which one ran them.

Read-only is enforced twice: ``ensure_select`` refuses anything but one query before it reaches
the engine, and the engine is opened read-only where it can be (a DuckDB file with
``read_only=True``, PostgreSQL in ``READ ONLY`` transactions that are rolled back after each
query, ClickHouse with ``readonly=1``). Spark SQL has no read-only session, so there
``ensure_select`` is the only guard.

Drivers are imported when a kind is opened: chDB, pyspark and psycopg are optional extras.
ClickHouse lives in ``_clickhouse.py`` and Spark in ``_spark.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, get_args
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from liftkit.registry.datasources import DataSourceType

if TYPE_CHECKING:
    import httpx

#: The registry declares the dialects (a data source's ``type``); they are sqlglot's names.
Dialect = DataSourceType
RUNNABLE: tuple[str, ...] = ("duckdb", "postgres", "clickhouse", "spark")

# How long connect("duckdb", path) waits for a writer (liftkit's event loader holds events.duckdb
# read-write for about a second at a time) before raising WarehouseBusy. Tests shorten it.
DUCKDB_BUSY_WAIT = 10.0


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    seconds: float

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name (a repeated name keeps its last value)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class WarehouseError(Exception):
    """A query or connection failed; the message is safe to show (secrets are redacted)."""


class QueryTimeout(WarehouseError):
    """The query ran longer than the connection's timeout and was cancelled."""


class NotReadOnly(WarehouseError):
    """The SQL is not a single read-only query."""


class WarehouseBusy(WarehouseError):
    """The warehouse is locked by a writer (a DuckDB file) for longer than we wait."""


class Connection(Protocol):
    dialect: str

    def query(self, sql: str) -> QueryResult: ...

    def close(self) -> None: ...


# Statements and clauses that write, change the session or leave the query world. A query is
# refused if any of them appears anywhere in its tree (a CTE can hold a DELETE in PostgreSQL).
_NOT_READ_ONLY: tuple[type[exp.Expression], ...] = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy, exp.Create, exp.Drop, exp.Alter,
    exp.TruncateTable, exp.Undrop, exp.Command, exp.Set, exp.Into, exp.Lock, exp.Pragma,
    exp.Use, exp.Transaction, exp.Commit, exp.Rollback, exp.Cache, exp.Uncache, exp.Refresh,
    exp.Attach, exp.Detach, exp.Install, exp.Kill, exp.Grant, exp.Revoke, exp.Comment,
    exp.LoadData, exp.Export, exp.Analyze, exp.Execute, exp.Declare,
)  # fmt: skip
_LABELS: dict[type[exp.Expression], str] = {
    exp.Into: "SELECT ... INTO",
    exp.Lock: "a locking clause (FOR UPDATE/SHARE)",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def ensure_select(sql: str, dialect: str) -> None:
    """Raise NotReadOnly unless ``sql`` is exactly one query with nothing that writes in it.

    Parsed with sqlglot (``read=dialect``): the statement must be a SELECT, set operation or
    VALUES (with or without WITH), and no node of the tree may be DML, DDL, SELECT ... INTO,
    FOR UPDATE, SET, PRAGMA or an unparsed command. SQL sqlglot cannot parse is refused too,
    with sqlglot's message: what we cannot read we cannot vouch for.
    """
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except SqlglotError as error:
        raise NotReadOnly(
            f"cannot parse the SQL ({dialect}): {_ANSI.sub('', str(error))}"
        ) from None
    except ValueError as error:  # an unknown dialect name
        raise WarehouseError(str(error)) from None
    if len(statements) != 1:
        raise NotReadOnly(f"expected exactly one query, found {len(statements)} statements")
    (tree,) = statements
    if not isinstance(tree, exp.Query | exp.Values):
        raise NotReadOnly(f"only queries can run here, not {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, _NOT_READ_ONLY):
            what = _LABELS.get(type(node), node.key.upper())
            raise NotReadOnly(f"only read-only queries can run here; found {what}")


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(url: str) -> str:
    """Replace each ``${NAME}`` with the environment variable, so configs hold no secrets.

    Values are inserted as they are: percent-encode characters such as ``@`` or ``/`` in a
    password kept in a variable.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise WarehouseError(
                f"environment variable {name} is not set (used in a warehouse URL)"
            )
        return os.environ[name]

    return _ENV_REF.sub(value, url)


_SECRET_PARAMS = frozenset({"password", "pass", "pwd", "key", "secret", "token", "access_token"})


def redact(url: str) -> str:
    """The URL with its password (in user:password@ or a ``password=`` parameter) as ``***``."""
    if "://" not in url:
        return url  # a file path or master name: nothing to hide
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode(
                [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(message: str, url: str | None) -> str:
    """``message`` with the URL's secrets removed, for driver errors that might echo them."""
    if not url:
        return message
    parts = urlsplit(url) if "://" in url else None
    secrets = [parts.password] if parts is not None and parts.password else []
    if parts is not None:
        pairs = parse_qsl(parts.query)
        secrets += [v for k, v in pairs if k.lower() in _SECRET_PARAMS and v]
    secrets += [unquote(s) for s in secrets]
    message = message.replace(url, redact(url))
    for secret in sorted(set(secrets), key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


def plain(value: Any) -> Any:
    """A driver's value as liftkit returns it: Decimal as float, datetimes aware in UTC.

    A naive datetime is a TIMESTAMP without time zone, which liftkit always stores in UTC.
    """
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Watchdog:
    """Calls ``cancel`` after ``seconds``, then every 0.25 s until the query returns.

    Repeating covers a cancel that lands just before the engine starts the work (an interrupt
    of an idle DuckDB connection or a Spark tag with no job yet is a no-op). ``fired`` tells a
    cancelled query apart from one that failed on its own.
    """

    def __init__(self, seconds: float, cancel: Callable[[], object]) -> None:
        self.seconds = seconds
        self.fired = False
        self._cancel = cancel
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="liftkit-query-timeout", daemon=True)

    def _run(self) -> None:
        wait = self.seconds
        while not self._done.wait(wait):
            with self._lock:
                if self._done.is_set():
                    return
                self.fired = True
                self._cancel()
            wait = 0.25

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:  # no cancel runs after this returns
            self._done.set()
        self._thread.join()


def timeout_message(seconds: float) -> str:
    return f"query ran longer than {seconds:g} s and was cancelled"


class DuckDBConnection:
    """A DuckDB database: a file opened read-only, or ``:memory:``."""

    dialect = "duckdb"

    def __init__(self, path: str | None, *, timeout: float, threads: int | None) -> None:
        try:
            import duckdb
        except ImportError:
            raise WarehouseError("DuckDB is not installed: pip install 'liftkit[server]'") from None
        self._duckdb = duckdb
        self.timeout = timeout
        memory = path in (None, "", ":memory:")
        self.path = ":memory:" if memory else str(path)
        self._con = duckdb.connect() if memory else self._open_file(self.path)
        try:
            self._con.execute("SET enable_progress_bar = false")
            # After connecting, not in config=: ICU (time zones) loads only once the database
            # is open, and a config differing from another connection's would be refused.
            self._con.execute("SET TimeZone = 'UTC'")
            if threads is not None:
                self._con.execute(f"SET threads = {int(threads)}")  # instance-wide in DuckDB
        except duckdb.Error as error:
            self._con.close()
            raise WarehouseError(f"cannot set up DuckDB {self.path}: {error}") from None

    def _open_file(self, path: str) -> Any:
        """Open read-only, waiting up to DUCKDB_BUSY_WAIT for a writer to let go of the file."""
        duckdb = self._duckdb
        deadline = time.monotonic() + DUCKDB_BUSY_WAIT
        delay = 0.05
        while True:
            try:
                return duckdb.connect(path, read_only=True)
            except (duckdb.IOException, duckdb.ConnectionException) as error:
                text = str(error)
                # Another process's lock, or this process holding the file read-write.
                busy = "lock" in text.lower() or "different configuration" in text
                if not busy:
                    raise WarehouseError(f"cannot open DuckDB {path}: {text}") from None
                if time.monotonic() + delay > deadline:
                    raise WarehouseBusy(
                        f"DuckDB {path} is held by a writer; gave up after "
                        f"{DUCKDB_BUSY_WAIT:g} s (try again shortly)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def query(self, sql: str) -> QueryResult:
        ensure_select(sql, self.dialect)
        duckdb = self._duckdb
        started = time.perf_counter()
        watchdog = Watchdog(self.timeout, self._con.interrupt)
        try:
            with watchdog:
                cursor = self._con.execute(sql)
                columns = tuple(d[0] for d in cursor.description or ())
                raw = cursor.fetchall()
        except duckdb.Error as error:
            if watchdog.fired or isinstance(error, duckdb.InterruptException):
                raise QueryTimeout(timeout_message(self.timeout)) from None
            if "read-only mode" in str(error):
                raise NotReadOnly(f"DuckDB: {error}") from None
            raise WarehouseError(f"DuckDB: {error}") from None
        rows = [tuple(plain(v) for v in row) for row in raw]
        return QueryResult(columns, rows, time.perf_counter() - started)

    def close(self) -> None:
        self._con.close()


class PostgresConnection:
    """PostgreSQL over psycopg 3; each query runs in a READ ONLY transaction, then rolls back.

    Rolling back undoes anything a query changes in the session (``set_config(...)`` of the
    timeout or of ``default_transaction_read_only``), so one query cannot loosen the next.
    JSON and JSONB come back as text, as they do from the other engines.
    """

    dialect = "postgres"

    def __init__(self, url: str, *, timeout: float) -> None:
        try:
            import psycopg
            from psycopg.types.string import TextLoader
        except ImportError:
            raise WarehouseError(
                "psycopg is not installed: pip install 'liftkit[server]'"
            ) from None
        self._psycopg = psycopg
        self.timeout = timeout
        self._url = url
        try:
            conn = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, min(30, int(timeout)))
            )
        except psycopg.Error as error:
            message = scrub(str(error).strip(), url)
            raise WarehouseError(f"cannot connect to PostgreSQL {redact(url)}: {message}") from None
        conn.execute("SET default_transaction_read_only = on")
        conn.execute(f"SET statement_timeout = {max(1, round(timeout * 1000))}")
        conn.execute("SET TIME ZONE 'UTC'")
        conn.autocommit = False
        conn.read_only = True
        for name in ("json", "jsonb"):
            conn.adapters.register_loader(name, TextLoader)
        self._conn = conn

    def query(self, sql: str) -> QueryResult:
        ensure_select(sql, self.dialect)
        errors = self._psycopg.errors
        started = time.perf_counter()
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(sql)  # no parameters: the text goes to the server as it is
                columns = tuple(d.name for d in cursor.description or ())
                raw = cursor.fetchall()
        except errors.QueryCanceled as error:
            if "statement timeout" in _pg_message(error):  # not an administrator's cancel
                raise QueryTimeout(timeout_message(self.timeout)) from None
            raise WarehouseError(f"PostgreSQL: {_pg_message(error)}") from None
        except errors.ReadOnlySqlTransaction as error:
            raise NotReadOnly(f"PostgreSQL: {_pg_message(error)}") from None
        except self._psycopg.Error as error:
            raise WarehouseError(f"PostgreSQL: {scrub(_pg_message(error), self._url)}") from None
        finally:
            self._rollback()
        rows = [tuple(plain(v) for v in row) for row in raw]
        return QueryResult(columns, rows, time.perf_counter() - started)

    def _rollback(self) -> None:
        """End the query's transaction; a lost connection has nothing left to roll back."""
        with contextlib.suppress(self._psycopg.Error):
            self._conn.rollback()

    def close(self) -> None:
        self._conn.close()


def _pg_message(error: Exception) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary or error).strip()


def connect(
    kind: str,
    url: str | None = None,
    *,
    timeout: float = 300.0,
    threads: int | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Connection:
    """Open a read-only connection of ``kind`` (one of RUNNABLE); ``${NAME}`` in url expands.

    - duckdb: url is a file path (opened read-only, waiting out a writer) or None/":memory:".
    - postgres: a libpq URL.
    - clickhouse: ``chdb:`` / ``chdb:/path[?database=name]`` (embedded) or ``http(s)://...``
      (a server's HTTP interface; ``transport`` swaps httpx's transport, for tests).
    - spark: the master (default ``local[threads or 2]``); the process's SparkSession is reused.
    """
    if timeout <= 0:
        raise WarehouseError(f"timeout must be positive, not {timeout}")
    if url is not None:
        url = expand_env(url)
    if kind == "duckdb":
        return DuckDBConnection(url, timeout=timeout, threads=threads)
    if kind == "postgres":
        if not url:
            raise WarehouseError("postgres needs a URL such as postgresql://user@host:5432/db")
        return PostgresConnection(url, timeout=timeout)
    if kind == "clickhouse":
        from liftkit.warehouse import _clickhouse

        return _clickhouse.connect(url, timeout=timeout, threads=threads, transport=transport)
    if kind == "spark":
        from liftkit.warehouse import _spark

        return _spark.connect(url, timeout=timeout, threads=threads)
    if kind in get_args(Dialect):
        raise WarehouseError(
            f"liftkit renders SQL for {kind} but cannot run it here; run the rendered SQL in "
            f"{kind} yourself, or connect to one of: {', '.join(RUNNABLE)}"
        )
    raise WarehouseError(
        f"unknown warehouse kind {kind!r}; liftkit runs {', '.join(RUNNABLE)} and renders SQL "
        f"for {', '.join(k for k in get_args(Dialect) if k not in RUNNABLE)}"
    )
