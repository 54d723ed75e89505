"""Durability of ``POST /api/v1/events``: ``kill -9`` mid-ingest loses no acknowledged event
and stores none twice, and the spool's crash recovery on its own.

The crash test runs ``liftkit serve`` as a real process, has concurrent clients send batches of
unique events, kills the server with SIGKILL while requests are in flight (and, with a 0.2 s
load interval, while segments are being loaded), restarts it on the same data directory and
resends what was not acknowledged plus some batches that were (a client that lost the answer
resends). Three kill cycles, then a clean stop; the store must then hold every event exactly
once.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events_support import Server, bootstrap, call, read_store, wait_for
from liftkit.events.spool import Spool, segment_path

CLIENTS = 4
BATCH = 40
TRAFFIC_SECONDS = 1.5
KILL_CYCLES = 3
LOAD_EVERY = {"LIFTKIT_EVENTS_LOAD_SECONDS": "0.2"}


def make_batch(prefix: str) -> tuple[list[str], bytes]:
    """``BATCH`` unique events (exposures and track events, alternating) and their JSON body."""
    now = datetime.now(UTC).isoformat()
    events: list[dict[str, Any]] = []
    for i in range(BATCH):
        event_id = f"{prefix}-{i}"
        if i % 2:
            events.append(
                {
                    "type": "track",
                    "event_id": event_id,
                    "timestamp": now,
                    "name": "purchase",
                    "value": float(i),
                    "user_id": f"u{i}",
                }
            )
        else:
            events.append(
                {
                    "type": "exposure",
                    "event_id": event_id,
                    "timestamp": now,
                    "experiment_key": "crash-test",
                    "variation_id": i % 4 // 2,
                    "hash_value": f"u{i}",
                }
            )
    return [e["event_id"] for e in events], json.dumps(events).encode()


@dataclass
class Sent:
    ids: list[str]
    body: bytes


@dataclass
class Traffic:
    """What the clients of one server run saw."""

    acked: list[Sent] = field(default_factory=list)
    unacked: list[Sent] = field(default_factory=list)
    in_flight_failures: int = 0  # connection reset / closed while waiting for the answer
    refused: int = 0  # connection refused: the server was already gone
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: set[int] = field(default_factory=set)


def post(base: str, key: str, body: bytes) -> None:
    """Send a batch again; the restarted server must take all of it."""
    status, answer = call("POST", base + "/api/v1/events", key, body, timeout=10)
    assert (status, json.loads(answer)) == (200, {"accepted": BATCH, "rejected": []})


def send_until_failure(
    base: str, key: str, cycle: int, client: int, traffic: Traffic, stop_at: float
) -> None:
    """Send batches one after another until a request fails (the server was killed)."""
    number = 0
    while time.monotonic() < stop_at:
        ids, body = make_batch(f"k{cycle}-c{client}-b{number}")
        number += 1
        with traffic.lock:
            traffic.in_flight.add(client)
        try:
            status, answer = call("POST", base + "/api/v1/events", key, body, timeout=10)
        except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
            # Refused, reset, closed before the answer, or cut mid-answer (IncompleteRead):
            # the client cannot know whether the batch was taken, so it counts as not.
            reason = getattr(error, "reason", error)
            with traffic.lock:
                traffic.in_flight.discard(client)
                traffic.unacked.append(Sent(ids, body))
                if isinstance(reason, ConnectionRefusedError):
                    traffic.refused += 1
                else:
                    traffic.in_flight_failures += 1
            return
        except Exception as error:  # reported by the test, not lost in a thread
            with traffic.lock:
                traffic.in_flight.discard(client)
                traffic.unexpected.append(repr(error))
            return
        with traffic.lock:
            traffic.in_flight.discard(client)
            if status == 200 and json.loads(answer) == {"accepted": BATCH, "rejected": []}:
                traffic.acked.append(Sent(ids, body))
            else:
                traffic.unacked.append(Sent(ids, body))
                traffic.unexpected.append(f"{status} {answer[:300]!r}")
                return


def run_and_kill(server: Server, key: str, cycle: int) -> Traffic:
    """Concurrent clients send for ``TRAFFIC_SECONDS``; then SIGKILL with requests in flight."""
    traffic = Traffic()
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=send_until_failure,
            args=(server.base, key, cycle, client, traffic, started + 30),
            daemon=True,
        )
        for client in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()

    def busy() -> bool:
        with traffic.lock:
            return (
                time.monotonic() - started >= TRAFFIC_SECONDS
                and len(traffic.acked) >= CLIENTS
                and len(traffic.in_flight) >= 2
            )

    wait_for(busy, 15, "acknowledged batches and requests in flight", interval=0.001)
    server.kill()
    for thread in threads:
        thread.join(20)
        assert not thread.is_alive(), "a client is still sending to a killed server"
    # The kill happened mid-ingest: batches were acknowledged before it, requests failed by it.
    assert not traffic.unexpected, traffic.unexpected
    assert len(traffic.acked) >= CLIENTS
    assert traffic.unacked and traffic.in_flight_failures + traffic.refused == CLIENTS
    return traffic


def resend(server: Server, key: str, traffic: Traffic) -> list[Sent]:
    """Resend every unacknowledged batch, and the first and last acknowledged batch of each
    client (a client that lost the answer resends; those must be deduplicated)."""
    first: dict[str, Sent] = {}
    last: dict[str, Sent] = {}
    for sent in traffic.acked:
        client = sent.ids[0].split("-")[1]
        first.setdefault(client, sent)
        last[client] = sent
    again = [*first.values(), *(s for s in last.values() if s not in first.values())]
    for sent in [*traffic.unacked, *again]:
        post(server.base, key, sent.body)
    return again


def test_sigkill_mid_ingest_loses_no_acknowledged_event_and_stores_none_twice(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    platform, admin, ingest = bootstrap(data)
    platform.close()

    acknowledged: set[str] = set()  # every id a server answered 2xx for, in any run
    attempted: set[str] = set()
    in_flight_failures = 0
    previous: Traffic | None = None
    resent_acked: list[Sent] = []
    for cycle in range(KILL_CYCLES + 1):
        with Server(data, LOAD_EVERY) as server:
            if previous is not None:
                resent_acked = resend(server, ingest, previous)
                for sent in previous.unacked:
                    acknowledged.update(sent.ids)  # acknowledged now, by this run
            if cycle == KILL_CYCLES:
                status = server.wait_loaded(admin)
                server.stop()
                break
            traffic = run_and_kill(server, ingest, cycle)
        for sent in traffic.acked:
            acknowledged.update(sent.ids)
        for sent in [*traffic.acked, *traffic.unacked]:
            attempted.update(sent.ids)
        in_flight_failures += traffic.in_flight_failures
        previous = traffic
    # At least one kill cut requests the server had started on (not only refused connections).
    assert in_flight_failures > 0

    duplicated = read_store(
        data,
        "SELECT event_id, count(*) FROM (SELECT event_id FROM exposures "
        "UNION ALL SELECT event_id FROM events) GROUP BY event_id HAVING count(*) > 1",
    )
    assert duplicated == []
    exposures = {row[0] for row in read_store(data, "SELECT event_id FROM exposures")}
    tracks = {row[0] for row in read_store(data, "SELECT event_id FROM events")}
    stored = exposures | tracks
    missing = acknowledged - stored
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    # Everything sent was acknowledged by the end (unacknowledged batches were resent), and
    # nothing else is there: the total is the number of distinct acknowledged ids.
    assert acknowledged == attempted
    assert len(exposures) + len(tracks) == len(acknowledged)
    assert stored == acknowledged
    assert all(int(i.rsplit("-", 1)[1]) % 2 == 0 for i in exposures)
    assert all(int(i.rsplit("-", 1)[1]) % 2 == 1 for i in tracks)
    # The last run loaded what the crash left in the spool and dropped the resent copies.
    loaded = status["loaded"]
    assert loaded["failures"] == 0 and loaded["quarantined"] == 0, loaded
    assert loaded["duplicates"] >= BATCH * len(resent_acked)
    assert not (data / "spool" / "quarantine").exists()


# -- the spool on its own ----------------------------------------------------------------------


def line(event_id: str) -> bytes:
    return json.dumps({"event_id": event_id, "type": "track"}).encode() + b"\n"


def test_a_torn_tail_is_cut_on_start_and_complete_lines_are_kept(tmp_path: Path) -> None:
    complete = line("a") + line("b")
    newest = segment_path(tmp_path, 5)
    segment_path(tmp_path, 4).write_bytes(line("older"))
    newest.write_bytes(complete + b'{"event_id": "c", "ty')  # cut mid-write: no newline
    spool = Spool(tmp_path, sync=False)
    try:
        assert newest.read_bytes() == complete
        assert segment_path(tmp_path, 4).read_bytes() == line("older")
        assert [n for n, _ in spool.sealed()] == [4, 5]  # both are ready to load
        assert spool.backlog_bytes == len(complete) + len(line("older"))
        # New writes go to a new segment, after the recovered ones.
        spool.append(line("d")).result(5)
        spool.seal()
        assert [n for n, _ in spool.sealed()] == [4, 5, 6]
        assert segment_path(tmp_path, 6).read_bytes() == line("d")
    finally:
        spool.close()


def test_a_garbage_line_and_everything_after_it_is_cut(tmp_path: Path) -> None:
    newest = segment_path(tmp_path, 1)
    newest.write_bytes(line("a") + b"\x00\x00garbage\n" + line("b") + b"{")
    spool = Spool(tmp_path, sync=False)
    spool.close()
    assert newest.read_bytes() == line("a")


def test_an_intact_segment_is_left_alone(tmp_path: Path) -> None:
    newest = segment_path(tmp_path, 3)
    newest.write_bytes(line("a") + line("b"))
    Spool(tmp_path, sync=False).close()
    assert newest.read_bytes() == line("a") + line("b")


def segment_holding(spool: Spool, data: bytes) -> int:
    """The number of the sealed segment whose content is ``data``."""
    found = [n for n, path in spool.sealed() if path.read_bytes() == data]
    assert len(found) == 1, (data, spool.sealed())
    return found[0]


def test_segment_numbers_never_go_backwards(tmp_path: Path) -> None:
    # An empty spool directory starts at first_segment (the store's loaded_through + 1).
    spool = Spool(tmp_path, first_segment=10, sync=False)
    spool.append(line("a")).result(5)
    spool.seal()
    assert [n for n, _ in spool.sealed()] == [10]
    spool.close()
    # Segments on disk win over a lower first_segment: new writes never reuse a number.
    spool = Spool(tmp_path, first_segment=1, sync=False)
    try:
        spool.append(line("b")).result(5)
        spool.seal()
        assert segment_holding(spool, line("a")) == 10
        b = segment_holding(spool, line("b"))
        assert b > 10
        for number, _ in spool.sealed():
            spool.remove(number)
        assert spool.backlog_bytes == 0
    finally:
        spool.close()
    # A first_segment above what is on disk wins (the store loaded further than the files go).
    spool = Spool(tmp_path, first_segment=b + 30, sync=False)
    try:
        spool.append(line("c")).result(5)
        spool.seal()
        assert segment_holding(spool, line("c")) == b + 30
    finally:
        spool.close()
    # And a restart continues after it, whatever first_segment says.
    spool = Spool(tmp_path, first_segment=1, sync=False)
    try:
        spool.append(line("d")).result(5)
        spool.seal()
        assert segment_holding(spool, line("d")) > b + 30
    finally:
        spool.close()


def test_the_start_up_step_is_retried_while_the_store_is_busy(tmp_path: Path) -> None:
    """A reader holding the store at start-up (the controller's first measurement) must not
    leave the live counters unbuilt: the loader retries the step until the store is free."""
    from typing import cast

    from liftkit.events.loader import Loader
    from liftkit.events.store import EventStore, StoreBusy

    attempts: list[float] = []
    done = threading.Event()

    def rebuild() -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise StoreBusy("a reader holds the store")
        done.set()

    spool = Spool(tmp_path, sync=False)
    loader = Loader(spool, cast(EventStore, object()), interval=0.05, on_start=rebuild)
    loader.start()
    try:
        assert done.wait(5), f"start-up step ran {len(attempts)} times and never succeeded"
        assert loader.stats.busy == 2
    finally:
        loader.stop()
        spool.close()
