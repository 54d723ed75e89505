"""The loader: a thread that moves sealed spool segments into the event store.

Every ``interval`` seconds it seals the active segment and loads each sealed one in order; a
segment is deleted only after the store committed it. A busy store (another process holds
``events.duckdb``) is retried with backoff while the spool keeps the events. A segment that
fails for any other reason three times is moved to ``spool/quarantine/`` and logged, so one bad
file cannot stop the pipeline and nothing is deleted unread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from liftkit.events.spool import Spool
from liftkit.events.store import EventStore, LoadResult, StoreBusy

log = logging.getLogger("liftkit.events")
QUARANTINE_AFTER = 3


@dataclass
class LoaderStats:
    """Totals since the process started (read by /metrics)."""

    loads: int = 0
    exposures: int = 0
    events: int = 0
    duplicates: int = 0
    busy: int = 0
    failures: int = 0
    quarantined: int = 0
    load_seconds: float = 0.0
    last_error: str | None = None
    failed_attempts: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The totals for ``/api/v1/events/status`` (without the per-segment retry book)."""
        totals = asdict(self)
        del totals["failed_attempts"]
        return totals

    def add(self, result: LoadResult, seconds: float) -> None:
        self.loads += 1
        self.exposures += result.exposures
        self.events += result.events
        self.duplicates += result.duplicates
        self.load_seconds += seconds


class Loader:
    def __init__(
        self,
        spool: Spool,
        store: EventStore,
        *,
        interval: float = 1.0,
        on_start: Callable[[], None] | None = None,
        on_loaded: Callable[[], None] | None = None,
    ) -> None:
        self.spool = spool
        self.store = store
        self.interval = interval
        self.stats = LoaderStats()
        self._on_start = on_start
        self._announced = 0
        #: Called after segments with new rows were loaded (the controller wakes up on it).
        self._on_loaded = on_loaded
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._loading = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="liftkit-loader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Load what is sealed so far (best effort within ``timeout``) and stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def flush(self, timeout: float = 30.0) -> bool:
        """Seal and load everything accepted so far; True when the spool is empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.spool.seal()
            if self.load_sealed() and not self.spool.sealed():
                return True
            time.sleep(0.05)
        return False

    def _run(self) -> None:
        self.load_sealed()
        if self._on_start is not None:
            self._start_up(self._on_start)
        delay = self.interval
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            try:
                self.spool.seal()
            except Exception:
                log.exception("events: could not seal the spool segment")
            delay = self.interval if self.load_sealed() else min(max(delay * 2, 0.5), 30.0)
        self.load_sealed()

    def _start_up(self, step: Callable[[], object]) -> None:
        """Run the start-up step, retrying while a reader (the controller measuring at start-up)
        holds the store: giving up would leave the live counters empty until new events."""
        delay = 0.05
        while not self._stop.is_set():
            try:
                step()
                return
            except StoreBusy:
                self.stats.busy += 1
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
            except Exception:
                log.exception("events: start-up step failed")
                return

    def load_sealed(self) -> bool:
        """Load every sealed segment; False if the store was busy or a load failed."""
        with self._loading:  # one at a time: the thread, or flush() from a test or an import
            try:
                return self._load_sealed()
            finally:
                if self._on_loaded is not None and self.stats.loads != self._announced:
                    self._announced = self.stats.loads
                    try:
                        self._on_loaded()
                    except Exception:
                        log.exception("events: a load listener failed")

    def _load_sealed(self) -> bool:
        for number, path in self.spool.sealed():
            start = time.perf_counter()
            try:
                result = self.store.load(path, number, spool=self.spool.id)
            except StoreBusy as error:
                self.stats.busy += 1
                self.stats.last_error = str(error)
                return False
            except Exception as error:
                self._failed(number, error)
                return False
            self.stats.add(result, time.perf_counter() - start)
            self.stats.failed_attempts.pop(number, None)
            self.spool.remove(number)
        return True

    def _failed(self, number: int, error: Exception) -> None:
        self.stats.failures += 1
        self.stats.last_error = f"{type(error).__name__}: {error}"
        attempts = self.stats.failed_attempts[number] = (
            self.stats.failed_attempts.get(number, 0) + 1
        )
        log.error("events: loading spool segment %d failed (%d): %s", number, attempts, error)
        if attempts >= QUARANTINE_AFTER:
            moved = self.spool.quarantine(number)
            self.stats.quarantined += 1
            self.stats.failed_attempts.pop(number, None)
            log.error(
                "events: moved spool segment %d to %s; load it with `liftkit events import`",
                number,
                moved,
            )
