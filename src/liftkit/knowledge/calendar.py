"""The experiment calendar: what runs (or is planned to run) when, and which tests collide.

Two experiments *conflict* when one user can be in both at the same time on the same part of the
product: their interaction then muddies both results. The calendar flags that before launch,
from what briefs and experiments already say, so teams can move dates, split traffic with a
namespace or narrow an audience. The rule is deliberately conservative: an overlap is assumed
unless the data *shows* the two tests cannot share a user (disjoint targeting, or disjoint
slices of one namespace), because a missed conflict costs a wasted test and a false alarm only
a glance.

The same entries become an iCalendar feed (RFC 5545) that Google, Apple and Outlook calendars
can subscribe to, so the plan sits next to release dates and holidays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import combinations
from typing import Any

from icalendar import Calendar, Event

from liftkit.knowledge.records import Record
from liftkit.registry.briefs import Stage
from liftkit.registry.experiments import NamespaceRange

#: Stages shown on the calendar. ``analysing`` keeps a test visible after it stops until someone
#: decides, which is when its owners still care about what else ran beside it.
CALENDAR_STAGES: frozenset[Stage] = frozenset({"planned", "in_review", "running", "analysing"})
_DECIDABLE = ("$eq", "$in", "$ne", "$nin")


def utc(when: datetime) -> datetime:
    """``when`` in UTC; a naive datetime is taken to be UTC already (the registry's convention)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    """One experiment on the calendar; ``[start, end)`` in UTC.

    ``planned`` is True while the dates come from the brief's plan rather than the experiment's
    phases (the feed marks such events tentative).
    """

    key: str
    name: str
    project: str
    team: str
    surface: str
    owners: tuple[str, ...]
    stage: Stage
    start: datetime
    end: datetime
    planned: bool
    experiment: str | None
    namespaces: tuple[NamespaceRange, ...]
    condition: dict[str, Any]
    hash_attribute: str
    #: The brief's hypothesis (else the experiment's), for the feed's descriptions.
    hypothesis: str = ""


def entries(records: Iterable[Record], *, now: datetime) -> list[Entry]:
    """The calendar: records in a calendar stage that have a start, sorted by start.

    Start: the experiment's first phase, else the brief's ``planned_start``. End: when the
    experiment stopped; else the brief's ``planned_end`` (inclusive, so the end of that day);
    else the start plus the days the test needs — ``criteria.min_days`` for a plan, the longer
    of that and the experiment's ``analysis.planned_days`` once it runs (that is what it was
    sized for). A planned end that falls before a late actual start is stale and ignored.

    ``now`` is accepted so every caller passes the same clock; the dates themselves come only
    from records, which keeps the feed stable between requests.
    """
    del now  # the dates are the records' own (see the docstring)
    out = [entry for record in records if (entry := _entry(record)) is not None]
    return sorted(out, key=lambda e: (e.start, e.key))


def _entry(record: Record) -> Entry | None:
    if record.stage not in CALENDAR_STAGES:
        return None
    brief, experiment = record.brief, record.experiment
    has_phases = experiment is not None and bool(experiment.phases)
    if record.started_at is not None:
        start = utc(record.started_at)
    elif brief.planned_start is not None:
        start = _day_start(brief.planned_start)
    else:
        return None
    needed = brief.criteria.min_days
    if record.stage == "running" and experiment is not None:
        needed = max(needed, experiment.analysis.planned_days)
    end = start + timedelta(days=needed)
    plan_end = _day_start(brief.planned_end) + timedelta(days=1) if brief.planned_end else None
    if record.ended_at is not None:
        end = utc(record.ended_at)
    elif plan_end is not None and plan_end > start:
        end = plan_end
    hypothesis = brief.hypothesis
    parts = (hypothesis.change, hypothesis.audience, hypothesis.result, hypothesis.reason)
    text = hypothesis.text if any(p.strip() for p in parts) else ""
    if not text:
        text = (experiment.hypothesis if experiment else "") or brief.description
    return Entry(
        key=brief.key,
        name=brief.name or brief.key,
        project=brief.project,
        team=brief.team,
        surface=brief.surface,
        owners=tuple(brief.owners),
        stage=record.stage,
        start=start,
        end=end,
        planned=not has_phases,
        experiment=experiment.key if experiment is not None else brief.experiment,
        namespaces=tuple(experiment.namespaces) if experiment is not None else (),
        condition=dict(experiment.condition if experiment is not None else brief.targeting),
        hash_attribute=experiment.hash_attribute if experiment is not None else "",
        hypothesis=text,
    )


# --- audiences ---------------------------------------------------------------------------------


@dataclass
class _Constraint:
    """What one condition says about one attribute: allowed values (None: any) and excluded."""

    allowed: set[Any] | None = None
    excluded: set[Any] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    undecidable: bool = False


def _literal(value: Any) -> tuple[str, Any] | None:
    """(JS type, comparable value) of a scalar literal; None for lists, objects and NaN."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", float(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        return ("string", value)
    return None


def _constraints(condition: Mapping[str, Any]) -> dict[str, _Constraint]:
    out: dict[str, _Constraint] = {}
    _collect(condition, out)
    return out


def _collect(condition: Any, out: dict[str, _Constraint]) -> None:
    if not isinstance(condition, Mapping):
        return
    for attribute, expected in condition.items():
        if attribute == "$and" and isinstance(expected, list):
            for part in expected:
                _collect(part, out)
            continue
        if attribute.startswith("$"):
            continue  # $or, $nor, $not: skipped (only ever widens the audience we assume)
        operators = expected if _is_operators(expected) else {"$eq": expected}
        for op, arg in operators.items():
            if op in _DECIDABLE:
                _apply(out.setdefault(attribute, _Constraint()), op, arg)


def _is_operators(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(str(k).startswith("$") for k in value)


def _apply(c: _Constraint, op: str, arg: Any) -> None:
    values = arg if op in ("$in", "$nin") else [arg]
    if not isinstance(values, list):
        c.undecidable = True  # "$in": "GB" matches no one; don't reason about it
        return
    found: set[Any] = set()
    for value in values:
        literal = _literal(value)
        if literal is None:
            c.undecidable = True
            return
        c.types.add(literal[0])
        found.add(literal[1])
    if op in ("$eq", "$in"):
        c.allowed = found if c.allowed is None else c.allowed & found
    else:
        c.excluded |= found


def audiences_overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether some user could match both targeting conditions (conservative: True if unsure).

    The audiences are disjoint only when an attribute is constrained by *both* conditions and
    no value can pass all of their constraints on it:

    - constraints come from plain equality (``{"country": "GB"}``), ``$eq`` and ``$in`` (allowed
      values, intersected) and ``$ne`` and ``$nin`` (excluded values), at the top level of a
      condition or inside a top-level ``$and``;
    - everything else — other operators, ``$or``/``$nor``/``$not``, lists or objects as values —
      is skipped. Skipping a clause of a conjunction can only make an audience look bigger, so
      it never hides an overlap;
    - attributes are taken to hold one value of the type the conditions compare them with (a
      country is a string, not a list of strings). An attribute whose values mix types (``"1"``
      and ``1``) decides nothing, because loose equality can match across types.
    """
    left, right = _constraints(a), _constraints(b)
    for attribute in left.keys() & right.keys():
        x, y = left[attribute], right[attribute]
        if x.undecidable or y.undecidable or len(x.types | y.types) != 1:
            continue
        if x.allowed is None and y.allowed is None:
            continue  # only exclusions: some other value passes both
        if x.allowed is None:
            allowed = y.allowed
        elif y.allowed is None:
            allowed = x.allowed
        else:
            allowed = x.allowed & y.allowed
        assert allowed is not None
        if not allowed - x.excluded - y.excluded:
            return False
    return True


# --- conflicts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    """Two entries that may share users at once; ``[start, end)`` is when they overlap."""

    a: str
    b: str
    reasons: tuple[str, ...]
    start: datetime
    end: datetime


def _ranges_overlap(x: NamespaceRange, y: NamespaceRange) -> bool:
    return x.start < y.end and y.start < x.end


def conflicts(entries: Sequence[Entry]) -> list[Conflict]:
    """Pairs of entries of one project that overlap in time and may share users.

    A pair conflicts when they run at the same time, on the same (non-empty) surface or in
    overlapping slices of one namespace, and their audiences may overlap. Disjoint slices of a
    shared namespace make two experiments mutually exclusive, so such a pair never conflicts,
    even on one surface — provided both hash the same attribute: namespace membership is a hash
    of the experiment's hash attribute, so an experiment bucketed by ``device_id`` and one by
    ``id`` can land one user in both slices. That case is reported as a reason of its own.
    """
    ordered = sorted(entries, key=lambda e: e.key)
    found: list[Conflict] = []
    for a, b in combinations(ordered, 2):
        if a.key == b.key or a.project != b.project:
            continue
        start, end = max(a.start, b.start), min(a.end, b.end)
        if start >= end:
            continue
        reasons = [f"same surface {a.surface!r}"] if a.surface and a.surface == b.surface else []
        exclusive = False
        theirs = {n.namespace: n for n in b.namespaces}
        for mine in a.namespaces:
            other = theirs.get(mine.namespace)
            if other is None:
                continue
            if _ranges_overlap(mine, other):
                reasons.append(f"namespace {mine.namespace!r} ranges overlap")
            elif a.hash_attribute == b.hash_attribute:
                exclusive = True
            else:
                reasons.append(
                    f"namespace {mine.namespace!r} does not separate them (hashed on "
                    f"{a.hash_attribute!r} and {b.hash_attribute!r})"
                )
        if exclusive or not reasons or not audiences_overlap(a.condition, b.condition):
            continue
        found.append(Conflict(a.key, b.key, tuple(reasons), start, end))
    return sorted(found, key=lambda c: (c.start, c.a, c.b))


# --- iCalendar feed ----------------------------------------------------------------------------


def to_ics(
    entries: Sequence[Entry],
    conflicts: Sequence[Conflict],
    *,
    calendar_name: str,
    base_url: str,
    now: datetime | None = None,
) -> bytes:
    """An iCalendar feed with one event per entry, for calendar apps to subscribe to.

    UIDs are ``{key}@liftkit``, so a subscribed calendar updates an event when its dates move
    instead of adding another. Events are transparent (experiments don't make anyone busy) and
    tentative while their dates are plans. ``now`` is the DTSTAMP (default: the current time).
    """
    stamp = utc(now or datetime.now(UTC)).replace(microsecond=0)
    root = base_url.rstrip("/")
    cal = Calendar()
    cal.add("prodid", "-//liftkit//Experiment calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", calendar_name)
    cal.add("x-wr-caldesc", "Experiments planned and running (liftkit)")
    cal.add("x-published-ttl", "PT1H")
    by_key: dict[str, list[tuple[str, Conflict]]] = {}
    for c in conflicts:
        by_key.setdefault(c.a, []).append((c.b, c))
        by_key.setdefault(c.b, []).append((c.a, c))
    for entry in entries:
        clashes = by_key.get(entry.key, [])
        event = Event()
        event.add("uid", f"{entry.key}@liftkit")
        event.add("dtstamp", stamp)
        event.add("dtstart", utc(entry.start))
        # RFC 5545 wants DTEND after DTSTART; a test stopped at once still gets a minute.
        event.add("dtend", max(utc(entry.end), utc(entry.start) + timedelta(minutes=1)))
        event.add("summary", f"{'⚠ ' if clashes else ''}{entry.name} [{entry.stage}]")
        event.add("description", _description(entry, clashes))
        event.add("url", f"{root}/knowledge/briefs/{entry.key}")
        categories = [c for c in (entry.team, entry.surface) if c]
        if categories:
            event.add("categories", categories)
        event.add("status", "TENTATIVE" if entry.planned else "CONFIRMED")
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    feed: bytes = cal.to_ical()
    return feed


def _description(entry: Entry, clashes: Sequence[tuple[str, Conflict]]) -> str:
    lines = [entry.hypothesis] if entry.hypothesis else []
    lines += [
        f"Owners: {', '.join(entry.owners) or '—'}",
        f"Team: {entry.team or '—'}",
        f"Surface: {entry.surface or '—'}",
        f"Stage: {entry.stage}" + (" (planned dates)" if entry.planned else ""),
    ]
    if entry.experiment:
        lines.append(f"Experiment: {entry.experiment}")
    if clashes:
        lines.append("Conflicts:")
        for other, c in clashes:
            window = f"{c.start:%Y-%m-%d} – {c.end:%Y-%m-%d}"
            lines.append(f"- {other} ({window}): {'; '.join(c.reasons)}")
    return "\n".join(lines)
