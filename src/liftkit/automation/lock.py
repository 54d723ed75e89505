"""Leader election: one automation controller acting at a time.

Several liftkit processes (server workers, CLI runs) may share one registry database. If each
ran the playbook controller, a step could be applied twice, so ``LeaderLock`` elects one.

* PostgreSQL: a session-level advisory lock on a dedicated connection. The server frees it as
  soon as that connection ends, so a crashed holder never blocks the others.
* SQLite has no lock that outlives a transaction (and holding the write transaction would stop
  every other writer), so the leader holds a lease row in ``leases``, taken in one
  ``BEGIN IMMEDIATE`` transaction. The holder renews it by calling ``acquire()`` again; one that
  stops renewing (crashed or hung) loses it once ``lease_seconds`` have passed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from liftkit.registry.tables import leases


def _utcnow() -> datetime:
    return datetime.now(UTC)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` (first 8 bytes of sha256)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LeaderLock:
    """Exactly one holder of ``name`` at a time across processes sharing the registry database.

    ``acquire()`` never blocks on another holder: it returns whether this instance holds the lock
    afterwards. On SQLite the lock is a lease: call ``acquire()`` again well within
    ``lease_seconds`` (say every third of it) to keep it, and stop acting as leader as soon as it
    returns False or ``held`` turns False. On PostgreSQL ``lease_seconds`` and ``clock`` are
    unused; ``acquire()`` on a held lock checks that its connection is still alive.
    """

    def __init__(
        self,
        engine: Engine,
        name: str = "controller",
        *,
        holder: str | None = None,
        lease_seconds: float = 30.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._postgres = engine.dialect.name == "postgresql"
        self._mutex = threading.Lock()
        self._held = False
        self._expires_at: datetime | None = None  # SQLite: end of our lease
        self._conn: Connection | None = None  # PostgreSQL: the session holding the lock

    @property
    def held(self) -> bool:
        """Whether this instance holds the lock (on SQLite: and its lease has not run out)."""
        if not self._held:
            return False
        return self._postgres or (self._expires_at is not None and self._now() < self._expires_at)

    def acquire(self) -> bool:
        """Take or renew the lock without waiting for another holder; True when held after."""
        with self._mutex:
            return self._acquire_postgres() if self._postgres else self._acquire_sqlite()

    def release(self) -> None:
        """Give the lock up if held (idempotent)."""
        with self._mutex:
            if self._postgres:
                self._release_postgres()
            elif self._held:
                self._held = False  # before the row goes: never two instances reporting held
                with self.engine.execution_options(immediate=True).begin() as conn:
                    conn.execute(
                        delete(leases).where(
                            leases.c.name == self.name, leases.c.holder == self.holder
                        )
                    )

    def __enter__(self) -> LeaderLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _acquire_sqlite(self) -> bool:
        with self.engine.execution_options(immediate=True).begin() as conn:
            now = self._now()  # read under the write lock: BEGIN IMMEDIATE may have waited
            row = conn.execute(
                select(leases.c.holder, leases.c.expires_at).where(leases.c.name == self.name)
            ).first()
            if row is not None and row.holder != self.holder and row.expires_at > now:
                self._held = False
                return False
            expires_at = now + timedelta(seconds=self.lease_seconds)
            values = {"holder": self.holder, "expires_at": expires_at}
            if row is None:
                conn.execute(insert(leases).values(name=self.name, **values))
            else:
                conn.execute(update(leases).where(leases.c.name == self.name).values(**values))
        self._expires_at = expires_at
        self._held = True
        return True

    def _acquire_postgres(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except DBAPIError:  # the session died, and the lock with it
                self._drop_connection(discard=True)
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            key = advisory_key(self.name)
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        except BaseException:
            conn.invalidate()  # the lock may have been taken: never return it to the pool
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        self._held = True
        return True

    def _release_postgres(self) -> None:
        if self._conn is None:
            return
        self._held = False
        try:
            self._conn.execute(
                text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(self.name)}
            )
            failed = False
        except DBAPIError:
            failed = True  # then discarding the session frees the lock
        self._drop_connection(discard=failed)

    def _drop_connection(self, *, discard: bool) -> None:
        """Close the lock's connection; ``discard`` it rather than pool it after a failure."""
        self._held = False
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if discard and not conn.invalidated:
            conn.invalidate()
        conn.close()
