"""Warehouse connections: one data set and one set of queries on DuckDB, PostgreSQL, chDB, Spark.

Queries are written once in DuckDB's dialect and rendered for each engine with sqlglot, as the
analysis code does. The ClickHouse HTTP transport runs against ``httpx.MockTransport`` (no
ClickHouse server here); its response parser is the one chDB's real output goes through.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import psycopg
import pyarrow as pa  # type: ignore[import-untyped]
import pytest
import sqlglot

from liftkit.warehouse import (
    RUNNABLE,
    Connection,
    NotReadOnly,
    QueryResult,
    QueryTimeout,
    WarehouseBusy,
    WarehouseError,
    _clickhouse,
    connect,
    connections,
    ensure_select,
    expand_env,
    redact,
)
from warehouse_support import ENGINES, load_tables


def ts(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


USERS = pa.table(
    {
        "user_id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
        "country": pa.array(["GB", "US", None, "GB", "US", "GB"], pa.string()),
        "score": pa.array([1.5, 2.5, None, 4.0, 0.5, 3.0], pa.float64()),
        "seen_at": pa.array(
            [
                ts(2026, 1, 1, 11, 59, 59, 999999),  # a microsecond before the cut-off
                ts(2026, 1, 1, 12),  # exactly on it
                ts(2026, 1, 2, 8, 30, 0, 250000),
                ts(2026, 1, 3),
                ts(2026, 2, 1, 23, 59, 59),
                ts(2026, 1, 1, 13),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "attributes": pa.array(
            ['{"plan":"pro"}', '{"plan":"free"}', None, "{}", '{"plan":"pro"}', '{"plan":"free"}']
        ),
    }
)
# NOT NULL columns: in ClickHouse a LEFT JOIN miss is NULL here only with join_use_nulls=1.
ORDERS = pa.Table.from_pylist(
    [
        {"user_id": 1, "amount": 10.0, "note": "a"},
        {"user_id": 1, "amount": 5.5, "note": "b"},
        {"user_id": 2, "amount": 7.25, "note": "c"},
        {"user_id": 5, "amount": 1.0, "note": "d"},
        {"user_id": 6, "amount": 2.0, "note": "e"},
    ],
    schema=pa.schema(
        [
            pa.field("user_id", pa.int64(), nullable=False),
            pa.field("amount", pa.float64(), nullable=False),
            pa.field("note", pa.string(), nullable=False),
        ]
    ),
)
TABLES = {"users": USERS, "orders": ORDERS}

ENGINE_PARAMS = [
    pytest.param(e, marks=pytest.mark.postgres) if e == "postgres" else e for e in ENGINES
]


@pytest.fixture(scope="module")
def spark_started() -> Iterator[None]:
    """Starts the JVM once for the file (later connect("spark") calls reuse the session) and
    runs a first job, so that timings in the tests measure queries rather than JVM warm-up."""
    conn = connect("spark")
    assert conn.query("SELECT SUM(id % 7) AS s FROM range(1000000)").rows == [(2999997,)]
    yield
    conn.close()


def load(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path, timeout: float = 300.0
) -> Connection:
    if engine == "spark":
        request.getfixturevalue("spark_started")
    url = request.getfixturevalue("postgres_url") if engine == "postgres" else None
    return load_tables(engine, TABLES, tmp_path=tmp_path, postgres_url=url, timeout=timeout)


@pytest.fixture(params=ENGINE_PARAMS)
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Connection]:
    conn = load(request, request.param, tmp_path)
    yield conn
    conn.close()


def run(conn: Connection, duckdb_sql: str) -> QueryResult:
    """Render a DuckDB-dialect query for the connection's engine and run it."""
    (sql,) = sqlglot.transpile(duckdb_sql, read="duckdb", write=conn.dialect)
    return conn.query(sql)


def test_left_join_misses_are_null_and_timestamps_compare_in_utc(
    loaded: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local time zone far from UTC: no engine may leak it into the values (pyspark builds
    # datetimes in the process's zone).
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        rows = run(
            loaded,
            "SELECT u.user_id, u.country, o.amount, o.user_id AS order_user, o.note, u.seen_at "
            "FROM users AS u LEFT JOIN orders AS o ON o.user_id = u.user_id "
            "WHERE u.seen_at >= CAST('2026-01-01 12:00:00' AS TIMESTAMP) "
            "ORDER BY u.user_id, o.amount",
        ).rows
    finally:
        monkeypatch.undo()
        time.tzset()
    assert [r[:5] for r in rows] == [
        (2, "US", 7.25, 2, "c"),
        (3, None, None, None, None),
        (4, "GB", None, None, None),
        (5, "US", 1.0, 5, "d"),
        (6, "GB", 2.0, 6, "e"),
    ]
    assert [r[5] for r in rows] == [
        ts(2026, 1, 1, 12),
        ts(2026, 1, 2, 8, 30, 0, 250000),
        ts(2026, 1, 3),
        ts(2026, 2, 1, 23, 59, 59),
        ts(2026, 1, 1, 13),
    ]
    for row in rows:
        assert type(row[0]) is int
        assert row[5].utcoffset().total_seconds() == 0
    assert type(rows[0][2]) is float


def test_group_by_over_a_left_join_counts_and_sums_like_standard_sql(loaded: Connection) -> None:
    result = run(
        loaded,
        "SELECT u.country, COUNT(*) AS n, COUNT(o.user_id) AS orders, "
        "SUM(o.amount) AS revenue, MAX(u.score) AS best, MIN(u.seen_at) AS first_seen "
        "FROM users AS u LEFT JOIN orders AS o ON o.user_id = u.user_id "
        "GROUP BY u.country ORDER BY u.country NULLS FIRST",
    )
    assert result.columns == ("country", "n", "orders", "revenue", "best", "first_seen")
    assert result.rows == [
        (None, 1, 0, None, None, ts(2026, 1, 2, 8, 30, 0, 250000)),
        ("GB", 4, 3, 17.5, 4.0, ts(2026, 1, 1, 11, 59, 59, 999999)),
        ("US", 2, 2, 8.25, 2.5, ts(2026, 1, 1, 12)),
    ]
    for row in result.rows:
        assert (type(row[1]), type(row[2])) == (int, int)
    assert [type(r[3]) for r in result.rows[1:]] == [float, float]
    assert result.records()[1]["revenue"] == 17.5
    assert result.seconds > 0


def test_engine_errors_carry_the_engine_message(loaded: Connection) -> None:
    with pytest.raises(WarehouseError) as caught:
        loaded.query("SELECT * FROM no_such_table")
    assert type(caught.value) is WarehouseError
    message = str(caught.value)
    assert "no_such_table" in message
    assert "\tat " not in message  # no JVM stack trace from Spark


SESSION_ZONE = {
    "duckdb": "SELECT current_setting('TimeZone')",
    "postgres": "SELECT current_setting('TimeZone')",
    "clickhouse": "SELECT timezone()",
    "spark": "SELECT current_timezone()",
}


def test_every_session_runs_in_utc(loaded: Connection) -> None:
    assert loaded.query(SESSION_ZONE[loaded.dialect]).rows == [("UTC",)]


WRITES = [
    "INSERT INTO users (user_id) VALUES (99)",
    "DELETE FROM users",
    "UPDATE users SET score = 0",
    "CREATE TABLE more_users (user_id BIGINT)",
    "DROP TABLE users",
    "SELECT 1 AS x; DELETE FROM users",
    "SELECT * INTO users_copy FROM users",
]


def test_writes_are_refused_and_the_data_is_unchanged(loaded: Connection) -> None:
    count = "SELECT COUNT(*), SUM(score) FROM users"
    before = run(loaded, count).rows
    for sql in WRITES:
        with pytest.raises(NotReadOnly):
            loaded.query(sql)
    assert run(loaded, count).rows == before == [(6, 11.5)]


ENGINE_WRITE = {"duckdb": connections, "postgres": connections, "clickhouse": _clickhouse}


@pytest.mark.parametrize(
    "engine", [pytest.param("postgres", marks=pytest.mark.postgres), "duckdb", "clickhouse"]
)
def test_the_engine_itself_refuses_writes_without_the_sql_check(
    engine: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read-only at the engine too (a DuckDB file, READ ONLY transactions, readonly=1)."""
    conn = load(request, engine, tmp_path)
    try:
        monkeypatch.setattr(ENGINE_WRITE[engine], "ensure_select", lambda sql, dialect: None)
        with pytest.raises(NotReadOnly):
            conn.query("INSERT INTO users (user_id) VALUES (99)")
        assert conn.query("SELECT COUNT(*) FROM users").rows == [(6,)]
    finally:
        conn.close()


@pytest.mark.postgres
def test_postgres_session_settings_cannot_be_loosened_by_a_query(
    postgres_url: str, tmp_path: Path
) -> None:
    """set_config() inside a query is rolled back with the query's READ ONLY transaction."""
    conn = load_tables("postgres", TABLES, tmp_path=tmp_path, postgres_url=postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("CREATE SEQUENCE ids")
    try:
        conn.query(
            "SELECT set_config('default_transaction_read_only', 'off', false), "
            "set_config('statement_timeout', '0', false)"
        )
        with pytest.raises(NotReadOnly, match="read-only transaction"):
            conn.query("SELECT nextval('ids')")
        assert conn.query("SELECT current_setting('statement_timeout')").rows == [("5min",)]
    finally:
        conn.close()


def test_clickhouse_queries_cannot_raise_their_own_limits(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    conn = load(request, "clickhouse", tmp_path)
    try:
        with pytest.raises(NotReadOnly, match="max_execution_time"):
            conn.query("SELECT 1 SETTINGS max_execution_time = 100000")
    finally:
        conn.close()


SLOW = {
    "duckdb": "SELECT SUM(a.range * b.range) FROM range(1000000) AS a, range(1000000) AS b",
    "postgres": "SELECT pg_sleep(5)",
    "clickhouse": "SELECT sum(number % 7) FROM numbers(100000000000)",
    "spark": "SELECT SUM(id % 7) FROM range(1000000000000)",
}


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_a_slow_query_times_out_and_the_connection_still_works(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    conn = load(request, engine, tmp_path, timeout=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(QueryTimeout, match="longer than 1 s"):
            conn.query(SLOW[engine])
        assert time.monotonic() - started < 8
        # Nothing of the cancelled query is left over (chDB used to prepend its output to the
        # next result; PostgreSQL would refuse queries in the aborted transaction).
        assert conn.query("SELECT 1 AS x").rows == [(1,)]
    finally:
        conn.close()


HOLD = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2]))"  # noqa: E501


def duckdb_file(tmp_path: Path) -> str:
    path = str(tmp_path / "events.duckdb")
    with duckdb.connect(path) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS a")
    return path


@contextmanager
def held(path: str, seconds: float) -> Iterator[None]:
    """Another process holding the file read-write for ``seconds`` (or until the block ends)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, path, str(seconds)], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "held"
            yield
        finally:
            proc.kill()


def test_duckdb_file_held_by_another_process_is_busy_after_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = duckdb_file(tmp_path)
    with held(path, 60):
        monkeypatch.setattr(connections, "DUCKDB_BUSY_WAIT", 0.6)
        started = time.monotonic()
        with pytest.raises(WarehouseBusy, match="held by a writer"):
            connect("duckdb", path)
        assert 0.3 < time.monotonic() - started < 5
    conn = connect("duckdb", path)
    assert conn.query("SELECT a FROM t").rows == [(1,)]
    conn.close()


def test_duckdb_waits_for_a_writer_that_lets_go(tmp_path: Path) -> None:
    path = duckdb_file(tmp_path)
    with held(path, 1.0):
        started = time.monotonic()
        conn = connect("duckdb", path)  # DUCKDB_BUSY_WAIT: 10 s
        waited = time.monotonic() - started
    assert conn.query("SELECT a FROM t").rows == [(1,)]
    conn.close()
    assert 0.3 < waited < 8


def test_duckdb_file_held_read_write_in_this_process_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like liftkit's event loader, which opens events.duckdb read-write for a moment."""
    path = duckdb_file(tmp_path)
    writer = duckdb.connect(path)
    monkeypatch.setattr(connections, "DUCKDB_BUSY_WAIT", 0.3)
    with pytest.raises(WarehouseBusy):
        connect("duckdb", path)
    monkeypatch.setattr(connections, "DUCKDB_BUSY_WAIT", 10.0)
    release = threading.Timer(0.5, writer.close)
    release.start()
    conn = connect("duckdb", path)
    release.join()
    assert conn.query("SELECT a FROM t").rows == [(1,)]
    conn.close()


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("SELECT 1", "duckdb"),
        ("WITH a AS (SELECT 1 AS x) SELECT x FROM a", "postgres"),
        ("SELECT 1 UNION ALL SELECT 2", "clickhouse"),
        ("(SELECT 1) EXCEPT (SELECT 2)", "spark"),
        ("VALUES (1), (2)", "duckdb"),
        ("SELECT 1;", "postgres"),
        ("SELECT pg_sleep(0)", "postgres"),
    ],
)
def test_ensure_select_accepts_one_query(sql: str, dialect: str) -> None:
    ensure_select(sql, dialect)


@pytest.mark.parametrize(
    ("sql", "dialect", "says"),
    [
        ("INSERT INTO t VALUES (1)", "duckdb", "INSERT"),
        ("UPDATE t SET a = 1", "postgres", "UPDATE"),
        ("DELETE FROM t", "clickhouse", "DELETE"),
        ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "spark", "MERGE"),
        ("CREATE TABLE t AS SELECT 1 AS a", "duckdb", "CREATE"),
        ("DROP TABLE t", "clickhouse", "DROP"),
        ("ALTER TABLE t ADD COLUMN b INT", "postgres", "ALTER"),
        ("SELECT * INTO t2 FROM t", "postgres", "SELECT ... INTO"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "postgres", "DELETE"),
        ("SELECT * FROM t FOR UPDATE", "postgres", "FOR UPDATE"),
        ("COPY t TO '/tmp/t.csv'", "duckdb", "COPY"),
        ("SET search_path = other", "postgres", "SET"),
        ("PRAGMA database_list", "duckdb", "PRAGMA"),
        ("ATTACH 'other.duckdb'", "duckdb", "ATTACH"),
        ("OPTIMIZE TABLE t FINAL", "clickhouse", "COMMAND"),
        ("CACHE TABLE t", "spark", "CACHE"),
        ("INSERT OVERWRITE DIRECTORY '/tmp/x' SELECT 1", "spark", "INSERT"),
        ("SELECT 1; SELECT 2", "duckdb", "exactly one query, found 2"),
        ("", "duckdb", "found 0"),
        ("DESCRIBE t", "duckdb", "not DESCRIBE"),
        ("SELECT 1 +", "duckdb", "cannot parse"),
    ],
)
def test_ensure_select_refuses_anything_else(sql: str, dialect: str, says: str) -> None:
    with pytest.raises(NotReadOnly, match=rf"(?i){re.escape(says)}"):
        ensure_select(sql, dialect)


def test_parse_errors_carry_sqlglot_message_without_terminal_codes() -> None:
    with pytest.raises(NotReadOnly) as caught:
        ensure_select("SELECT (1", "postgres")
    assert "Expecting )" in str(caught.value)
    assert "\x1b[" not in str(caught.value)


# -- ClickHouse over HTTP (httpx.MockTransport) ------------------------------------------------

CH_URL = "https://alice:p%40ss@ch.example:8443/?database=analytics"
CH_BODY = (
    "\n".join(
        [
            '["id", "country", "amount", "big", "quoted", "ratio", "seen_at", "day", "berlin", '
            '"tags", "flag"]',
            '["Int64", "Nullable(String)", "Decimal(18, 2)", "UInt64", "Int64", "Float64", '
            '"DateTime64(6, \'UTC\')", "Date", "DateTime(\'Europe\\/Berlin\')", '
            '"Array(Nullable(Int32))", "Bool"]',
            '[1, "GB", 1.25, 18446744073709551615, "42", "nan", "2026-01-01 12:00:00.500000", '
            '"2026-01-01", "2026-07-01 14:00:00", [1, null], true]',
            '[2, null, 0, 0, "-7", "-inf", "2026-01-02 00:00:00.000000", "2026-01-02", '
            '"2026-01-01 01:00:00", [], false]',
        ]
    )
    + "\n"
)


def mock_clickhouse(
    answer: Callable[[httpx.Request], httpx.Response],
) -> tuple[Connection, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/ping":
            return httpx.Response(200, text="Ok.\n")
        return answer(request)

    conn = connect("clickhouse", CH_URL, timeout=30, transport=httpx.MockTransport(handler))
    return conn, seen


def test_clickhouse_http_request_carries_settings_and_credentials_in_headers() -> None:
    conn, seen = mock_clickhouse(lambda request: httpx.Response(200, text=CH_BODY))
    conn.query("SELECT id FROM events")
    post = seen[-1]
    assert (post.method, post.url.host, post.url.port, post.url.path) == (
        "POST",
        "ch.example",
        8443,
        "/",
    )
    assert post.content == b"SELECT id FROM events"
    params = dict(post.url.params)
    assert params["readonly"] == "1"
    assert params["max_execution_time"] == "30"
    assert params["join_use_nulls"] == "1"
    assert params["session_timezone"] == "UTC"
    assert params["database"] == "analytics"
    assert params["default_format"] == "JSONCompactEachRowWithNamesAndTypes"
    assert post.headers["X-ClickHouse-User"] == "alice"
    assert post.headers["X-ClickHouse-Key"] == "p@ss"
    for request in seen:
        assert request.url.userinfo == b""
        assert "p@ss" not in str(request.url) and "p%40ss" not in str(request.url)
    conn.close()


def test_clickhouse_http_response_is_parsed_into_typed_rows() -> None:
    conn, _ = mock_clickhouse(lambda request: httpx.Response(200, text=CH_BODY))
    result = conn.query("SELECT 1")
    assert result.columns[:3] == ("id", "country", "amount")
    first, second = result.rows
    assert first[:5] == (1, "GB", 1.25, 18446744073709551615, 42)
    assert math.isnan(first[5]) and second[5] == -math.inf
    assert first[6] == ts(2026, 1, 1, 12, 0, 0, 500000)
    assert str(first[7]) == "2026-01-01" and type(first[7]).__name__ == "date"
    assert first[8] == ts(2026, 7, 1, 12)  # 14:00 CEST
    assert second[8] == ts(2026, 1, 1)  # 01:00 CET
    assert (first[9], second[9]) == ([1, None], [])
    assert (first[10], second[10]) == (True, False)
    assert second[1] is None and second[4] == -7 and type(second[2]) is float


@pytest.mark.parametrize(
    ("code", "error"),
    [("60", WarehouseError), ("159", QueryTimeout), ("164", NotReadOnly)],
)
def test_clickhouse_http_errors_carry_the_server_message(
    code: str, error: type[WarehouseError]
) -> None:
    text = f"Code: {code}. DB::Exception: Unknown table expression identifier 'nope'. (X)"
    conn, _ = mock_clickhouse(
        lambda request: httpx.Response(
            500, text=text, headers={"X-ClickHouse-Exception-Code": code}
        )
    )
    with pytest.raises(error) as caught:
        conn.query("SELECT * FROM nope")
    assert type(caught.value) is error
    if error is WarehouseError:
        assert "Unknown table expression identifier 'nope'" in str(caught.value)


def test_clickhouse_http_timeout_and_unreachable_server() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    conn, _ = mock_clickhouse(slow)
    with pytest.raises(QueryTimeout):
        conn.query("SELECT 1")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    with pytest.raises(WarehouseError) as caught:
        connect("clickhouse", CH_URL, transport=httpx.MockTransport(down))
    message = str(caught.value)
    assert "https://alice:***@ch.example:8443" in message
    assert "p@ss" not in message and "p%40ss" not in message


# -- URLs, environment, kinds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://bob:s3cret@db.example:5432/prod",
            "postgresql://bob:***@db.example:5432/prod",
        ),
        ("https://alice:p%40ss@ch:8443/?database=x", "https://alice:***@ch:8443/?database=x"),
        (
            "postgresql://db.example/prod?user=bob&password=s3cret&sslmode=require",
            "postgresql://db.example/prod?user=bob&password=***&sslmode=require",
        ),
        ("postgresql://bob@db.example/prod", "postgresql://bob@db.example/prod"),
        ("/data/events.duckdb", "/data/events.duckdb"),
        ("local[2]", "local[2]"),
    ],
)
def test_redact_hides_passwords(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.postgres
def test_connection_failures_show_the_url_without_its_password() -> None:
    with pytest.raises(WarehouseError) as caught:
        connect("postgres", "postgresql://bob:s3cret@127.0.0.1:1/nowhere", timeout=5)
    assert "postgresql://bob:***@127.0.0.1:1/nowhere" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_expand_env_substitutes_and_names_a_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIFTKIT_TEST_PW", "s3cret")
    monkeypatch.delenv("LIFTKIT_TEST_MISSING", raising=False)
    assert expand_env("postgresql://bob:${LIFTKIT_TEST_PW}@db/x") == "postgresql://bob:s3cret@db/x"
    assert expand_env("$HOME and ${} stay") == "$HOME and ${} stay"
    with pytest.raises(WarehouseError, match="LIFTKIT_TEST_MISSING") as caught:
        expand_env("postgresql://${LIFTKIT_TEST_PW}:${LIFTKIT_TEST_MISSING}@db/x")
    assert "s3cret" not in str(caught.value)
    with pytest.raises(WarehouseError, match="LIFTKIT_TEST_MISSING"):
        connect("duckdb", "${LIFTKIT_TEST_MISSING}/events.duckdb")


def test_kinds_liftkit_only_renders_and_unknown_kinds_are_refused() -> None:
    with pytest.raises(WarehouseError, match="renders SQL for bigquery but cannot run it here"):
        connect("bigquery", "bigquery://project")
    with pytest.raises(WarehouseError) as caught:
        connect("oracle")
    assert all(kind in str(caught.value) for kind in RUNNABLE)


@pytest.mark.parametrize(
    ("kind", "url", "modules", "extra"),
    [
        ("clickhouse", "chdb:", ("chdb", "chdb.session"), "liftkit[clickhouse]"),
        ("spark", None, ("pyspark", "pyspark.sql"), "liftkit[spark]"),
    ],
)
def test_a_missing_optional_driver_says_which_extra_to_install(
    kind: str,
    url: str | None,
    modules: tuple[str, ...],
    extra: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(WarehouseError, match=re.escape(f"pip install '{extra}'")):
        connect(kind, url)


def test_chdb_urls_are_checked(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="does not exist"):
        connect("clickhouse", f"chdb:{tmp_path / 'missing'}")
    with pytest.raises(WarehouseError, match=r"only \?database="):
        connect("clickhouse", f"chdb:{tmp_path}?database=x&readonly=0")
    with pytest.raises(WarehouseError, match="chdb:"):
        connect("clickhouse", "clickhouse://host")
