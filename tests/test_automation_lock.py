"""LeaderLock: one controller at a time, across threads and processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from liftkit.automation.lock import LeaderLock, advisory_key
from liftkit.registry.database import create
from liftkit.registry.tables import leases

MakeLock = Callable[..., LeaderLock]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def make_lock(engine: Engine) -> Iterator[MakeLock]:
    """LeaderLocks on ``engine``, all released at teardown (their connections closed)."""
    made: list[LeaderLock] = []

    def make(**kwargs: object) -> LeaderLock:
        lock = LeaderLock(engine, **kwargs)  # type: ignore[arg-type]
        made.append(lock)
        return lock

    yield make
    for lock in made:
        lock.release()


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_one_holder_then_the_next(make_lock: MakeLock) -> None:
    first, second = make_lock(holder="first"), make_lock(holder="second")
    assert first.holder != make_lock().holder != make_lock().holder
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    assert first.acquire() and first.held  # renewal
    first.release()
    first.release()  # idempotent
    assert not first.held
    assert second.acquire() and second.held
    assert second.acquire()
    assert not first.acquire()
    with make_lock(holder="third") as third:
        assert not third.held
    second.release()
    with make_lock(holder="fourth") as fourth:
        assert fourth.held
    assert not fourth.held
    assert first.acquire()


CHILD = """
import sys, time
from pathlib import Path
from liftkit.automation.lock import LeaderLock
from liftkit.registry.database import create

engine = create(sys.argv[1], migrate=False)
lock = LeaderLock(engine, holder="child", lease_seconds=1.0)
assert lock.acquire()
Path(sys.argv[2]).touch()
while lock.acquire():  # renew well within the lease until killed
    time.sleep(0.2)
sys.exit("lost the lock")
"""


def test_a_killed_process_loses_the_lock(
    database_url: str, engine: Engine, make_lock: MakeLock, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not wait_for(lambda: ready.exists() or child.poll() is not None, 15):
            pytest.fail("the child process did not take the lock in time")
        assert child.poll() is None, child.communicate()[1].decode()
        ours = make_lock(holder="parent")
        assert not ours.acquire()
        time.sleep(1.2)  # longer than the child's lease: it renews, so it still holds it
        assert not ours.acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    assert wait_for(ours.acquire, 5)
    assert ours.held


def test_sqlite_expired_lease_is_taken_over(tmp_path: Path) -> None:
    engine = create(f"sqlite:///{tmp_path / 'registry.db'}")
    now = [datetime(2030, 1, 1, tzinfo=UTC)]

    def clock() -> datetime:
        return now[0]

    try:
        old = LeaderLock(engine, holder="old", lease_seconds=30, clock=clock)
        new = LeaderLock(engine, holder="new", lease_seconds=30, clock=clock)
        assert old.acquire()
        now[0] += timedelta(seconds=29)
        assert not new.acquire() and old.held
        now[0] += timedelta(seconds=1)  # expires_at <= now: the lease has run out
        assert not old.held
        assert new.acquire() and new.held
        assert not old.acquire() and not old.held
        old.release()  # not ours any more: leaves the new holder's row alone
        with engine.connect() as conn:
            row = conn.execute(select(leases.c.holder, leases.c.expires_at)).one()
        assert row.holder == "new"
        assert row.expires_at == now[0] + timedelta(seconds=30)
        new.release()
        with engine.connect() as conn:
            assert conn.execute(select(leases)).first() is None
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_notices_a_dead_connection(postgres_url: str) -> None:
    engine = create(postgres_url)
    ours = LeaderLock(engine, holder="ours")
    other = LeaderLock(engine, holder="other")
    key = advisory_key("controller")

    def terminate_holder() -> None:
        with engine.begin() as conn:
            pids = (
                conn.execute(
                    text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND classid = :high AND objid = :low AND objsubid = 1 AND database ="
                        " (SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
                )
                .scalars()
                .all()
            )
            assert len(pids) == 1
            conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pids[0]})

    try:
        assert ours.acquire()
        terminate_holder()
        assert ours.acquire() and ours.held  # noticed, reconnected and took it again
        assert not other.acquire()

        terminate_holder()
        assert other.acquire()  # the server freed it with the session
        assert not ours.acquire() and not ours.held
        other.release()
        assert ours.acquire()
    finally:
        ours.release()
        other.release()
        engine.dispose()


def test_many_contenders_never_overlap(make_lock: MakeLock) -> None:
    locks = [make_lock(holder=f"worker-{i}") for i in range(5)]
    inside = 0
    guard = threading.Lock()
    overlaps: list[str] = []
    stop = threading.Event()
    wins = [0] * len(locks)

    def contend(index: int) -> None:
        nonlocal inside
        lock = locks[index]
        for round_ in range(40):
            if lock.acquire():
                with guard:
                    inside += 1
                    if inside > 1:
                        overlaps.append(f"{lock.holder} round {round_}")
                wins[index] += 1
                time.sleep(0.001)
                with guard:
                    inside -= 1
                if round_ % 3:
                    lock.release()

    def sample() -> None:
        for _ in range(200):
            if stop.is_set():
                return
            holders = [lock.holder for lock in locks if lock.held]
            if len(holders) > 1:
                overlaps.append(f"held by {holders}")
            time.sleep(0.001)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(locks))]
    sampler = threading.Thread(target=sample)
    for thread in [*threads, sampler]:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    sampler.join()
    assert overlaps == []
    assert sum(wins) > 0
