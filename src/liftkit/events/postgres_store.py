"""The PostgreSQL event store: a production sink that many app processes can load into.

Semantics are ``DuckDBStore``'s (see ``liftkit.events.store``): one transaction per segment,
the first copy of an ``event_id`` wins within a segment, stored ``event_id``s are skipped (spool
segments look back ``dedup_hours`` by ``received_at``, imports look at everything), and spool
segment numbers go into ``liftkit_loads`` with the rows. A segment's lines are streamed into a
temporary table with ``COPY``, unpacked into typed columns there, and moved into ``exposures``
and ``events`` with one ``INSERT … SELECT`` each.

Differences that PostgreSQL calls for:

- Loads take a transaction-level advisory lock first, so two loaders (or a loader and an
  import) cannot both insert an ``event_id`` that neither has seen yet; DuckDB gets this from
  its single-writer file lock.
- A connection is opened per call, as ``DuckDBStore`` opens its file per call: nothing is shared
  between the loader thread and API threads, and a restarted server costs only a reconnect.
- An unreachable server, a lock wait past ``lock_timeout`` or a full disk raise
  ``StoreUnavailable`` (a ``StoreBusy``), so the loader keeps the segment in the spool and
  retries with backoff instead of quarantining it after three failures.
- PostgreSQL cannot store NUL characters, so a ``\\u0000`` in a string becomes U+FFFD rather
  than failing the whole segment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from liftkit.events.schema import naive_utc, utc_now
from liftkit.events.store import TABLE_OF_TYPE, TABLES, Kind, LoadResult, StoreBusy

_TYPES: dict[Kind, str] = {
    "text": "text",
    "timestamp": "timestamp",
    "int": "integer",
    "float": "double precision",
    "json": "jsonb",
}
#: The segment is staged with ``timestamptz`` so an offset in a line is honoured; the insert
#: converts to the tables' naive UTC ``timestamp`` (sessions run with ``TimeZone=UTC``).
_STAGED_TYPES: dict[Kind, str] = {**_TYPES, "timestamp": "timestamptz"}
_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_LOCK_KEY = 0x6C69_6674_6B69_74  # "liftkit": the advisory lock that serialises loads
_LOCK_TIMEOUT = "30s"
_CONNECT_TIMEOUT = 10
#: SQLSTATE classes worth retrying: connection, resources, lock timeout, shutdown, system.
_TRANSIENT = ("08", "53", "55P03", "57", "58")
_STAGE = "liftkit_segment"  # the segment's events, typed
_LINES = "liftkit_lines"  # the segment's lines as jsonb


class StoreUnavailable(StoreBusy):
    """The server cannot be reached or cannot take the load now; the spool keeps the events."""


def _q(name: str) -> str:
    """Quote an identifier (``timestamp`` and ``name`` are column names here)."""
    return '"' + name.replace('"', '""') + '"'


def _staged_columns() -> dict[str, Kind]:
    """The union of both tables' columns, as the staging table holds them."""
    kinds: dict[str, Kind] = {}
    for columns in TABLES.values():
        for c in columns:
            kinds.setdefault(c.name, c.kind)
    return kinds


def _ddl() -> list[str]:
    statements = []
    for table, columns in TABLES.items():
        body = ", ".join(
            f"{_q(c.name)} {_TYPES[c.kind]}{'' if c.nullable else ' NOT NULL'}" for c in columns
        )
        statements += [
            f"CREATE TABLE IF NOT EXISTS {table} ({body})",
            f"CREATE INDEX IF NOT EXISTS {table}_event_id ON {table} (event_id)",
            f"CREATE INDEX IF NOT EXISTS {table}_received_at ON {table} (received_at)",
        ]
    statements += [
        "CREATE INDEX IF NOT EXISTS exposures_experiment_timestamp "
        'ON exposures (experiment_key, "timestamp")',
        "CREATE TABLE IF NOT EXISTS liftkit_loads (spool text NOT NULL, segment bigint NOT NULL, "
        "loaded_at timestamp NOT NULL, exposures bigint NOT NULL, events bigint NOT NULL, "
        "duplicates bigint NOT NULL, PRIMARY KEY (spool, segment))",
    ]
    return statements


def _conninfo(url: str) -> tuple[str, str]:
    """libpq connection string (UTC sessions, a connect timeout) and a password-free name."""
    if not url.startswith(_SCHEMES):
        scheme = url.partition(":")[0]
        raise ValueError(f"PostgresStore needs a postgresql:// URL, not {scheme}:…")
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        params: dict[str, Any] = conninfo_to_dict(url)
    except psycopg.ProgrammingError as error:
        raise ValueError(f"not a valid PostgreSQL URL: {error}") from None
    params["options"] = " ".join(filter(None, [params.get("options"), "-c TimeZone=UTC"]))
    params.setdefault("connect_timeout", _CONNECT_TIMEOUT)
    host = str(params.get("host") or "localhost")
    if params.get("port") and str(params["port"]) != "5432":
        host += f":{params['port']}"
    name = f"PostgreSQL {host}/{params.get('dbname') or params.get('user') or ''}"
    return make_conninfo("", **params), name


def _transient(error: psycopg.Error) -> bool:
    return isinstance(error, psycopg.OperationalError) and (
        error.sqlstate is None or error.sqlstate.startswith(_TRANSIENT)
    )


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


class PostgresStore:
    def __init__(self, url: str, *, dedup_hours: float = 24.0) -> None:
        self._conninfo, self.description = _conninfo(url)
        self.dedup_hours = dedup_hours
        self._columns = _staged_columns()
        with self._transaction() as con:
            con.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])  # racing first starts
            for statement in _ddl():
                con.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A fresh connection in a transaction: committed on success, always closed."""
        try:
            con = psycopg.connect(self._conninfo)
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"cannot connect to {self.description}: {error}") from error
        try:
            with con:
                yield con
        except psycopg.Error as error:
            if _transient(error):
                raise StoreUnavailable(
                    f"{self.description} is unavailable ({type(error).__name__}: {error}); "
                    "the spool keeps the events until the next attempt"
                ) from error
            raise

    def load(self, path: Path, segment: int | None = None, *, spool: str = "") -> LoadResult:
        with self._transaction() as con:
            con.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
            con.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            if segment is not None and segment <= self._loaded_through(con, spool):
                return LoadResult(0, 0, 0)
            total = self._stage(con, path)
            since = None
            if segment is not None:
                since = utc_now().replace(tzinfo=None) - timedelta(hours=self.dedup_hours)
            inserted = {t: _insert(con, t, kind, since) for kind, t in TABLE_OF_TYPE.items()}
            result = LoadResult(
                inserted["exposures"], inserted["events"], total - sum(inserted.values())
            )
            if segment is not None:
                con.execute(
                    "INSERT INTO liftkit_loads VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        spool,
                        segment,
                        utc_now().replace(tzinfo=None),
                        result.exposures,
                        result.events,
                        result.duplicates,
                    ],
                )
            return result

    def _stage(self, con: psycopg.Connection[tuple[Any, ...]], path: Path) -> int:
        """Stream the segment's lines into the staging table; returns how many there were.

        Lines are copied as ``jsonb`` and unpacked by ``jsonb_populate_record``, so the JSON is
        parsed by the server rather than in the app process, where the loader thread would
        compete with request handling for the GIL.
        """
        body = ", ".join(f"{_q(n)} {_STAGED_TYPES[k]}" for n, k in self._columns.items())
        con.execute(f"CREATE TEMP TABLE {_STAGE} (line bigint, type text, {body}) ON COMMIT DROP")
        con.execute(f"CREATE TEMP TABLE {_LINES} (line bigint, doc jsonb) ON COMMIT DROP")
        count = 0
        with (
            path.open("rb") as file,
            con.cursor() as cur,
            cur.copy(f"COPY {_LINES} (line, doc) FROM STDIN") as copy,
        ):
            for number, raw in enumerate(file, 1):
                if not raw.strip():
                    continue
                try:
                    text = raw.decode()
                    if "\\u0000" in text:
                        text = json.dumps(_without_nul(json.loads(text)))
                except ValueError as error:
                    raise ValueError(f"{path}:{number}: not a JSON line ({error})") from None
                copy.write_row((number, text))
                count += 1
        names = ", ".join(f"r.{_q(n)}" for n in self._columns)
        con.execute(
            f"INSERT INTO {_STAGE} SELECT l.line, r.type, {names} FROM {_LINES} AS l, "
            f"jsonb_populate_record(NULL::{_STAGE}, l.doc) AS r"
        )
        con.execute(f"ANALYZE {_STAGE}")  # row counts for the planner's dedup join
        return count

    def loaded_through(self, spool: str = "") -> int:
        with self._transaction() as con:
            return self._loaded_through(con, spool)

    @staticmethod
    def _loaded_through(con: psycopg.Connection[tuple[Any, ...]], spool: str) -> int:
        row = con.execute(
            "SELECT coalesce(max(segment), 0) FROM liftkit_loads WHERE spool = %s", [spool]
        ).fetchone()
        return int(row[0]) if row else 0

    def counts(self) -> dict[str, int]:
        with self._transaction() as con:
            return {table: _one(con, f"SELECT count(*) FROM {table}") for table in TABLES}

    def exposure_units(self, experiment: str, since: datetime | None) -> list[tuple[str, int]]:
        sql = (
            "SELECT DISTINCT hash_attribute || chr(31) || hash_value, variation_id "
            "FROM exposures WHERE experiment_key = %s"
        )
        params: list[Any] = [experiment]
        if since is not None:
            sql += ' AND "timestamp" >= %s'
            params.append(naive_utc(since))
        with self._transaction() as con:
            rows = con.execute(sql, params).fetchall()
        return [(str(unit), int(variation)) for unit, variation in rows]

    def close(self) -> None:
        """Nothing is held open between calls."""


def _insert(
    con: psycopg.Connection[tuple[Any, ...]], table: str, kind: str, since: datetime | None
) -> int:
    """Move ``kind`` rows from the staging table into ``table``: the first copy of each
    ``event_id`` (earliest ``received_at``, then line), unless already stored."""
    names = ", ".join(_q(c.name) for c in TABLES[table])
    stored = f"SELECT 1 FROM {table} AS t WHERE t.event_id = s.event_id"
    params: list[Any] = [kind]
    if since is not None:
        stored += " AND t.received_at >= %s"
        params.append(since)
    cur = con.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM ("
        f"SELECT DISTINCT ON (event_id) * FROM {_STAGE} WHERE type = %s "
        "ORDER BY event_id, received_at, line) AS s "
        f"WHERE NOT EXISTS ({stored})",
        params,
    )
    return max(cur.rowcount, 0)


def _one(con: psycopg.Connection[tuple[Any, ...]], sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0
