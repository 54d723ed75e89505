"""Event ingest: ``POST /api/v1/events`` on a real ``liftkit serve`` vs direct DuckDB appends.

(1) HTTP: K threads, one keep-alive ``http.client`` connection each, post JSON-array batches of B
SDK-shaped exposures for S seconds to ``liftkit serve`` on a temporary data directory; a batch
counts when answered 2xx (sent after ``fdatasync``). Bodies are serialised before the clock;
a request only stamps its sequence number into the first 8 hex digits of each ``event_id``
(one ``bytes.replace``, cost printed), so no event is a duplicate. Then the loader is waited
for, the server gets SIGTERM and ``events.duckdb`` (read-only) must hold exactly the
acknowledged exposures, else the script fails.

(2) Direct: the same acknowledged bodies appended to a fresh DuckDB file with liftkit's schema
(``duckdb_store._ddl``), one commit per batch, from the body bytes, with no validation or
deduplication: ``read_json`` over a file written per batch, ``from_json`` over the body,
``json.loads`` rows + ``executemany`` (time-boxed, extrapolated), and dicts -> pandas /
pyarrow frame -> ``INSERT ... SELECT`` (each only when installed).

    .venv/bin/python benchmarks/ingest.py --seconds 10 [--batch 1000] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import itertools
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

MARK = b"@@@@@@@@"  # replaced by the request's sequence number in every event_id
TEMPLATES = 8  # distinct bodies, cycled
WARM = TEMPLATES  # untimed warm-up requests (acknowledged and stored too)
COLUMNS = (
    "event_id, timestamp, received_at, experiment_key, variation_id, variation_key, "
    "feature_key, hash_attribute, hash_value, attributes"
)
KEYS = COLUMNS.split(", ")[3:-1]
SELECT = COLUMNS.replace("received_at", "?::TIMESTAMP")  # received_at: the batch's arrival
BODY_TYPES = (
    "{'event_id': 'VARCHAR', 'timestamp': 'TIMESTAMP', 'experiment_key': 'VARCHAR', "
    "'variation_id': 'INTEGER', 'variation_key': 'VARCHAR', 'feature_key': 'VARCHAR', "
    "'hash_attribute': 'VARCHAR', 'hash_value': 'VARCHAR', 'attributes': 'JSON'}"
)
Con = duckdb.DuckDBPyConnection
Append = Callable[[Con, bytes, datetime, Path], None]


def exposure(rng: random.Random, now: datetime) -> dict[str, Any]:
    """One exposure as the SDK's exposure logger sends it (event_id starts with MARK)."""
    experiment, variation = rng.randrange(20), rng.randrange(2)
    at = now - timedelta(seconds=rng.uniform(0, 600))
    return {
        "type": "exposure",
        "event_id": MARK.decode() + uuid.UUID(int=rng.getrandbits(128)).hex[8:],
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "experiment_key": f"checkout-test-{experiment}",
        "variation_id": variation,
        "variation_key": ("control", "treatment")[variation],
        "feature_key": f"checkout-flow-{experiment}",
        "hash_attribute": "id",
        "hash_value": f"user-{rng.randrange(10_000_000):08d}",
        "attributes": {
            "country": rng.choice(["US", "GB", "DE", "FR", "IN", "BR"]),
            "plan": rng.choice(["free", "pro", "team"]),
            "app_version": f"5.{rng.randrange(20)}.{rng.randrange(10)}",
        },
    }


def make_templates(batch: int) -> list[bytes]:
    rng, now = random.Random(7), datetime.now(UTC)
    return [
        json.dumps([exposure(rng, now) for _ in range(batch)], separators=(",", ":")).encode()
        for _ in range(TEMPLATES)
    ]


def body_of(templates: list[bytes], seq: int) -> bytes:
    return templates[seq % TEMPLATES].replace(MARK, b"%08x" % seq)


def ingest_key(data: Path) -> str:
    """A new ingest key in a new registry (``bootstrap`` creates it)."""
    from liftkit.platform import Platform
    from liftkit.settings import Settings

    platform = Platform(Settings(data_dir=data))
    platform.bootstrap()
    token, _ = platform.accounts.create_key("ingest", created_by="bench", name="bench")
    platform.close()
    return str(token)


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``liftkit serve`` on a free port, once it answers /readyz."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log = (data / "server.log").open("wb")
    command = [sys.executable, "-m", "liftkit.cli", "serve", "--data-dir", str(data)]
    proc = subprocess.Popen([*command, "--port", str(port)], stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
            return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit("server did not start:\n" + (data / "server.log").read_text())
            time.sleep(0.1)


def wait_loaded(port: int, expected: int, timeout: float = 120.0) -> float:
    """Seconds until the loader stored ``expected`` exposures and the spool is empty."""
    started = time.perf_counter()
    stored = re.compile(r'^liftkit_events_stored_total\{table="exposures"\} (\S+)$', re.M)
    spool = re.compile(r"^liftkit_events_spool_bytes (\S+)$", re.M)
    while time.perf_counter() - started < timeout:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        done, left = stored.search(text), spool.search(text)
        if done and left and float(done[1]) >= expected and float(left[1]) == 0:
            break
        time.sleep(0.1)
    return time.perf_counter() - started


def post(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> int:
    conn.request("POST", "/api/v1/events", body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def load(
    port: int, token: str, templates: list[bytes], seconds: float, clients: int
) -> tuple[list[int], list[float], Counter[int], float]:
    """Sequence numbers answered 2xx, request latencies, statuses and the elapsed time."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    if any(post(warm, body_of(templates, seq), headers) != 200 for seq in range(WARM)):
        sys.exit("a warm-up request failed")
    warm.close()
    counter, lock, clock = itertools.count(WARM), threading.Lock(), [0.0]
    acked: list[int] = []
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start = threading.Barrier(clients + 1, action=lambda: clock.__setitem__(0, time.perf_counter()))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        mine: list[tuple[int, float, int]] = []
        start.wait()
        stop = clock[0] + seconds
        while time.perf_counter() < stop:
            seq = next(counter)
            body = body_of(templates, seq)
            began = time.perf_counter()
            status = post(conn, body, headers)
            mine.append((seq, time.perf_counter() - began, status))
            if not 200 <= status < 300:
                time.sleep(0.05)
        conn.close()
        with lock:
            acked.extend(seq for seq, _, status in mine if 200 <= status < 300)
            latencies.extend(latency for _, latency, _ in mine)
            statuses.update(status for _, _, status in mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join()
    return sorted(acked), sorted(latencies), statuses, time.perf_counter() - clock[0]


def via_read_json(con: Con, body: bytes, at: datetime, tmp: Path) -> None:
    (tmp / "batch.json").write_bytes(body)
    con.execute(
        f"INSERT INTO exposures SELECT {SELECT} FROM "
        f"read_json(?, format='array', columns={BODY_TYPES})",
        [at, str(tmp / "batch.json")],
    )


def via_from_json(con: Con, body: bytes, at: datetime, _: Path) -> None:
    con.execute(
        f"INSERT INTO exposures SELECT {SELECT} FROM (SELECT unnest(from_json(?::VARCHAR, "
        f"'[{BODY_TYPES.replace(chr(39), chr(34))}]'), recursive := true))",
        [at, body.decode()],
    )


def via_executemany(con: Con, body: bytes, at: datetime, _: Path) -> None:
    rows = [
        (e["event_id"], e["timestamp"], at, *(e[k] for k in KEYS), json.dumps(e["attributes"]))
        for e in json.loads(body)
    ]
    con.execute("BEGIN")
    con.executemany(f"INSERT INTO exposures ({COLUMNS}) VALUES ({', '.join('?' * 10)})", rows)
    con.execute("COMMIT")


def via_frame(make: Callable[[list[dict[str, Any]]], Any]) -> Append:
    def append(con: Con, body: bytes, at: datetime, _: Path) -> None:
        events = json.loads(body)
        for event in events:
            event["attributes"] = json.dumps(event["attributes"])
        con.register("frame", make(events))
        con.execute(f"INSERT INTO exposures SELECT {SELECT} FROM frame", [at])
        con.unregister("frame")

    return append


def frame_variants() -> list[tuple[str, Append | str]]:
    """pandas / pyarrow lines, or a note that the library is not installed (none is added)."""
    out: list[tuple[str, Append | str]] = []
    for module, make in (("pandas", "DataFrame"), ("pyarrow", "Table")):
        name = f"dicts -> {module}.{make} -> INSERT SELECT"
        try:
            found = getattr(importlib.import_module(module), make)
        except ImportError:
            out.append((name, f"skipped: {module} is not installed in the venv"))
            continue
        out.append((name, via_frame(found if module == "pandas" else found.from_pylist)))
    return out


def direct(append: Append, bodies: list[bytes], tmp: Path, budget: float) -> tuple[float, int]:
    """Events/s of ``append`` over ``bodies`` (stopping after ``budget`` s), batches done."""
    from liftkit.events.duckdb_store import _ddl

    for old in tmp.glob("direct.duckdb*"):
        old.unlink()
    batch = bodies[0].count(b'"event_id"')
    warm = json.dumps([exposure(random.Random(1), datetime.now(UTC))]).encode()
    with duckdb.connect(str(tmp / "direct.duckdb")) as con:
        for statement in _ddl():
            con.execute(statement)
        at = datetime.now(UTC).replace(tzinfo=None)
        append(con, warm.replace(MARK, b"warm-up!"), at, tmp)
        began, done = time.perf_counter(), 0
        for body in bodies:
            append(con, body, at, tmp)
            done += 1
            if time.perf_counter() - began > budget:
                break
        elapsed = time.perf_counter() - began
        row = con.execute("SELECT count(DISTINCT event_id) FROM exposures").fetchone()
    if row is None or row[0] != done * batch + 1:
        sys.exit(f"FAIL: direct append stored {row} rows, expected {done * batch + 1}")
    return done * batch / elapsed, done


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description="event ingest: HTTP vs direct DuckDB append")
    parser.add_argument("--batch", type=int, default=1000, help="events per request (B)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections (K)")
    parser.add_argument("--seconds", type=float, default=10, help="HTTP load duration (S)")
    parser.add_argument("--executemany-seconds", type=float, default=3, help="its time box")
    args = parser.parse_args()
    batch, clients = args.batch, args.clients
    templates = make_templates(batch)
    stamp = timeit.timeit(lambda: body_of(templates, 1), number=50) / 50 * 1e6
    size = len(templates[0])
    print(f"B={batch} exposures/request ({size / batch:.0f} B/event, {size >> 10} KiB), ", end="")
    print(f"K={clients} connections, S={args.seconds:g} s; client stamping (bytes.replace)")
    print(f"{stamp:.0f} µs/request; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="liftkit-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        token = ingest_key(data)
        server, port = start_server(data)
        try:
            cpu = cpu_seconds(server.pid), cpu_seconds(os.getpid())
            acked, lat, statuses, elapsed = load(port, token, templates, args.seconds, clients)
            cpu = cpu_seconds(server.pid) - cpu[0], cpu_seconds(os.getpid()) - cpu[1]
            expected = (len(acked) + WARM) * batch
            drain = wait_loaded(port, expected) if acked else 0.0
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        log = (data / "server.log").read_text()
        if not acked:
            sys.exit(f"FAIL: no request was acknowledged: {dict(statuses)}\n{log[-3000:]}")
        with duckdb.connect(str(data / "events.duckdb"), read_only=True) as con:
            row = con.execute("SELECT count(*), count(DISTINCT event_id) FROM exposures").fetchone()
        stored, distinct = row or (0, 0)
        http_rate = len(acked) * batch / elapsed
        p50, p99 = statistics.median(lat) * 1e3, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
        others = {s: n for s, n in statuses.items() if not 200 <= s < 300} or "none"
        server_cpu, per_event = cpu[0] / elapsed, cpu[0] / len(acked) / batch * 1e6
        print("\nHTTP POST /api/v1/events (liftkit serve, acknowledged after fdatasync)")
        print(
            f"  {f'http, {clients} keep-alive connections':44s} {http_rate:11,.0f} events/s", end=""
        )
        print(f"  {len(acked) / elapsed:6.1f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
        print(f"  CPU while loading: server {server_cpu:.0%} of a core ({per_event:.1f} µs/event),")
        print(f"  client {cpu[1] / elapsed:.0%}; non-2xx answers: {others}; acknowledged ", end="")
        print(f"{expected:,} exposures ({WARM} untimed warm-up batches included);")
        clean = "Application shutdown complete" in log
        print(f"  loader drained {drain:.1f} s after the load; SIGTERM shutdown clean: {clean};")
        print(f"  events.duckdb: {stored:,} exposures, {distinct:,} distinct event_id")
        if stored != expected or distinct != expected:
            sys.exit(f"FAIL: stored {stored:,} != acknowledged {expected:,}\n{log[-3000:]}")
        print("  stored == acknowledged: OK")

        bodies = [body_of(templates, seq) for seq in acked]
        print(f"\nDirect DuckDB append of the same {len(bodies) * batch:,} exposures ", end="")
        print(f"({len(bodies)} batches), one commit per batch, no validation or dedup")
        variants: list[tuple[str, Append | str]] = [
            ("read_json(file written per batch)", via_read_json),
            ("from_json(body string)", via_from_json),
            ("json.loads -> rows -> executemany", via_executemany),
            *frame_variants(),
        ]
        rates: dict[str, float] = {}
        for name, append in variants:
            if isinstance(append, str):
                print(f"  {name:44s} {append}")
                continue
            budget = args.executemany_seconds if append is via_executemany else float("inf")
            rates[name], done = direct(append, bodies, tmp, budget)
            note = "" if done == len(bodies) else f"  (first {done} batches, extrapolated)"
            print(f"  {name:44s} {rates[name]:11,.0f} events/s{note}")

    print(f"\nHTTP events/s ÷ direct events/s (load average {os.getloadavg()[0]:.1f} after)")
    for name, rate in rates.items():
        print(f"  ÷ {name:42s} {http_rate / rate:8.1%}  ({http_rate / rate:.2f}×)")
    best = max(rates, key=rates.__getitem__)
    share = http_rate / rates[best]
    print(f"target HTTP >= 50% of direct append (reference: the fastest direct variant, {best}):")
    print(f"  {share:.1%}: {'MET' if share >= 0.5 else 'NOT MET'}")
    met = "MET" if http_rate >= 100_000 else "NOT MET"
    print(f"target HTTP >= 100,000 events/s: {http_rate:,.0f} events/s: {met}")


if __name__ == "__main__":
    main()
