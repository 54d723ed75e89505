"""Contract tests of the event stores: ``DuckDBStore`` and ``PostgresStore`` behave alike.

Every contract test runs against both (the PostgreSQL one on a fresh database, marked
``postgres``). Segments are made the way the spool makes them, with ``schema.to_lines``; rows are
read back with each database's own client, not through the store under test.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import psycopg
import pytest
from psycopg import sql

from liftkit.events.duckdb_store import DuckDBStore
from liftkit.events.postgres_store import PostgresStore
from liftkit.events.schema import ExposureEvent, TrackEvent, to_lines, utc_now
from liftkit.events.store import TABLES, EventStore, LoadResult, StoreBusy

T0 = datetime(2026, 3, 1, 12, 0)
#: A UTC time that does not exist in New York (clocks skip 02:00-03:00 that night).
GAP = datetime(2026, 3, 8, 2, 30)
_names = itertools.count(1)


@dataclass
class Backend:
    """How to open a store on one database, and how to read that database directly."""

    name: str
    open: Callable[..., EventStore]
    query: Callable[[str], list[tuple[Any, ...]]]


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[EventStore] = []
    if request.param == "duckdb":
        path = tmp_path / "events.duckdb"

        def open_store(dedup_hours: float = 24.0) -> EventStore:
            opened.append(DuckDBStore(path, dedup_hours=dedup_hours))
            return opened[-1]

        def query(text: str) -> list[tuple[Any, ...]]:
            with duckdb.connect(str(path), read_only=True) as con:
                return con.execute(text).fetchall()

    else:
        url = str(request.getfixturevalue("postgres_url"))
        # A server zone other than UTC shows any timestamp that depends on the session's zone.
        with psycopg.connect(url, autocommit=True) as con:
            name = sql.Identifier(url.rsplit("/", 1)[1])
            con.execute(
                sql.SQL("ALTER DATABASE {} SET TimeZone TO 'America/New_York'").format(name)
            )

        def open_store(dedup_hours: float = 24.0) -> EventStore:
            opened.append(PostgresStore(url, dedup_hours=dedup_hours))
            return opened[-1]

        def query(text: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(url) as con:
                return con.execute(text.encode()).fetchall()

    try:
        yield Backend(request.param, open_store, query)
    finally:
        for store in opened:
            store.close()


@pytest.fixture
def store(backend: Backend) -> EventStore:
    return backend.open()


def exposure(event_id: str, unit: str = "u1", variation: int = 1, **fields: Any) -> ExposureEvent:
    body = {"experiment_key": "checkout", "timestamp": T0, **fields}
    return ExposureEvent.model_validate(
        {"type": "exposure", "event_id": event_id, "variation_id": variation, "hash_value": unit}
        | body
    )


def track(event_id: str, value: float | None = 1.0, **fields: Any) -> TrackEvent:
    body = {"name": "purchase", "timestamp": T0, "user_id": "u1", **fields}
    return TrackEvent.model_validate({"type": "track", "event_id": event_id, "value": value} | body)


def segment(tmp_path: Path, *chunks: bytes) -> Path:
    path = tmp_path / f"segment-{next(_names)}.ndjson"
    path.write_bytes(b"".join(chunks))
    return path


def rows(backend: Backend, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` as a dict, by event_id (JSON columns decoded on DuckDB, which
    returns them as text; PostgreSQL must return the stored object itself)."""
    columns = TABLES[table]
    names = ", ".join(f'"{c.name}"' for c in columns)
    found = backend.query(f"SELECT {names} FROM {table} ORDER BY event_id, received_at")
    out = []
    for row in found:
        item = dict(zip((c.name for c in columns), row, strict=True))
        if backend.name == "duckdb":
            for c in columns:
                if c.kind == "json":
                    item[c.name] = json.loads(item[c.name])
        out.append(item)
    return out


def test_a_new_store_is_empty(store: EventStore) -> None:
    assert store.counts() == {"exposures": 0, "events": 0}
    assert store.loaded_through() == 0
    assert store.exposure_units("checkout", None) == []


def test_rows_land_with_their_values(backend: Backend, store: EventStore, tmp_path: Path) -> None:
    received = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    attributes = {"country": "GB", "age": 41, "beta": True, "tags": ["a", "ü"], "n": {"x": None}}
    events = [
        exposure(
            "x1",
            "d-42",
            2,
            timestamp="2026-03-01T09:15:00-05:00",
            variation_key="treatment",
            feature_key="new-checkout",
            hash_attribute="device",
            attributes=attributes,
        ),
        exposure("x2", "u7", 0, timestamp=GAP),
        track("t1", 19.99, properties={"sku": "A-1", "qty": 2.5}),
        track("t2", None, name="signup", user_id=None, anonymous_id="anon-7"),
    ]
    path = segment(tmp_path, to_lines(events, received))

    assert store.load(path, 1) == LoadResult(exposures=2, events=2, duplicates=0)

    stamp = datetime(2026, 3, 1, 12, 30, 15, 123456)  # UTC, without a zone
    assert rows(backend, "exposures") == [
        {
            "event_id": "x1",
            "timestamp": datetime(2026, 3, 1, 14, 15),
            "received_at": stamp,
            "experiment_key": "checkout",
            "variation_id": 2,
            "variation_key": "treatment",
            "feature_key": "new-checkout",
            "hash_attribute": "device",
            "hash_value": "d-42",
            "attributes": attributes,
        },
        {
            "event_id": "x2",
            "timestamp": GAP,
            "received_at": stamp,
            "experiment_key": "checkout",
            "variation_id": 0,
            "variation_key": None,
            "feature_key": None,
            "hash_attribute": "id",
            "hash_value": "u7",
            "attributes": {},
        },
    ]
    assert rows(backend, "events") == [
        {
            "event_id": "t1",
            "timestamp": T0,
            "received_at": stamp,
            "name": "purchase",
            "value": 19.99,
            "user_id": "u1",
            "anonymous_id": None,
            "properties": {"sku": "A-1", "qty": 2.5},
        },
        {
            "event_id": "t2",
            "timestamp": T0,
            "received_at": stamp,
            "name": "signup",
            "value": None,
            "user_id": None,
            "anonymous_id": "anon-7",
            "properties": {},
        },
    ]
    assert store.counts() == {"exposures": 2, "events": 2}
    assert store.loaded_through() == 1
    loads = backend.query("SELECT segment, exposures, events, duplicates FROM liftkit_loads")
    assert loads == [(1, 2, 2, 0)]


def test_the_first_copy_wins_within_a_segment(
    backend: Backend, store: EventStore, tmp_path: Path
) -> None:
    events = [
        exposure("e1", variation=0),
        exposure("e1", variation=1),
        track("e1"),  # another table: not a copy of the exposure
        track("t1", 1.0),
        track("t1", 2.0),
        exposure("e2"),
    ]
    path = segment(tmp_path, to_lines(events, utc_now()))

    assert store.load(path, 1) == LoadResult(exposures=2, events=2, duplicates=2)
    stored = {(r["event_id"], r["variation_id"]) for r in rows(backend, "exposures")}
    assert stored == {("e1", 0), ("e2", 1)}
    assert [(r["event_id"], r["value"]) for r in rows(backend, "events")] == [
        ("e1", 1.0),
        ("t1", 1.0),
    ]


def test_an_event_sent_again_in_a_later_segment_is_stored_once(
    store: EventStore, tmp_path: Path
) -> None:
    now = utc_now()
    first = segment(tmp_path, to_lines([exposure("e1"), exposure("e2"), track("t1")], now))
    again = [exposure("e2", variation=0), exposure("e3"), track("t1", 5.0), track("t2")]
    second = segment(tmp_path, to_lines(again, now + timedelta(seconds=1)))

    assert store.load(first, 1) == LoadResult(2, 1, 0)
    assert store.load(second, 2) == LoadResult(exposures=1, events=1, duplicates=2)
    assert store.counts() == {"exposures": 3, "events": 2}
    assert sorted(store.exposure_units("checkout", None)) == [("id\x1fu1", 1)]
    assert store.load(first, None) == LoadResult(0, 0, 3)  # an import of the same events
    assert store.counts() == {"exposures": 3, "events": 2}


def test_a_segment_loaded_before_a_crash_is_not_loaded_again(
    backend: Backend, tmp_path: Path
) -> None:
    store = backend.open()
    now = utc_now()
    path = segment(tmp_path, to_lines([exposure("e1"), exposure("e2", "u2")], now))
    assert store.load(path, 1) == LoadResult(2, 0, 0)
    store.close()  # the process dies before the spool deletes the segment

    restarted = backend.open()
    assert restarted.loaded_through() == 1
    assert restarted.load(path, 1) == LoadResult(0, 0, 0)
    # Skipped by its number, not by its contents: new events under a loaded number stay out.
    fresh = segment(tmp_path, to_lines([exposure("e3", "u3")], now))
    assert restarted.load(fresh, 1) == LoadResult(0, 0, 0)
    assert restarted.counts() == {"exposures": 2, "events": 0}

    assert restarted.load(fresh, 3) == LoadResult(1, 0, 0)
    later = segment(tmp_path, to_lines([exposure("e4", "u4")], now))
    assert restarted.load(later, 2) == LoadResult(0, 0, 0)  # below the highest loaded
    assert restarted.loaded_through() == 3
    assert restarted.counts() == {"exposures": 3, "events": 0}
    assert backend.query("SELECT segment FROM liftkit_loads ORDER BY segment") == [(1,), (3,)]


def test_spool_segments_deduplicate_within_the_window_imports_against_everything(
    backend: Backend, tmp_path: Path
) -> None:
    store = backend.open(dedup_hours=1.0)
    now = utc_now()
    first = segment(
        tmp_path,
        to_lines([exposure("ancient", "u1")], now - timedelta(hours=3)),
        to_lines([exposure("recent", "u2")], now - timedelta(minutes=30)),
    )
    assert store.load(first, 1) == LoadResult(2, 0, 0)
    resent = [exposure("ancient", "u1"), exposure("recent", "u2")]

    assert store.load(segment(tmp_path, to_lines(resent, now)), None) == LoadResult(0, 0, 2)
    assert store.load(segment(tmp_path, to_lines(resent, now)), 2) == LoadResult(1, 0, 1)

    stored = [(r["event_id"], r["received_at"]) for r in rows(backend, "exposures")]
    assert [event_id for event_id, _ in stored] == ["ancient", "ancient", "recent"]
    assert stored[1][1] == now.replace(tzinfo=None)  # the copy that arrived outside the window


def test_exposure_units_are_distinct_and_start_at_since(store: EventStore, tmp_path: Path) -> None:
    hour = timedelta(hours=1)
    events = [
        exposure("a", "u1", 0, timestamp=T0),
        exposure("b", "u1", 0, timestamp=T0 + hour),  # the same unit again
        exposure("c", "u2", 1, timestamp=T0 + 2 * hour),
        exposure("d", "u1", 1, timestamp=T0 + 3 * hour, hash_attribute="device"),
        exposure("e", "u3", 1, timestamp=T0 - 24 * hour),
        exposure("f", "u9", 1, timestamp=T0, experiment_key="other"),
        track("g"),
    ]
    store.load(segment(tmp_path, to_lines(events, utc_now())), 1)

    assert sorted(store.exposure_units("checkout", None)) == [
        ("device\x1fu1", 1),
        ("id\x1fu1", 0),
        ("id\x1fu2", 1),
        ("id\x1fu3", 1),
    ]
    assert sorted(store.exposure_units("checkout", T0 + 2 * hour)) == [
        ("device\x1fu1", 1),
        ("id\x1fu2", 1),
    ]
    assert store.exposure_units("other", T0) == [("id\x1fu9", 1)]
    assert store.exposure_units("missing", None) == []


def test_a_failed_load_stores_nothing(backend: Backend, store: EventStore, tmp_path: Path) -> None:
    good = to_lines([exposure("e1"), track("t1")], utc_now())
    broken = to_lines([exposure("e2")], utc_now()).replace(b'"event_id":"e2",', b"")
    with pytest.raises((duckdb.Error, psycopg.Error)):
        store.load(segment(tmp_path, good, broken), 1)
    assert store.counts() == {"exposures": 0, "events": 0}
    assert store.loaded_through() == 0
    assert store.load(segment(tmp_path, good), 1) == LoadResult(1, 1, 0)


def test_a_nul_character_does_not_fail_the_segment(
    backend: Backend, store: EventStore, tmp_path: Path
) -> None:
    events = [exposure("e1", "u\x00", attributes={"k": "v\x00"}), exposure("e2")]
    assert store.load(segment(tmp_path, to_lines(events, utc_now())), 1) == LoadResult(2, 0, 0)
    # PostgreSQL cannot hold NUL, so it keeps a replacement character in its place.
    nul = "\x00" if backend.name == "duckdb" else "\ufffd"
    first = rows(backend, "exposures")[0]
    assert (first["hash_value"], first["attributes"]) == (f"u{nul}", {"k": f"v{nul}"})


def test_duckdb_held_by_another_process_is_busy_until_released(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    store = DuckDBStore(path)
    lines = segment(tmp_path, to_lines([exposure("e1"), track("t1")], utc_now()))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(StoreBusy, match="open in another process"):
            store.load(lines, 1)
    finally:
        holder.communicate("", timeout=30)  # closing its stdin lets it exit
    assert holder.returncode == 0
    assert store.loaded_through() == 0
    assert store.load(lines, 1) == LoadResult(1, 1, 0)
    assert store.counts() == {"exposures": 1, "events": 1}


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgres_urls_and_a_description_without_the_password(
    postgres_url: str, scheme: str
) -> None:
    parts = urlsplit(postgres_url)
    netloc = f"{parts.username}:hunter2@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    store = PostgresStore(f"{scheme}://{netloc}{parts.path}")
    assert store.counts() == {"exposures": 0, "events": 0}
    port = "" if parts.port in (None, 5432) else f":{parts.port}"
    assert store.description == f"PostgreSQL {parts.hostname}{port}{parts.path}"


def test_postgres_unreachable_is_busy_with_a_clear_message() -> None:
    with pytest.raises(StoreBusy) as raised:
        PostgresStore("postgresql://liftkit:hunter2@127.0.0.1:1/events")
    message = str(raised.value)
    assert message.startswith("cannot connect to PostgreSQL 127.0.0.1:1/events")
    assert "hunter2" not in message
    with pytest.raises(ValueError, match="needs a postgresql:// URL"):
        PostgresStore("mysql://liftkit:hunter2@127.0.0.1/events")


@pytest.mark.postgres
def test_postgres_concurrent_loads_store_each_event_once(postgres_url: str, tmp_path: Path) -> None:
    """Loads from several threads (or processes) are serialised, so none misses the others'
    uncommitted rows: every event is stored once and every segment number loads once."""
    store = PostgresStore(postgres_url)
    events = [exposure(f"e{i}", f"u{i}") for i in range(2000)]
    path = segment(tmp_path, to_lines(events, utc_now()))
    results: list[LoadResult] = []

    def load(number: int | None) -> None:
        results.append(store.load(path, number))

    threads = [threading.Thread(target=load, args=(n,)) for n in (None, None, 1, 1, None, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == len(threads)
    assert sum(r.exposures for r in results) == 2000
    assert store.counts() == {"exposures": 2000, "events": 0}
    assert store.loaded_through() == 1


def test_segment_numbers_are_per_spool(store: EventStore, tmp_path: Path) -> None:
    """Two servers with their own spools load into one store: their segment 1s are different."""
    now = utc_now()
    first = segment(tmp_path, to_lines([exposure("a1")], now))
    second = segment(tmp_path, to_lines([exposure("b1", "u2")], now))
    assert store.load(first, 1, spool="server-a") == LoadResult(1, 0, 0)
    assert store.load(second, 1, spool="server-b") == LoadResult(1, 0, 0)
    assert store.load(second, 1, spool="server-b") == LoadResult(0, 0, 0)
    assert store.loaded_through("server-a") == store.loaded_through("server-b") == 1
    assert store.loaded_through("server-c") == 0
    assert store.counts() == {"exposures": 2, "events": 0}


def test_duckdb_load_waits_while_an_analysis_reads_the_file(tmp_path: Path) -> None:
    """An analysis in the same process opens the store read-only; a load then reports busy
    (the loader retries later) instead of failing on DuckDB's configuration clash."""
    from liftkit.warehouse import connect

    store = DuckDBStore(tmp_path / "events.duckdb")
    segment = tmp_path / "segment.ndjson"
    segment.write_bytes(b"")
    store.load(segment)
    reader = connect("duckdb", str(tmp_path / "events.duckdb"))
    try:
        with pytest.raises(StoreBusy, match="read-only for an analysis"):
            store.load(segment)
    finally:
        reader.close()
    assert store.load(segment) == LoadResult(0, 0, 0)
