"""Where accepted events end up: the tables, declared once, and the ``EventStore`` protocol.

Two stores implement the protocol: ``DuckDBStore`` (the embedded default, ``events.duckdb`` in
the data directory) and ``PostgresStore`` (a production sink, loaded with ``COPY``). Both take
*segments*: files of normalised NDJSON (``schema.to_lines``) written by the spool or by
``liftkit events import``. A load is one transaction that

- inserts the segment's exposures and track events into ``exposures`` and ``events``,
- skips every event whose ``event_id`` is already stored (or repeats within the segment),
- and, for spool segments, records the spool's id and segment number in ``liftkit_loads``,

so loading the same segment twice (after a crash between the commit and deleting the file)
stores nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

Kind = Literal["text", "timestamp", "int", "float", "json"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    nullable: bool
    help: str


_COMMON = (
    Column("event_id", "text", False, "the sender's unique id of the event (deduplicated on)"),
    Column("timestamp", "timestamp", False, "when it happened, UTC (the sender's clock)"),
    Column("received_at", "timestamp", False, "when liftkit accepted it, UTC"),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "exposures": (
        *_COMMON,
        Column("experiment_key", "text", False, "the experiment's key in the registry"),
        Column("variation_id", "int", False, "index of the variation the unit saw (0 = control)"),
        Column("variation_key", "text", True, "the variation's key, when the SDK knew it"),
        Column("feature_key", "text", True, "the feature whose rule ran the experiment"),
        Column("hash_attribute", "text", False, "the attribute the unit was assigned by"),
        Column("hash_value", "text", False, "the unit: that attribute's value"),
        Column("attributes", "json", False, "the user attributes the SDK evaluated with"),
    ),
    "events": (
        *_COMMON,
        Column("name", "text", False, "what happened, e.g. purchase"),
        Column("value", "float", True, "a number that goes with it, e.g. revenue"),
        Column("user_id", "text", True, "the logged-in user's id"),
        Column("anonymous_id", "text", True, "a device or cookie id"),
        Column("properties", "json", False, "anything else the sender attached"),
    ),
}
#: Which event ``type`` goes into which table.
TABLE_OF_TYPE = {"exposure": "exposures", "track": "events"}


@dataclass(frozen=True, slots=True)
class LoadResult:
    exposures: int
    events: int
    duplicates: int

    @property
    def inserted(self) -> int:
        return self.exposures + self.events


class StoreBusy(Exception):
    """The store is locked by another process (e.g. a notebook holding ``events.duckdb``)."""


class EventStore(Protocol):
    """What the loader, the importer and the live counters need from a store."""

    description: str

    def load(self, path: Path, segment: int | None = None, *, spool: str = "") -> LoadResult:
        """Insert a segment file's events, skipping stored ``event_id``s, in one transaction.

        With ``segment``, also record it as loaded from ``spool`` (each spool directory has its
        own id, so several servers can load into one store); a segment at or below
        ``loaded_through(spool)`` is skipped entirely. Raises ``StoreBusy`` when the store is
        locked elsewhere or unreachable for now.
        """
        ...

    def loaded_through(self, spool: str = "") -> int:
        """The highest segment number of ``spool`` loaded so far (0 when none)."""
        ...

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        ...

    def exposure_units(self, experiment: str, since: datetime | None) -> list[tuple[str, int]]:
        """``(unit, variation_id)`` of every distinct exposure to ``experiment`` from ``since``
        on, where unit is ``hash_attribute + "\\x1f" + hash_value`` (``live.unit``)."""
        ...

    def close(self) -> None: ...


def markdown_table(table: str) -> str:
    """The columns of ``table`` as a Markdown table (docs/events.md is kept in step by a test)."""
    rows = ["| column | type | null | meaning |", "|---|---|---|---|"]
    for column in TABLES[table]:
        null = "yes" if column.nullable else "no"
        rows.append(f"| `{column.name}` | {column.kind} | {null} | {column.help} |")
    return "\n".join(rows)
