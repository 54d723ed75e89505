"""The spool: append-only segment files that make an accepted event durable before the 2xx.

Request handlers hand their normalised lines to ``Spool.append`` and wait for the returned
future. One writer thread takes everything pending, writes it with one ``write`` and makes it
durable with one ``fdatasync`` (group commit: a thousand concurrent requests cost one sync),
then resolves the futures. Only then does the handler answer 2xx, so an acknowledged event
survives ``kill -9`` and power loss.

The loader (``liftkit.events.loader``) seals the active segment every second or so and loads
sealed segments into the event store, then deletes them. Segments are numbered; the store
records the highest number it loaded in the same transaction as the rows, so a segment loaded
just before a crash is not loaded twice.

On start, an unfinished tail of the newest segment (bytes written but never synced, cut by a
crash) is truncated: those events were never acknowledged.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from concurrent.futures import Future
from pathlib import Path

log = logging.getLogger("liftkit.events")

SUFFIX = ".ndjson"


class SpoolLocked(Exception):
    """Another process (or another app in this one) owns this spool directory."""


def spool_id(directory: Path) -> str:
    """The directory's permanent id (created on first use): stores key loaded segments by it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ID"
    if not path.exists():
        tmp = directory / "ID.tmp"
        tmp.write_text(uuid.uuid4().hex)
        os.replace(tmp, path)
    return path.read_text().strip()


def lock(directory: Path) -> int:
    """Take the spool's exclusive lock (a file descriptor to close to release it)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolLocked(f"{directory} is in use by another liftkit process") from None
    return fd


class Overloaded(Exception):
    """More bytes are waiting for the disk than the spool accepts; retry after a moment."""


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:016d}{SUFFIX}"


def _numbers(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())


def _valid_prefix(path: Path) -> int:
    """Length of the leading run of complete, parseable lines (what was written in full)."""
    data = path.read_bytes()
    end = 0
    while True:
        newline = data.find(b"\n", end)
        if newline < 0:
            return end
        try:
            json.loads(data[end:newline])
        except ValueError:
            return end
        end = newline + 1


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        first_segment: int = 1,
        max_pending_bytes: int = 64 << 20,
        max_segment_bytes: int = 64 << 20,
        sync: bool = True,
    ) -> None:
        self.directory = directory
        self._lock_fd = lock(directory)  # first: recovery must not race a live writer
        self.id = spool_id(directory)
        self.max_pending_bytes = max_pending_bytes
        self.max_segment_bytes = max_segment_bytes
        self._sync = sync
        directory.mkdir(parents=True, exist_ok=True)
        existing = _numbers(directory)
        if existing:
            newest = segment_path(directory, existing[-1])
            keep = _valid_prefix(newest)
            if keep < newest.stat().st_size:
                log.warning(
                    "spool: cut %d unacknowledged bytes from %s",
                    newest.stat().st_size - keep,
                    newest.name,
                )
                with newest.open("r+b") as f:
                    f.truncate(keep)
                    os.fsync(f.fileno())
        # Never reuse a number: the store remembers the highest one it loaded.
        self._active = max([first_segment - 1, *existing]) + 1
        self._fd = self._open(self._active)
        self._size = 0
        self._sealed_bytes = sum(segment_path(directory, n).stat().st_size for n in existing)
        self._cond = threading.Condition()
        self._pending: list[tuple[bytes, Future[None]]] = []
        self._pending_bytes = 0
        self._seal_waiters: list[Future[None]] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="liftkit-spool", daemon=True)
        self._thread.start()

    def _open(self, number: int) -> int:
        fd = os.open(
            segment_path(self.directory, number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        if self._sync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the new file's name is durable too
            finally:
                os.close(dir_fd)
        return fd

    @property
    def backlog_bytes(self) -> int:
        """Bytes written but not yet loaded (sealed segments and the active one)."""
        return self._sealed_bytes + self._size

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def append(self, data: bytes) -> Future[None]:
        """Queue ``data`` (whole lines); the future resolves once it is on disk."""
        done: Future[None] = Future()
        if not data:
            done.set_result(None)
            return done
        with self._cond:
            if self._closing:
                raise Overloaded("the spool is shutting down")
            if self._pending_bytes and self._pending_bytes + len(data) > self.max_pending_bytes:
                raise Overloaded(f"{self._pending_bytes} bytes are waiting for the disk")
            self._pending.append((data, done))
            self._pending_bytes += len(data)
            self._cond.notify()
        return done

    def seal(self, timeout: float = 30.0) -> None:
        """Close the active segment (if it holds anything) so the loader can take it."""
        done: Future[None] = Future()
        with self._cond:
            if self._closing:
                return
            self._seal_waiters.append(done)
            self._cond.notify()
        done.result(timeout)

    def sealed(self) -> list[tuple[int, Path]]:
        """Segments ready to load, oldest first."""
        return [
            (n, segment_path(self.directory, n))
            for n in _numbers(self.directory)
            if n < self._active
        ]

    def remove(self, number: int) -> None:
        path = segment_path(self.directory, number)
        size = path.stat().st_size
        path.unlink()
        with self._cond:
            self._sealed_bytes -= size

    def quarantine(self, number: int) -> Path:
        """Move a segment the store cannot load aside, out of the loader's way."""
        path = segment_path(self.directory, number)
        target = self.directory / "quarantine" / path.name
        target.parent.mkdir(exist_ok=True)
        size = path.stat().st_size
        path.rename(target)
        with self._cond:
            self._sealed_bytes -= size
        return target

    def close(self) -> None:
        """Write what is pending, seal the active segment (so it can be loaded) and stop."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        os.close(self._fd)
        os.close(self._lock_fd)
        active = segment_path(self.directory, self._active)
        with self._cond:
            if self._size:
                self._sealed_bytes += self._size
                self._size = 0
                self._active += 1  # sealed; no new file is opened
            else:
                active.unlink(missing_ok=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._pending or self._seal_waiters or self._closing):
                    self._cond.wait()
                batch, self._pending, self._pending_bytes = self._pending, [], 0
                seal_waiters, self._seal_waiters = self._seal_waiters, []
                closing = self._closing
            if batch:
                self._write(batch)
            if seal_waiters or self._size >= self.max_segment_bytes:
                self._rotate()
                for waiter in seal_waiters:
                    waiter.set_result(None)
            if closing:
                with self._cond:
                    if not self._pending:
                        return

    def _write(self, batch: list[tuple[bytes, Future[None]]]) -> None:
        data = b"".join(chunk for chunk, _ in batch)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self._sync:
                os.fdatasync(self._fd)
        except OSError as error:
            log.error("spool: could not write %d bytes: %s", len(data), error)
            os.ftruncate(self._fd, self._size)  # no torn line left behind
            for _, done in batch:
                done.set_exception(error)
            return
        self._size += len(data)
        for _, done in batch:
            done.set_result(None)

    def _rotate(self) -> None:
        if self._size == 0:
            return
        os.close(self._fd)
        with self._cond:
            self._sealed_bytes += self._size
        self._active += 1
        self._fd = self._open(self._active)
        self._size = 0
