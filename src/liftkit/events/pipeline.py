"""The write side of events as one object: spool, loader, store and live counters.

``Pipeline`` is built from ``Settings`` by the app (and by ``liftkit events import`` for the
store alone). ``write`` returns once the events are durable; the loader moves them into the
store in the background; the live counters are updated as soon as a write is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from liftkit.events.live import LiveCounters, LiveCounts, Split, unit
from liftkit.events.loader import Loader
from liftkit.events.schema import Batch, ExposureEvent, naive_utc, to_lines
from liftkit.events.spool import Overloaded, Spool, SpoolLocked, spool_id
from liftkit.events.store import EventStore
from liftkit.registry import Registry
from liftkit.registry.experiments import Experiment
from liftkit.settings import Settings

log = logging.getLogger("liftkit.events")


def open_store(settings: Settings, *, threads: int | None = None) -> EventStore:
    """The store ``settings.events_url`` names (the embedded DuckDB file by default)."""
    url = settings.events_url
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from liftkit.events.postgres_store import PostgresStore

        store: EventStore = PostgresStore(url, dedup_hours=settings.dedup_hours)
        return store
    if url and not url.startswith("duckdb:///"):
        raise ValueError(f"events_url must be duckdb:///PATH or postgresql://…, not {url!r}")
    path = Path(url.removeprefix("duckdb:///")) if url else settings.data_dir / "events.duckdb"
    from liftkit.events.duckdb_store import DuckDBStore

    # One DuckDB thread when loading beside the server: a second one only takes the core the
    # request handlers need (measured: loads take as long, ingest +10%).
    return DuckDBStore(path, dedup_hours=settings.dedup_hours, threads=threads)


@dataclass(frozen=True, slots=True)
class Prepared:
    lines: bytes
    exposures: Sequence[tuple[str, str, int, datetime | None]]


class Pipeline:
    """Built with the app, started by its lifespan (which opens the store and the spool)."""

    spool: Spool
    loader: Loader

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        store: EventStore | None = None,
        sync: bool = True,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self._store = store
        self._sync = sync
        self.counters = LiveCounters(settings.live_max_units)
        self.started = False
        self.not_running = "the event pipeline is not running (starting or shutting down)"
        #: Called (on the loader's thread) after new events reached the store.
        self.on_loaded: list[Callable[[], None]] = []

    @property
    def store(self) -> EventStore:
        if self._store is None:
            self._store = open_store(self.settings, threads=1)
        return self._store

    def start(self) -> None:
        """Open the store and the spool (recovering a crashed run's tail) and start loading."""
        settings = self.settings
        directory = settings.data_dir / "spool"
        try:
            self.spool = Spool(
                directory,
                first_segment=self.store.loaded_through(spool_id(directory)) + 1,
                max_pending_bytes=settings.spool_max_pending_mb << 20,
                sync=self._sync,
            )
        except SpoolLocked as error:
            # A second app on the same data directory (another server process, or a test's
            # second app): it serves everything but events, which it answers with 503.
            self.not_running = f"{error}; this server does not take events"
            log.warning("events: %s", self.not_running)
            return
        self.loader = Loader(
            self.spool,
            self.store,
            interval=settings.events_load_seconds,
            on_start=self.rebuild,
            on_loaded=self._loaded,
        )
        self.loader.start()
        self.started = True

    def _loaded(self) -> None:
        for listener in list(self.on_loaded):
            listener()

    def stop(self) -> None:
        """Finish pending writes, load what the spool holds, close the store."""
        if not self.started:
            return
        self.started = False
        self.spool.close()
        self.loader.stop()
        self.store.close()

    def flush(self, timeout: float = 30.0) -> bool:
        """Load everything accepted so far into the store now (tests, shutdown, imports)."""
        return self.loader.flush(timeout)

    def status(self) -> dict[str, Any]:
        stats = self.loader.stats if self.started else None
        return {
            "store": self.store.description,
            "running": self.started,
            "spool_backlog_bytes": self.spool.backlog_bytes if self.started else 0,
            "loaded": None if stats is None else stats.as_dict(),
            "live_experiments": len(self.counters.experiments()),
        }

    def overloaded(self) -> str | None:
        """Why new events should wait (answered 503 with Retry-After), or None."""
        if not self.started:
            return self.not_running
        limit = self.settings.spool_max_mb << 20
        if self.spool.backlog_bytes > limit:
            return (
                f"{self.spool.backlog_bytes >> 20} MB of events wait to be loaded into "
                f"{self.store.description} (limit {self.settings.spool_max_mb} MB)"
            )
        return None

    @staticmethod
    def prepare(batch: Batch, received_at: datetime) -> Prepared:
        """The spool lines and the counters' input of a batch (pure: run it off the loop)."""
        exposures = [
            (e.experiment_key, unit(e.hash_attribute, e.hash_value), e.variation_id, e.timestamp)
            for e in batch.events
            if isinstance(e, ExposureEvent)
        ]
        return Prepared(to_lines(batch.events, received_at), exposures)

    async def write(self, prepared: Prepared) -> None:
        """Make the events durable; raises ``Overloaded`` or ``OSError`` when it cannot."""
        await asyncio.wrap_future(self.spool.append(prepared.lines))

    def count(self, prepared: Prepared) -> None:
        """Add durable exposures to the live counters."""
        self.counters.observe(prepared.exposures)

    def split_of(self, experiment: str) -> Split | None:
        found = self.registry.find("experiments", experiment)
        return _split(found) if isinstance(found, Experiment) else None

    def live(self, split_of: Callable[[str], Split | None] | None = None) -> list[LiveCounts]:
        return self.counters.snapshot(split_of or self.split_of)

    def rebuild(self) -> None:
        """Count the exposures already stored for running experiments (after a restart)."""
        for experiment in self.registry.all("experiments"):
            if experiment.status != "running":
                continue
            since = _split(experiment).phase_started_at
            self.counters.set_phase(experiment.key, since)
            rows = self.store.exposure_units(experiment.key, since)
            self.counters.observe((experiment.key, u, v, None) for u, v in rows)
            log.info("events: %d units of %s counted from the store", len(rows), experiment.key)


def _split(experiment: Experiment) -> Split:
    """What the live counts of ``experiment`` are checked against: its current phase's split."""
    phase = experiment.current_phase()
    started = None if phase is None else naive_utc(phase.started_at)
    return Split(tuple(experiment.weights()), started)


__all__ = ["Overloaded", "Pipeline", "open_store"]
