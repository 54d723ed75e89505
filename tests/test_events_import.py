"""``liftkit events import``: real Parquet, CSV and NDJSON files into a real DuckDB store."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import Result
from typer.testing import CliRunner

from liftkit.cli._app import app
from liftkit.events.duckdb_store import DuckDBStore
from liftkit.events.importer import ImportFailed, detect_format, import_file
from liftkit.events.schema import EVENT, to_lines
from liftkit.events.store import LoadResult, StoreBusy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
runner = CliRunner()

EXPOSURE_HEADER = "event_id,type,timestamp,experiment_key,variation_id,hash_attribute,hash_value"


@pytest.fixture
def store(tmp_path: Path) -> DuckDBStore:
    return DuckDBStore(tmp_path / "store" / "events.duckdb")


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Query the store file the way a notebook would: a separate read-only connection."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def exposures_csv(path: Path, count: int, *, start: int = 0) -> Path:
    lines = [EXPOSURE_HEADER]
    lines += [
        f"e{i},exposure,2025-06-01T10:00:{i % 60:02d}Z,checkout,{i % 2},id,u{i}"
        for i in range(start, start + count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_parquet(path: Path, select: str) -> Path:
    with duckdb.connect() as con:
        con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    return path


# -- formats ----------------------------------------------------------------------------------


def test_parquet_exposures_are_stored_with_text_ids_and_utc_timestamps(
    tmp_path: Path, store: DuckDBStore
) -> None:
    # Integer ids and TIMESTAMPTZ are what data warehouses export; attributes as JSON text.
    source = write_parquet(
        tmp_path / "exposures.parquet",
        "SELECT 1000 + i AS event_id, 'exposure' AS type, "
        "TIMESTAMPTZ '2025-06-01 12:00:00+02:00' + to_minutes(i) AS timestamp, "
        "'checkout' AS experiment_key, i % 3 AS variation_id, 'user_id' AS hash_attribute, "
        'i * 7 AS hash_value, \'{"plan": "pro"}\' AS attributes FROM range(5) t(i)',
    )
    report = import_file(source, store, now=NOW)
    assert (report.rows_read, report.accepted, report.exposures, report.events) == (5, 5, 5, 0)
    assert report.rejected == 0 and report.rejections == []
    stored = rows(
        store.path,
        "SELECT event_id, timestamp, received_at, variation_id, hash_attribute, hash_value, "
        "attributes::VARCHAR FROM exposures ORDER BY event_id",
    )
    assert stored[0] == (
        "1000",
        datetime(2025, 6, 1, 10, 0),  # 12:00+02:00 in UTC
        datetime(2026, 3, 1, 12, 0),
        0,
        "user_id",
        "0",
        '{"plan":"pro"}',
    )
    assert [r[5] for r in stored] == ["0", "7", "14", "21", "28"]
    assert [r[3] for r in stored] == [0, 1, 2, 0, 1]


def test_csv_mixes_exposures_and_track_events_and_keeps_text_as_text(
    tmp_path: Path, store: DuckDBStore
) -> None:
    source = tmp_path / "mixed.csv"
    source.write_text(
        "event_id,type,timestamp,experiment_key,variation_id,hash_value,name,value,user_id,"
        "properties\n"
        "x1,exposure,2025-01-02 03:04:05,checkout,1,007,,,,\n"
        't1,track,1735787045,,,,purchase,19.5,007,"{""sku"": ""A-1""}"\n'
        't2,track,2025-01-02T03:04:05+01:00,"","","",signup,"",u2,""\n'  # "" is missing too
    )
    report = import_file(source, store, now=NOW)
    assert (report.accepted, report.exposures, report.events, report.rejected) == (3, 1, 2, 0)
    assert rows(store.path, "SELECT event_id, hash_value, hash_attribute FROM exposures") == [
        ("x1", "007", "id")
    ]
    assert rows(
        store.path,
        "SELECT event_id, timestamp, name, value, user_id, properties::VARCHAR FROM events "
        "ORDER BY event_id",
    ) == [
        ("t1", datetime(2025, 1, 2, 3, 4, 5), "purchase", 19.5, "007", '{"sku":"A-1"}'),
        ("t2", datetime(2025, 1, 2, 2, 4, 5), "signup", None, "u2", "{}"),
    ]


def test_ndjson_lines_are_validated_like_the_http_body(tmp_path: Path, store: DuckDBStore) -> None:
    good = {
        "event_id": "n1",
        "type": "track",
        "timestamp": "2025-05-05T00:00:00Z",
        "name": "click",
        "anonymous_id": "a1",
        "properties": {"nested": {"deep": [1, 2]}},
    }
    source = tmp_path / "events.jsonl"
    source.write_text(
        json.dumps(good)
        + "\n{not json\n"
        + json.dumps({**good, "event_id": "n3", "colour": "red"})
        + "\n"
        + json.dumps({**good, "event_id": "n4", "name": ""})
        + "\n"
    )
    report = import_file(source, store, now=NOW)
    assert (report.rows_read, report.accepted, report.rejected) == (4, 1, 3)
    assert [(r.index, r.field) for r in report.rejections] == [
        (2, "(line)"),
        (3, "colour"),
        (4, "name"),
    ]
    assert rows(store.path, "SELECT event_id, properties->>'$.nested.deep[1]' FROM events") == [
        ("n1", "2")
    ]


def test_a_quarantined_spool_segment_loads_as_ndjson(tmp_path: Path, store: DuckDBStore) -> None:
    """Spool segments carry ``received_at``; the loader tells the operator to import them."""
    events = [
        EVENT.validate_python(
            {
                "event_id": f"s{i}",
                "type": "exposure",
                "timestamp": "2025-01-01T00:00:00Z",
                "experiment_key": "checkout",
                "variation_id": 1,
                "hash_value": f"u{i}",
            }
        )
        for i in range(3)
    ]
    segment = tmp_path / "00000042.ndjson"
    segment.write_bytes(to_lines(events, received_at=datetime(2025, 1, 1, tzinfo=UTC)))
    report = import_file(segment, store, now=NOW)
    assert (report.accepted, report.exposures, report.rejected) == (3, 3, 0)


def test_a_json_array_file_and_a_gzipped_csv_are_read(tmp_path: Path, store: DuckDBStore) -> None:
    array = tmp_path / "events.json"
    array.write_text(json.dumps([
        {"event_id": "j1", "type": "track", "timestamp": 1735689600, "name": "x", "user_id": "u"},
        {"event_id": "j2", "type": "track", "timestamp": 1735689601, "name": "x", "user_id": "u"},
    ]))  # fmt: skip
    assert import_file(array, store, now=NOW).events == 2
    packed = tmp_path / "exposures.csv.gz"
    packed.write_bytes(gzip.compress(exposures_csv(tmp_path / "plain.csv", 4).read_bytes()))
    assert detect_format(packed) == "csv"
    assert import_file(packed, store, now=NOW).exposures == 4
    assert rows(store.path, "SELECT count(*) FROM exposures") == [(4,)]


# -- validation and deduplication ----------------------------------------------------------------


def test_bad_rows_are_reported_by_row_and_field_and_good_rows_kept(
    tmp_path: Path, store: DuckDBStore
) -> None:
    source = tmp_path / "mixed.csv"
    source.write_text(
        "event_id,type,timestamp,experiment_key,variation_id,hash_value,name,user_id,attributes\n"
        "g1,exposure,2025-01-01,checkout,0,u1,,,\n"
        "b2,exposure,2025-01-01,checkout,two,u2,,,\n"  # variation_id not a number
        "b3,track,2025-01-01,,,,purchase,,\n"  # a track event nobody did
        "g4,track,2025-01-01,,,,purchase,u4,\n"
        "b5,exposure,2025-01-01,checkout,1,u5,,,{oops\n"  # attributes not JSON
        "b6,click,2025-01-01,,,,,,\n"  # unknown type
        ",exposure,2025-01-01,checkout,1,u7,,,\n"  # no event_id
    )
    report = import_file(source, store, now=NOW)
    assert (report.rows_read, report.accepted, report.rejected) == (7, 2, 5)
    assert [(r.index, r.field) for r in report.rejections] == [
        (2, "variation_id"),
        (3, "(event)"),
        (5, "attributes"),
        (6, "type"),
        (7, "event_id"),
    ]
    assert "needs user_id or anonymous_id" in report.rejections[1].message
    stored = "SELECT event_id FROM exposures UNION ALL SELECT event_id FROM events"
    assert rows(store.path, stored) == [("g1",), ("g4",)]


def test_history_is_allowed_but_the_far_future_is_not(tmp_path: Path, store: DuckDBStore) -> None:
    def stamp(delta: timedelta) -> str:
        return (NOW + delta).isoformat()

    source = tmp_path / "times.csv"
    source.write_text(
        "event_id,type,timestamp,name,user_id\n"
        f"old,track,{stamp(-timedelta(days=3650))},x,u\n"  # ten years ago: history, fine
        f"skew,track,{stamp(timedelta(seconds=200))},x,u\n"  # within the 300 s clock skew
        f"future,track,{stamp(timedelta(hours=1))},x,u\n"
    )
    report = import_file(source, store, now=NOW)
    assert report.accepted == 2
    assert [(r.index, r.field) for r in report.rejections] == [(3, "timestamp")]
    assert "in the future" in report.rejections[0].message
    assert rows(store.path, "SELECT event_id FROM events ORDER BY event_id") == [
        ("old",),
        ("skew",),
    ]


def test_importing_a_file_again_stores_nothing_twice(tmp_path: Path, store: DuckDBStore) -> None:
    source = exposures_csv(tmp_path / "exposures.csv", 10)
    first = import_file(source, store, now=NOW)
    assert (first.exposures, first.duplicates) == (10, 0)
    # An overlapping file: 5 already stored, 5 new.
    overlap = exposures_csv(tmp_path / "overlap.csv", 10, start=5)
    second = import_file(overlap, store, now=NOW)
    assert (second.accepted, second.exposures, second.duplicates) == (10, 5, 5)
    again = import_file(source, store, now=NOW)
    assert (again.accepted, again.exposures, again.duplicates) == (10, 0, 10)
    assert rows(store.path, "SELECT count(*), count(DISTINCT event_id) FROM exposures") == [
        (15, 15)
    ]


def test_chunk_boundaries_keep_row_numbers_duplicates_and_progress(
    tmp_path: Path, store: DuckDBStore
) -> None:
    source = tmp_path / "chunks.csv"
    ids = ["c1", "c2", "c3", "c3", "c5", "c6", "c7", "c8", "c9", "c1"]  # repeats across chunks
    lines = [EXPOSURE_HEADER] + [
        f"{e},exposure,2025-01-01,checkout,{'x' if n == 8 else 0},id,u{n}"
        for n, e in enumerate(ids, 1)
    ]
    source.write_text("\n".join(lines) + "\n")
    seen: list[tuple[int, int]] = []
    counting = CountingStore(store)
    report = import_file(
        source,
        counting,  # type: ignore[arg-type]
        now=NOW,
        chunk_rows=3,
        load_rows=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(0, 10), (3, 10), (6, 10), (9, 10), (10, 10)]
    assert counting.loads == 4  # a load after each chunk, so c3 and c1 repeat across loads
    assert [(r.index, r.field) for r in report.rejections] == [(8, "variation_id")]
    assert (report.rows_read, report.accepted, report.exposures, report.duplicates) == (10, 9, 7, 2)
    stored = rows(store.path, "SELECT event_id, hash_value FROM exposures ORDER BY event_id")
    assert [e for e, _ in stored] == ["c1", "c2", "c3", "c5", "c6", "c7", "c9"]
    assert dict(stored)["c3"] == "u3"  # the first copy wins, not the later one


def test_parquet_dates_and_a_big_load_batch(tmp_path: Path, store: DuckDBStore) -> None:
    source = write_parquet(
        tmp_path / "daily.parquet",
        "SELECT 'd' || i AS event_id, 'track' AS type, "
        "DATE '2025-01-01' + i::INTEGER AS timestamp, 'active' AS name, 'u' || i AS user_id, "
        "i::DECIMAL(6, 2) / 4 AS value FROM range(3) t(i)",
    )
    counting = CountingStore(store)
    report = import_file(source, counting, now=NOW, load_rows=1000)  # type: ignore[arg-type]
    assert (report.events, counting.loads) == (3, 1)
    assert rows(store.path, "SELECT timestamp, value FROM events ORDER BY event_id") == [
        (datetime(2025, 1, 1), 0.0),
        (datetime(2025, 1, 2), 0.25),
        (datetime(2025, 1, 3), 0.5),
    ]


def test_a_large_chunked_parquet_file_arrives_whole(tmp_path: Path, store: DuckDBStore) -> None:
    source = write_parquet(
        tmp_path / "many.parquet",
        "SELECT 'e' || i AS event_id, 'exposure' AS type, TIMESTAMP '2025-01-01' AS timestamp, "
        "'checkout' AS experiment_key, (i % 2)::INTEGER AS variation_id, 'u' || i AS hash_value "
        "FROM range(25000) t(i)",
    )
    report = import_file(source, store, now=NOW, chunk_rows=4000, load_rows=7000)
    assert (report.total_rows, report.rows_read, report.exposures) == (25000, 25000, 25000)
    assert rows(
        store.path, "SELECT count(DISTINCT event_id), sum(variation_id) FROM exposures"
    ) == [(25000, 12500)]


def test_type_fills_in_rows_without_one(tmp_path: Path, store: DuckDBStore) -> None:
    source = tmp_path / "purchases.csv"
    source.write_text("event_id,timestamp,name,value,user_id\np1,2025-01-01,buy,3,u1\n")
    with pytest.raises(ImportFailed, match=r"no 'type' column.*--type"):
        import_file(source, store, now=NOW)
    assert rows(store.path, "SELECT count(*) FROM events") == [(0,)]
    report = import_file(source, store, now=NOW, default_type="track")
    assert (report.events, report.exposures) == (1, 0)
    assert rows(store.path, "SELECT name, value FROM events") == [("buy", 3.0)]


def test_unreadable_input_fails_cleanly_before_anything_is_stored(
    tmp_path: Path, store: DuckDBStore
) -> None:
    with pytest.raises(ImportFailed, match="no such file"):
        import_file(tmp_path / "missing.csv", store)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImportFailed, match="--format"):
        import_file(tmp_path / "notes.txt", store)
    with pytest.raises(ImportFailed, match="unknown format 'xml'"):
        import_file(tmp_path / "notes.txt", store, format="xml")
    (tmp_path / "fake.parquet").write_text("not parquet at all")
    with pytest.raises(ImportFailed, match=r"cannot read .* as parquet"):
        import_file(tmp_path / "fake.parquet", store)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("event_id,type,timestamp\ne1,track,2025-01-01,extra\ne2,track\n")
    with pytest.raises(ImportFailed, match="cannot make out the columns"):
        import_file(ragged, store)
    # A broken row far down a CSV file: found while counting, before the first load.
    broken = exposures_csv(tmp_path / "broken.csv", 30000)
    with broken.open("a") as file:
        file.write("x,exposure,2025-01-01,checkout,0,id,u,EXTRA\n")
    with pytest.raises(ImportFailed, match="Line: 30002"):
        import_file(broken, store, chunk_rows=1000)
    assert rows(store.path, "SELECT count(*) FROM exposures") == [(0,)]


# -- a store held by another process -------------------------------------------------------------


def hold_lock(path: Path, seconds: float | None = None) -> subprocess.Popen[str]:
    """Another process with the store open (as a notebook would): for ``seconds``, or until
    its stdin is closed."""
    wait = "sys.stdin.read()" if seconds is None else f"time.sleep({seconds})"
    script = (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
        f"print('ready', flush=True); {wait}"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    process.wait(10)
    process.stdout.close()


class CountingStore:
    """The store, counting its loads and those refused because it was busy."""

    def __init__(self, inner: DuckDBStore) -> None:
        self.inner = inner
        self.description = inner.description
        self.loads = 0
        self.busy = 0

    def load(self, path: Path, segment: int | None = None) -> LoadResult:
        assert segment is None  # an import is checked against every stored event
        self.loads += 1
        try:
            return self.inner.load(path, segment)
        except StoreBusy:
            self.busy += 1
            raise


def test_a_store_locked_elsewhere_fails_with_a_clear_message(
    tmp_path: Path, store: DuckDBStore
) -> None:
    source = exposures_csv(tmp_path / "exposures.csv", 3)
    holder = hold_lock(store.path)
    try:
        with pytest.raises(ImportFailed, match=r"open in another process.*tried 3 times") as caught:
            import_file(source, store, now=NOW, busy_retries=2, busy_wait=0.01)
        assert caught.value.report is not None and caught.value.report.accepted == 3
        result = invoke("events", "import", str(source), "--data-dir", str(store.path.parent))
        assert result.exit_code == 1
        assert "open in another process" in said(result)
    finally:
        release(holder)
    assert rows(store.path, "SELECT count(*) FROM exposures") == [(0,)]


def test_a_store_released_while_waiting_is_loaded(tmp_path: Path, store: DuckDBStore) -> None:
    source = exposures_csv(tmp_path / "exposures.csv", 3)
    counting = CountingStore(store)
    holder = hold_lock(store.path, seconds=0.5)  # retries wait 0.1, 0.2, 0.4, 0.8, 1.6 s
    try:
        report = import_file(source, counting, now=NOW, busy_retries=5, busy_wait=0.1)  # type: ignore[arg-type]
    finally:
        release(holder)
    assert counting.busy >= 1
    assert report.exposures == 3


# -- the command -------------------------------------------------------------------------------


def invoke(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def said(result: Result) -> str:
    """The output without the line breaks Rich adds to fit an 80-column terminal."""
    return result.output.replace("\n", "")


def summary(result: Result) -> dict[str, int]:
    """The summary table's counts, by row label."""
    found = re.findall(
        r"│ (read|accepted|stored|duplicates|rejected)\s*│\s*([\d,]+)", result.output
    )
    return {label: int(count.replace(",", "")) for label, count in found}


def test_cli_imports_and_summarises(tmp_path: Path) -> None:
    source = exposures_csv(tmp_path / "exposures.csv", 12)
    data = ["--data-dir", str(tmp_path / "data")]
    result = invoke("events", "import", str(source), *data)
    assert result.exit_code == 0, result.output
    assert summary(result) == {
        "read": 12, "accepted": 12, "stored": 12, "duplicates": 0, "rejected": 0,
    }  # fmt: skip
    assert rows(tmp_path / "data" / "events.duckdb", "SELECT count(*) FROM exposures") == [(12,)]
    again = invoke("events", "import", str(source), *data)
    assert again.exit_code == 0  # every row accepted, all of them already stored
    assert summary(again)["stored"] == 0 and summary(again)["duplicates"] == 12
    status = invoke("events", "status", *data)
    assert status.exit_code == 0
    assert re.search(r"exposures\s*│\s*12\b", status.output)
    assert re.search(r"events\s*│\s*0\b", status.output)
    assert "loaded through: 0" in status.output


def test_cli_exits_1_when_every_row_is_rejected_and_lists_why(tmp_path: Path) -> None:
    source = tmp_path / "bad.ndjson"
    source.write_text('{"event_id": "a", "type": "exposure"}\nnope\n')
    result = invoke("events", "import", str(source), "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert summary(result)["rejected"] == 2
    assert re.search(r"│\s*1 │ timestamp\s*│ Field required", result.output)
    assert re.search(r"│\s*2 │ \(line\)\s*│ not valid JSON", result.output)


def test_cli_exit_0_for_an_empty_file_and_some_accepted_rows(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    empty = tmp_path / "empty.csv"
    empty.write_text(EXPOSURE_HEADER + "\n")
    result = invoke("events", "import", str(empty), *data)
    assert result.exit_code == 0
    assert summary(result)["read"] == 0
    half = tmp_path / "half.csv"
    half.write_text(EXPOSURE_HEADER + "\nok,exposure,2025-01-01,c,0,id,u\nbad,exposure,,c,0,id,u\n")
    result = invoke("events", "import", str(half), *data)
    assert result.exit_code == 0
    assert summary(result)["rejected"] == 1
    assert re.search(r"│\s*2 │ timestamp", result.output)


def test_cli_messages_for_missing_files_formats_and_types(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    result = invoke("events", "import", str(tmp_path / "gone.parquet"), *data)
    assert (result.exit_code, "no such file" in said(result)) == (1, True)
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    result = invoke("events", "import", str(notes), *data)
    assert result.exit_code == 1 and "give it with --format" in said(result)
    result = invoke("events", "import", str(notes), "--format", "xlsx", *data)
    assert result.exit_code == 1 and "unknown format 'xlsx'" in said(result)
    result = invoke("events", "import", str(notes), "--format", "csv", "--type", "click", *data)
    assert result.exit_code == 1 and "--type must be exposure or track" in said(result)
    assert not (tmp_path / "data").exists()  # nothing opened, nothing created


def test_cli_type_option_and_events_url(tmp_path: Path) -> None:
    source = tmp_path / "purchases.csv"
    source.write_text("event_id,timestamp,name,user_id\np1,2025-01-01,buy,u1\n")
    elsewhere = tmp_path / "elsewhere.duckdb"
    args = ["events", "import", str(source), "--data-dir", str(tmp_path / "data")]
    url = ["--events-url", f"duckdb:///{elsewhere}"]
    result = invoke(*args, *url)
    assert result.exit_code == 1 and "has no 'type' column" in said(result)
    result = invoke(*args, *url, "--type", "track")
    assert result.exit_code == 0, result.output
    assert rows(elsewhere, "SELECT event_id, name FROM events") == [("p1", "buy")]
    assert not (tmp_path / "data" / "events.duckdb").exists()


def test_cli_status_without_a_store_creates_nothing(tmp_path: Path) -> None:
    result = invoke("events", "status", "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 0
    assert "No event store yet" in said(result)
    assert not (tmp_path / "data").exists()
