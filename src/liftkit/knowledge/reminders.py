"""Reminders: nudge owners before an experiment or a warranty ends, and when a decision is late.

Experiments go stale in two quiet ways: one runs on past the date it was sized for, or one stops
and nobody writes down what it showed. Both cost a learning, so the knowledge base reminds the
owners through the same webhook outbox playbooks use (durable, signed, retried).

Every reminder has a stable id built from what it is about and the date it is due, so a job that
runs every hour queues it once: the outbox keeps one row per (event id, URL). When the date
moves (a plan is extended, a warranty restarts) the id changes and owners hear about it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from liftkit.automation.notify import Notifier
from liftkit.automation.state import State
from liftkit.knowledge import calendar
from liftkit.knowledge.calendar import utc
from liftkit.knowledge.records import Record
from liftkit.registry.briefs import KnowledgeSettings
from liftkit.registry.playbooks import Playbook
from liftkit.registry.tables import playbook_state

if TYPE_CHECKING:
    from liftkit.platform import Platform

ReminderKind = Literal["ending", "decision_overdue", "warranty_ending"]
#: The outbox's label (its ``playbook`` column) for knowledge-base notifications.
LABEL = "knowledge"
_MAX_ID = 200  # webhook_deliveries.event_id is VARCHAR(200)


@dataclass(frozen=True)
class Reminder:
    """One reminder; ``id`` is its dedupe key in the outbox (stable across runs)."""

    id: str
    kind: ReminderKind
    key: str
    title: str
    due: datetime
    owners: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class Warranty:
    """A shipped winner's warranty in progress: the holdout re-validates it until ``ends_at``."""

    playbook: str
    experiment: str
    owner: str
    ends_at: datetime


def warranties(platform: Platform, *, project: str | None = None) -> list[Warranty]:
    """Live warranties: playbooks whose state is ``warranty`` with an end set, by end.

    The owner is the playbook's warranty owner (else the playbook's owner). States of deleted
    playbooks are ignored. All states are read in one query.
    """
    playbooks = {
        p.key: p
        for p in platform.registry.all("playbooks")
        if isinstance(p, Playbook) and (project is None or p.project == project)
    }
    with platform.engine.connect() as conn:
        rows = conn.execute(select(playbook_state.c.playbook, playbook_state.c.state)).all()
    out = []
    for row in rows:
        playbook = playbooks.get(row.playbook)
        if playbook is None:
            continue
        state = State.model_validate(row.state)
        if state.status != "warranty" or state.warranty_ends_at is None:
            continue
        owner = playbook.warranty.owner if playbook.warranty is not None else playbook.owner
        out.append(
            Warranty(playbook.key, playbook.experiment_key, owner, utc(state.warranty_ends_at))
        )
    return sorted(out, key=lambda w: (w.ends_at, w.playbook))


def reminder_id(kind: str, key: str, when: datetime) -> str:
    """``{kind}:{key}:{YYYY-MM-DD}``; a very long key is replaced by its hash to fit the outbox.

    The date is the one the reminder is about (the planned end, the stop, the warranty's end),
    not the day it was sent, so the id stays the same on every run until that date moves.
    """
    day = f"{utc(when):%Y-%m-%d}"
    found = f"{kind}:{key}:{day}"
    if len(found) <= _MAX_ID:
        return found
    return f"{kind}:{hashlib.sha256(key.encode()).hexdigest()}:{day}"


def due(
    records: Iterable[Record],
    warranties: Iterable[Warranty],
    *,
    now: datetime,
    settings: KnowledgeSettings,
) -> list[Reminder]:
    """The reminders due at ``now``, by due date.

    - ``ending``: a running experiment whose calendar end is at most ``remind_days_before``
      days away, or already past while it still runs;
    - ``decision_overdue``: an experiment in ``analysing`` that stopped more than
      ``decision_days`` ago with no decision recorded;
    - ``warranty_ending``: a warranty ending within ``remind_days_before`` days (or overdue).
    """
    now = utc(now)
    ahead = timedelta(days=settings.remind_days_before)
    records = list(records)
    out: list[Reminder] = []
    for entry in calendar.entries(records, now=now):
        day = f"{entry.end:%Y-%m-%d}"
        if entry.stage == "running" and entry.end <= now + ahead:
            past = entry.end <= now
            message = (
                f"{entry.name} ({entry.key}) was planned to end on {day} and is still running: "
                "look at the results and stop it, or move its planned end."
                if past
                else f"{entry.name} ({entry.key}) is planned to end on {day}: get ready to "
                "stop it and decide."
            )
            title = f"{entry.name} {'was due to end' if past else 'ends'} on {day}"
            out.append(
                _make("ending", entry.key, entry.end, entry.end, entry.owners, title, message)
            )
        elif entry.stage == "analysing":
            deadline = entry.end + timedelta(days=settings.decision_days)
            if now <= deadline:
                continue
            days = (now - entry.end).days
            ago = "1 day" if days == 1 else f"{days} days"
            message = (
                f"{entry.name} ({entry.key}) stopped on {day}, {ago} ago, and has no decision "
                "yet: record its outcome and what was learnt."
            )
            title = f"Decision overdue: {entry.name}"
            out.append(
                _make(
                    "decision_overdue", entry.key, entry.end, deadline, entry.owners, title, message
                )
            )
    by_experiment = {r.experiment.key: r for r in records if r.experiment is not None}
    for w in warranties:
        ends = utc(w.ends_at)
        if ends > now + ahead:
            continue
        record = by_experiment.get(w.experiment)
        others = record.brief.owners if record is not None else []
        owners = tuple(o for o in dict.fromkeys([w.owner, *others]) if o)
        day = f"{ends:%Y-%m-%d}"
        message = (
            f"The warranty of {w.experiment} (playbook {w.playbook}) ends on {day}: the holdout "
            "comparison then decides whether the shipped winner stays."
        )
        title = f"Warranty of {w.experiment} ends on {day}"
        # The id names the playbook (one warranty each); the key names the brief, if any.
        reminder = _make("warranty_ending", w.playbook, ends, ends, owners, title, message)
        key = record.key if record is not None else w.experiment
        out.append(replace(reminder, key=key))
    return sorted(out, key=lambda r: (r.due, r.id))


def _make(
    kind: ReminderKind,
    key: str,
    when: datetime,
    due: datetime,
    owners: Sequence[str],
    title: str,
    message: str,
) -> Reminder:
    """A reminder whose id is ``{kind}:{key}:{when's date}``."""
    return Reminder(reminder_id(kind, key, when), kind, key, title, due, tuple(owners), message)


def event_of(reminder: Reminder) -> dict[str, Any]:
    """The webhook body of a reminder (``reason`` repeats the message for Slack summaries)."""
    return {
        "type": "reminder",
        "kind": reminder.kind,
        "key": reminder.key,
        "title": reminder.title,
        "due": utc(reminder.due).isoformat(),
        "owners": list(reminder.owners),
        "message": reminder.message,
        "reason": reminder.message,
    }


def send(notifier: Notifier, reminders: Sequence[Reminder], settings: KnowledgeSettings) -> int:
    """Queue each reminder for ``settings.notify``; returns how many reminders were new.

    A reminder counts when at least one of its rows was new; one already queued (under the
    same id, to the same URL) is skipped by the outbox, so running this again sends nothing
    twice. Nothing is delivered here: the caller runs ``notifier.deliver_due()``.
    """
    if not settings.notify:
        return 0
    queued = 0
    for reminder in reminders:
        added = notifier.enqueue(LABEL, reminder.id, settings.notify, event_of(reminder))
        queued += added > 0
    return queued
