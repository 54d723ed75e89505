"""Events: ingest (validate, deduplicate, durable append), the event store, live counters.

Public API::

    Pipeline            spool + loader + store + live counters, started with the server
    open_store          the EventStore that Settings.events_url names
    parse_batch, Limits, Batch, Rejection, BadBody
    ExposureEvent, TrackEvent, EVENTS   the event shapes (pydantic), declared once
    TABLES              the store's tables, declared once (docs/events.md)
"""

from liftkit.events.live import LiveCounters, LiveCounts, Split
from liftkit.events.pipeline import Pipeline, open_store
from liftkit.events.schema import (
    EVENTS,
    BadBody,
    Batch,
    ExposureEvent,
    Limits,
    Rejection,
    TrackEvent,
    parse_batch,
    to_lines,
)
from liftkit.events.spool import Overloaded
from liftkit.events.store import TABLES, EventStore, LoadResult, StoreBusy

__all__ = [
    "EVENTS",
    "TABLES",
    "BadBody",
    "Batch",
    "EventStore",
    "ExposureEvent",
    "Limits",
    "LiveCounters",
    "LiveCounts",
    "LoadResult",
    "Overloaded",
    "Pipeline",
    "Rejection",
    "Split",
    "StoreBusy",
    "TrackEvent",
    "open_store",
    "parse_batch",
    "to_lines",
]
