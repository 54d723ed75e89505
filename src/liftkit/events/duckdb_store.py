"""The embedded event store: ``events.duckdb`` in the data directory.

The file is opened for each load and closed after it, so between loads other processes (a
notebook with ``duckdb.connect(path, read_only=True)``, ``liftkit events import``) can open it.
While someone else holds it, loads raise ``StoreBusy`` and the spool keeps the events safe
until the loader retries.

Deduplication: a spool segment is checked against the events that *arrived* within the last
``dedup_hours`` (a resend comes minutes after the original, and ``received_at`` grows with the
file, so the check reads only the newest row groups however late the events' own timestamps
are). An import (``segment=None``) is checked against every stored event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from liftkit.events.schema import utc_now
from liftkit.events.store import TABLE_OF_TYPE, TABLES, LoadResult, StoreBusy

_TYPES = {
    "text": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "int": "INTEGER",
    "float": "DOUBLE",
    "json": "JSON",
}


def _ddl() -> list[str]:
    statements = []
    for table, columns in TABLES.items():
        body = ", ".join(
            f"{c.name} {_TYPES[c.kind]}{'' if c.nullable else ' NOT NULL'}" for c in columns
        )
        statements.append(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
    statements.append(
        "CREATE TABLE IF NOT EXISTS liftkit_loads (spool VARCHAR NOT NULL, "
        "segment BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL, exposures BIGINT NOT NULL, "
        "events BIGINT NOT NULL, duplicates BIGINT NOT NULL, PRIMARY KEY (spool, segment))"
    )
    return statements


def _read_json_columns() -> str:
    """The ``columns`` argument of ``read_json``: the union of both tables, plus ``type``."""
    kinds: dict[str, str] = {"type": "VARCHAR"}
    for columns in TABLES.values():
        for c in columns:
            # Read with the offset the line carries; the insert casts to UTC (TimeZone=UTC).
            kinds[c.name] = "TIMESTAMPTZ" if c.kind == "timestamp" else _TYPES[c.kind]
    return "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in kinds.items()) + "}"


class DuckDBStore:
    def __init__(
        self, path: Path, *, dedup_hours: float = 24.0, threads: int | None = None
    ) -> None:
        self.path = path
        self.description = f"DuckDB {path}"
        self.dedup_hours = dedup_hours
        self._config: dict[str, Any] = {} if threads is None else {"threads": threads}
        self._columns = _read_json_columns()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            for statement in _ddl():
                con.execute(statement)

    def _connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        try:
            con = duckdb.connect(str(self.path), read_only=read_only, config=self._config)
        except duckdb.IOException as error:
            if "lock" in str(error).lower():
                raise StoreBusy(f"{self.path} is open in another process") from error
            raise
        except duckdb.ConnectionException as error:
            # An analysis in this process holds the file read-only: wait for it, like a lock.
            if "different configuration" in str(error):
                raise StoreBusy(f"{self.path} is open read-only for an analysis") from error
            raise
        con.execute("SET enable_progress_bar = false")  # no bar of DuckDB's own on stdout
        con.execute("SET TimeZone = 'UTC'")
        return con

    def load(self, path: Path, segment: int | None = None, *, spool: str = "") -> LoadResult:
        with self._connect() as con:
            con.execute("BEGIN")
            if segment is not None and segment <= self._loaded_through(con, spool):
                con.execute("ROLLBACK")
                return LoadResult(0, 0, 0)
            con.execute(
                f"CREATE TEMP TABLE segment AS SELECT * FROM read_json(?, "
                f"format='newline_delimited', columns={self._columns})",
                [str(path)],
            )
            total = _one(con, "SELECT count(*) FROM segment")
            since = None
            if segment is not None:
                since = utc_now().replace(tzinfo=None) - timedelta(hours=self.dedup_hours)
            inserted = {t: self._insert(con, t, kind, since) for kind, t in TABLE_OF_TYPE.items()}
            con.execute("DROP TABLE segment")
            result = LoadResult(
                inserted["exposures"], inserted["events"], total - sum(inserted.values())
            )
            if segment is not None:
                con.execute(
                    "INSERT INTO liftkit_loads VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        spool,
                        segment,
                        utc_now().replace(tzinfo=None),
                        result.exposures,
                        result.events,
                        result.duplicates,
                    ],
                )
            con.execute("COMMIT")
            return result

    def _insert(
        self, con: duckdb.DuckDBPyConnection, table: str, kind: str, since: datetime | None
    ) -> int:
        names = ", ".join(c.name for c in TABLES[table])
        # Only the stored ids that occur in the segment: the hash table is the segment's size,
        # not the store's.
        stored = f"SELECT event_id FROM {table} WHERE event_id IN (SELECT event_id FROM segment)"
        params: list[Any] = [kind]
        if since is not None:
            stored += " AND received_at >= ?"
            params.append(since)
        row = con.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM segment "
            f"WHERE type = ? AND event_id NOT IN ({stored}) "
            "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, rowid) = 1",
            params,
        ).fetchone()
        return int(row[0]) if row else 0

    def loaded_through(self, spool: str = "") -> int:
        with self._connect() as con:
            return self._loaded_through(con, spool)

    @staticmethod
    def _loaded_through(con: duckdb.DuckDBPyConnection, spool: str) -> int:
        row = con.execute(
            "SELECT coalesce(max(segment), 0) FROM liftkit_loads WHERE spool = ?", [spool]
        ).fetchone()
        return int(row[0]) if row else 0

    def counts(self) -> dict[str, int]:
        with self._connect() as con:
            return {table: _one(con, f"SELECT count(*) FROM {table}") for table in TABLES}

    def exposure_units(self, experiment: str, since: datetime | None) -> list[tuple[str, int]]:
        with self._connect() as con:
            sql = (
                "SELECT DISTINCT hash_attribute || chr(31) || hash_value, variation_id "
                "FROM exposures WHERE experiment_key = ?"
            )
            params: list[Any] = [experiment]
            if since is not None:
                sql += " AND timestamp >= ?"
                params.append(since)
            rows = con.execute(sql, params).fetchall()
        return [(str(unit), int(variation)) for unit, variation in rows]

    def close(self) -> None:
        """Nothing is held open between loads."""


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0
