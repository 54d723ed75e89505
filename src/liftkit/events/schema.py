"""The wire shape of events, declared once, and the parser that turns a request body into them.

Two kinds of event arrive at ``POST /api/v1/events`` (and through ``liftkit events import``):

- ``exposure``: a unit (``hash_attribute`` = ``hash_value``) was shown ``variation_id`` of
  ``experiment_key``; the SDK's exposure logger sends these.
- ``track``: something a user did (``name``, optional numeric ``value``), for metrics.

Validation is per event: a batch with one bad event keeps the others, and each rejection
names its index, field and reason. Timestamps are the event's own (late events are attributed
by them, not by arrival) but may not lie further in the future than the clock-skew limit.
Accepted events are normalised (UTC, defaults filled in) into one NDJSON line each, the form
the spool and the stores read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id = Field(description="unique per event; a resent event keeps its id")
    timestamp: datetime = Field(
        description="when it happened: ISO 8601 (UTC unless an offset is given) or Unix time"
    )


class ExposureEvent(_Event):
    """A unit saw a variation of an experiment (what the SDK's exposure logger sends)."""

    type: Literal["exposure"]
    experiment_key: Name
    variation_id: int = Field(ge=0, le=1000, description="index of the variation")
    variation_key: str | None = None
    feature_key: str | None = None
    hash_attribute: Name = Field("id", description="the attribute the unit was hashed on")
    hash_value: Id = Field(description="the unit: that attribute's value")
    attributes: dict[str, Any] = Field(default_factory=dict)


class TrackEvent(_Event):
    """Something a user did, for metrics: a name, an optional value, the user's identifiers."""

    type: Literal["track"]
    name: Name
    value: float | None = Field(None, allow_inf_nan=False)
    user_id: Id | None = None
    anonymous_id: Id | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _identified(self) -> TrackEvent:
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError("needs user_id or anonymous_id")
        return self


Event = Annotated[ExposureEvent | TrackEvent, Field(discriminator="type")]
EVENT = TypeAdapter(Event)
EVENTS = TypeAdapter(list[Event])


@dataclass(frozen=True, slots=True)
class Limits:
    """What a batch may hold, fixed at the moment it arrived (``now`` is naive UTC)."""

    now: datetime
    max_future_seconds: float = 300.0
    max_age_days: int | None = None
    max_events: int = 10_000
    # The bounds, computed once per batch, naive and aware (events carry either).
    latest: datetime = field(init=False)
    earliest: datetime | None = field(init=False)
    _latest_aware: datetime = field(init=False)
    _earliest_aware: datetime | None = field(init=False)

    def __post_init__(self) -> None:
        latest = self.now + timedelta(seconds=self.max_future_seconds)
        earliest = (
            None if self.max_age_days is None else self.now - timedelta(days=self.max_age_days)
        )
        object.__setattr__(self, "latest", latest)
        object.__setattr__(self, "earliest", earliest)
        object.__setattr__(self, "_latest_aware", latest.replace(tzinfo=UTC))
        aware = None if earliest is None else earliest.replace(tzinfo=UTC)
        object.__setattr__(self, "_earliest_aware", aware)

    def problem(self, timestamp: datetime) -> str | None:
        """Why ``timestamp`` is refused (clock skew, or too old for live ingest), or None."""
        aware = timestamp.tzinfo is not None
        if timestamp > (self._latest_aware if aware else self.latest):
            ahead = (naive_utc(timestamp) - self.now).total_seconds()
            return (
                f"is {ahead:.0f} s in the future (limit {self.max_future_seconds:.0f} s); "
                "check the sending device's clock"
            )
        earliest = self._earliest_aware if aware else self.earliest
        if earliest is not None and timestamp < earliest:
            return (
                f"is older than the {self.max_age_days}-day limit for live ingest; "
                "load history with `liftkit events import`"
            )
        return None


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass(slots=True)
class Batch:
    """The outcome of parsing one body: the valid events and why each other one was refused."""

    events: list[ExposureEvent | TrackEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.events) + len(self.rejected)


class BadBody(ValueError):
    """The body as a whole cannot be read as events (answered 400, or 413 when ``too_large``)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def rejections(index: int, error: ValidationError, offset: int = 0) -> list[Rejection]:
    """One rejection per field of an event (loc without the list index and the union tag)."""
    out: list[Rejection] = []
    for detail in error.errors(include_url=False, include_input=False):
        loc = list(detail["loc"])[offset:]
        if detail["type"] in ("union_tag_not_found", "union_tag_invalid"):
            out.append(Rejection(index, "type", "must be 'exposure' or 'track'"))
            continue
        if loc and loc[0] in ("exposure", "track"):
            loc = loc[1:]
        name = ".".join(str(part) for part in loc) or "(event)"
        message = str(detail["msg"]).removeprefix("Value error, ")
        if detail["type"] in ("model_type", "model_attributes_type"):
            message = "must be a JSON object"
        out.append(Rejection(index, name, message))
    return out


def _add(batch: Batch, index: int, item: Any, limits: Limits, *, raw: bool) -> None:
    try:
        event = EVENT.validate_json(item) if raw else EVENT.validate_python(item)
    except ValidationError as error:
        if raw and error.errors()[0]["type"] == "json_invalid":
            batch.rejected.append(Rejection(index, "(line)", "not valid JSON"))
        else:
            batch.rejected.extend(rejections(index, error))
        return
    problem = limits.problem(event.timestamp)
    if problem is None:
        batch.events.append(event)
    else:
        batch.rejected.append(Rejection(index, "timestamp", problem))


def parse_batch(body: bytes, limits: Limits, *, ndjson: bool = False) -> Batch:
    """Validate a JSON array of events or NDJSON (one event per line; also a single object).

    Raises ``BadBody`` when the body is not events at all, or holds more than
    ``limits.max_events`` of them.
    """
    start = body.lstrip()[:1]
    batch = Batch()
    if start == b"[" and not ndjson:
        try:
            events = EVENTS.validate_json(body)
        except ValidationError as error:
            first = error.errors()[0]
            if first["type"] == "json_invalid":
                raise BadBody(f"body is not valid JSON: {first['msg']}") from None
            items = json.loads(body)
            _check_length(len(items), limits)
            for index, item in enumerate(items):
                _add(batch, index, item, limits, raw=False)
            return batch
        _check_length(len(events), limits)
        problem = limits.problem
        for index, event in enumerate(events):  # the common case: one cheap loop, no calls
            reason = problem(event.timestamp)
            if reason is None:
                batch.events.append(event)
            else:
                batch.rejected.append(Rejection(index, "timestamp", reason))
        return batch
    if start not in (b"{", b""):
        raise BadBody("expected a JSON array of events, or NDJSON (one JSON object per line)")
    lines = body.split(b"\n")
    _check_length(sum(1 for line in lines if line.strip()), limits)
    for index, line in enumerate(lines):
        if line.strip():
            _add(batch, index, line, limits, raw=True)
    return batch


def _check_length(count: int, limits: Limits) -> None:
    if count > limits.max_events:
        raise BadBody(
            f"batch holds {count} events; the limit is {limits.max_events} per request",
            too_large=True,
        )


def to_lines(events: list[ExposureEvent | TrackEvent], received_at: datetime) -> bytes:
    """Normalised NDJSON for the spool and stores: a line per event, ``received_at`` added."""
    if not events:
        return b""
    stamp = received_at.astimezone(UTC).replace(tzinfo=None).isoformat()
    prefix = b'{"received_at":"' + stamp.encode() + b'",'
    return b"".join(
        prefix + event.__pydantic_serializer__.to_json(event)[1:] + b"\n" for event in events
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def naive_utc(value: datetime) -> datetime:
    """Stores keep UTC timestamps without a zone; naive input is taken to be UTC already."""
    offset = value.utcoffset()
    return value if offset is None else value.replace(tzinfo=None) - offset
