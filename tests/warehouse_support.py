"""The same tables loaded into every engine liftkit runs, for analysis tests.

``load_tables(engine, {"name": pyarrow_table}, tmp_path=...)`` writes each table with a writable
connection of the engine's own driver, then returns liftkit's read-only ``Connection`` to it.

Column types follow the arrow schema: string -> text/String, int64 -> bigint/Int64, float64 ->
double/Float64, bool -> boolean/Bool, timestamp (UTC) -> timestamptz in PostgreSQL, TIMESTAMP in
DuckDB, DateTime64(6, 'UTC') in ClickHouse, TIMESTAMP in Spark. A string column named
``attributes`` or ``properties`` holds JSON: ``jsonb`` in PostgreSQL, ``JSON`` in DuckDB, a
plain string in ClickHouse and Spark. A non-nullable arrow field is NOT NULL in PostgreSQL and a
plain (not Nullable) type in ClickHouse, where a LEFT JOIN miss is NULL only with
``join_use_nulls``; nullable fields are Nullable(...).

chDB binds one database directory per process, so every ClickHouse load goes to one process-wide
directory, each into a database of its own (``chdb:<dir>?database=<name>``): a test that leaks a
connection cannot then break the next test's load. Close connections anyway.

Spark: tables are temp views over Parquet files in ``tmp_path`` on the shared SparkSession; each
load drops the views of the previous load first, so names never leak from one test to another.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, cast

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from liftkit.warehouse import Connection, connect

ENGINES = ("duckdb", "postgres", "clickhouse", "spark")
JSON_COLUMNS = ("attributes", "properties")

_spark_views: set[str] = set()
_chdb_dir: Path | None = None


def load_tables(
    engine: str,
    tables: dict[str, pa.Table],
    *,
    tmp_path: Path,
    postgres_url: str | None = None,
    timeout: float = 300.0,
) -> Connection:
    """Write ``tables`` into ``engine`` and return a read-only connection to them."""
    loaders = {
        "duckdb": _duckdb,
        "postgres": _postgres,
        "clickhouse": _clickhouse,
        "spark": _spark,
    }
    if engine not in loaders:
        raise ValueError(f"unknown engine {engine!r}; one of {ENGINES}")
    if engine == "postgres" and not postgres_url:
        raise ValueError("load_tables('postgres', ...) needs postgres_url (the fixture)")
    return loaders[engine](tables, tmp_path, postgres_url, timeout)


def _kind(field: pa.Field) -> str:
    """The arrow type as one of: text, json, bigint, double, boolean, timestamp, date."""
    t = field.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "json" if field.name in JSON_COLUMNS else "text"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t):
        if t.tz not in (None, "UTC", "+00:00", "Etc/UTC"):
            raise ValueError(f"{field.name}: timestamps must be UTC, not {t.tz}")
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    raise ValueError(f"{field.name}: no mapping for arrow type {t}")


def _parquet(table: pa.Table, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(table, path)
    return path


def _duckdb(tables: dict[str, pa.Table], tmp_path: Path, _: Any, timeout: float) -> Connection:
    import duckdb

    cast = {"json": "JSON", "timestamp": "TIMESTAMP", "bigint": "BIGINT", "double": "DOUBLE"}
    path = tmp_path / f"warehouse-{uuid.uuid4().hex[:8]}.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ -> TIMESTAMP keeps the UTC wall time
        for name, table in tables.items():
            con.register("liftkit_source", table)
            columns = ", ".join(
                f'CAST("{f.name}" AS {cast[_kind(f)]}) AS "{f.name}"'
                if _kind(f) in cast
                else f'"{f.name}"'
                for f in table.schema
            )
            con.execute(f'CREATE TABLE "{name}" AS SELECT {columns} FROM liftkit_source')
            con.unregister("liftkit_source")
    return connect("duckdb", str(path), timeout=timeout)


_PG_TYPES = {
    "text": "text",
    "json": "jsonb",
    "bigint": "bigint",
    "double": "double precision",
    "boolean": "boolean",
    "timestamp": "timestamptz",
    "date": "date",
}


def _postgres(
    tables: dict[str, pa.Table], _: Path, postgres_url: str | None, timeout: float
) -> Connection:
    import psycopg

    assert postgres_url is not None
    with psycopg.connect(postgres_url, autocommit=True) as con:
        for name, table in tables.items():
            columns = ", ".join(
                f'"{f.name}" {_PG_TYPES[_kind(f)]}{"" if f.nullable else " NOT NULL"}'
                for f in table.schema
            )
            con.execute(f'DROP TABLE IF EXISTS "{name}"')
            con.execute(f'CREATE TABLE "{name}" ({columns})')
            names = ", ".join(f'"{n}"' for n in table.column_names)
            with con.cursor() as cur, cur.copy(f'COPY "{name}" ({names}) FROM STDIN') as copy:
                for row in zip(*(c.to_pylist() for c in table.columns), strict=True):
                    copy.write_row(row)
            con.execute(f'ANALYZE "{name}"')
    return connect("postgres", postgres_url, timeout=timeout)


_CH_TYPES = {
    "text": "String",
    "json": "String",
    "bigint": "Int64",
    "double": "Float64",
    "boolean": "Bool",
    "timestamp": "DateTime64(6, 'UTC')",
    "date": "Date32",
}


def chdb_directory() -> Path:
    """The process-wide chDB directory (created on first use, removed at exit)."""
    global _chdb_dir
    if _chdb_dir is None:
        _chdb_dir = Path(tempfile.mkdtemp(prefix="liftkit-chdb-"))
        atexit.register(shutil.rmtree, _chdb_dir, ignore_errors=True)
    return _chdb_dir


def _clickhouse(tables: dict[str, pa.Table], tmp_path: Path, _: Any, timeout: float) -> Connection:
    from chdb.session import Session

    directory = chdb_directory()
    database = f"t_{uuid.uuid4().hex[:12]}"
    writer = cast(Any, Session)(str(directory))  # chdb's functions carry no annotations
    try:
        writer.query(f"CREATE DATABASE {database}")
        for name, table in tables.items():
            columns = ", ".join(
                f"`{f.name}` "
                + (f"Nullable({_CH_TYPES[_kind(f)]})" if f.nullable else _CH_TYPES[_kind(f)])
                for f in table.schema
            )
            writer.query(
                f"CREATE TABLE {database}.`{name}` ({columns}) ENGINE = MergeTree ORDER BY tuple()"
            )
            source = str(_parquet(table, tmp_path, name)).replace("'", "\\'")
            writer.query(f"INSERT INTO {database}.`{name}` SELECT * FROM file('{source}', Parquet)")
        # Open the reader before closing the writer: the embedded server stays up in between.
        return connect("clickhouse", f"chdb:{directory}?database={database}", timeout=timeout)
    finally:
        writer.close()


def _spark(tables: dict[str, pa.Table], tmp_path: Path, _: Any, timeout: float) -> Connection:
    from pyspark.sql import SparkSession

    conn = connect("spark", timeout=timeout)  # creates the session with liftkit's settings
    spark = SparkSession.builder.getOrCreate()
    for view in sorted(_spark_views):
        spark.catalog.dropTempView(view)
    _spark_views.clear()
    for name, table in tables.items():
        spark.read.parquet(str(_parquet(table, tmp_path, name))).createOrReplaceTempView(name)
        _spark_views.add(name)
    return conn
