"""Reminders: when each kind fires, stable ids, warranties from playbook state, the outbox.

No sockets: webhooks go to an ``httpx.MockTransport`` receiver. Database tests run on SQLite and
PostgreSQL (the conftest ``database_url`` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from liftkit.automation import state
from liftkit.automation.notify import Notifier
from liftkit.knowledge.calendar import entries
from liftkit.knowledge.records import Record, record_of
from liftkit.knowledge.reminders import Reminder, Warranty, due, reminder_id, send, warranties
from liftkit.platform import Platform
from liftkit.registry import database
from liftkit.registry.briefs import Brief, KnowledgeSettings
from liftkit.registry.experiments import Experiment, Phase
from liftkit.registry.playbooks import Webhook

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
URL = "https://hooks.example.com/knowledge"
SETTINGS = KnowledgeSettings(
    key="default", remind_days_before=3, decision_days=7, notify=[Webhook(url=URL)]
)
ACTOR = "user:test"


def record(key: str, *, end: datetime | None = None, result: Any = None, **brief: Any) -> Record:
    """An experiment with a brief: running since T0, or stopped at ``end``."""
    brief.setdefault("owners", ["ana@example.com"])
    b = Brief(key=key, name=key.title(), experiment=key, **brief)
    e = Experiment(
        key=key,
        status="stopped" if end else "running",
        result=result,
        phases=[Phase(started_at=T0, ended_at=end)],
    )
    return record_of(b, e, None, synthetic=False)


def kinds(reminders: list[Reminder]) -> list[tuple[str, str]]:
    return [(r.kind, r.key) for r in reminders]


# --- when each kind fires ----------------------------------------------------------------------


def test_a_running_experiment_is_reminded_of_its_end_a_few_days_before_and_after() -> None:
    records = [record("checkout")]
    [entry] = entries(records, now=T0)
    end = entry.end
    assert end == T0 + timedelta(days=28)
    opens = end - timedelta(days=3)
    assert due(records, [], now=opens - timedelta(seconds=1), settings=SETTINGS) == []

    [soon] = due(records, [], now=opens, settings=SETTINGS)
    assert soon.kind == "ending" and soon.key == "checkout" and soon.due == end
    assert soon.id == "ending:checkout:2026-03-30" == reminder_id("ending", "checkout", end)
    assert soon.owners == ("ana@example.com",)
    assert soon.title == "Checkout ends on 2026-03-30" and "2026-03-30" in soon.message

    [late] = due(records, [], now=end + timedelta(days=5), settings=SETTINGS)
    assert late.id == soon.id  # the same reminder: the outbox will not send it twice
    assert "still running" in late.message and late.title.startswith("Checkout was due")


def test_a_planned_end_decides_when_the_ending_reminder_fires() -> None:
    records = [record("checkout", planned_end=datetime(2026, 3, 15).date())]
    end = datetime(2026, 3, 16, tzinfo=UTC)
    assert due(records, [], now=end - timedelta(days=3, seconds=1), settings=SETTINGS) == []
    [reminder] = due(records, [], now=end - timedelta(days=3), settings=SETTINGS)
    assert reminder.id == "ending:checkout:2026-03-16"


def test_a_decision_is_overdue_only_after_the_decision_days() -> None:
    stop = T0 + timedelta(days=14)
    records = [record("checkout", end=stop)]
    deadline = stop + timedelta(days=7)
    for now in (stop, stop + timedelta(days=2), deadline):  # analysing, not late yet
        assert due(records, [], now=now, settings=SETTINGS) == []

    [overdue] = due(records, [], now=deadline + timedelta(seconds=1), settings=SETTINGS)
    assert (overdue.kind, overdue.key, overdue.due) == ("decision_overdue", "checkout", deadline)
    assert overdue.id == "decision_overdue:checkout:2026-03-16"
    assert "7 days ago" in overdue.message and overdue.title == "Decision overdue: Checkout"
    [later] = due(records, [], now=deadline + timedelta(days=30), settings=SETTINGS)
    assert later.id == overdue.id

    decided = [record("checkout", end=stop, result="won")]
    assert due(decided, [], now=deadline + timedelta(days=1), settings=SETTINGS) == []
    concluded = [record("checkout", end=stop, conclusion={"outcome": "lost"})]
    assert due(concluded, [], now=deadline + timedelta(days=1), settings=SETTINGS) == []


def test_a_warranty_is_reminded_of_before_it_ends() -> None:
    ends = T0 + timedelta(days=40)
    warranty = Warranty("checkout-pb", "checkout", "owner@example.com", ends)
    records = [record("checkout", end=T0 + timedelta(days=10), result="won", stage="running")]
    before = ends - timedelta(days=3, seconds=1)
    assert due(records, [warranty], now=before, settings=SETTINGS) == []

    [reminder] = due(records, [warranty], now=ends - timedelta(days=3), settings=SETTINGS)
    assert reminder.kind == "warranty_ending" and reminder.key == "checkout"
    assert reminder.id == "warranty_ending:checkout-pb:2026-04-11" and reminder.due == ends
    assert reminder.owners == ("owner@example.com", "ana@example.com")
    [unlinked] = due([], [warranty], now=ends, settings=SETTINGS)
    assert unlinked.key == "checkout" and unlinked.owners == ("owner@example.com",)


def test_reminder_ids_are_stable_across_runs_and_sorted_by_due_date() -> None:
    records = [record("b-running"), record("a-stopped", end=T0 + timedelta(days=1))]
    warranty = Warranty("pb", "other", "o", T0 + timedelta(days=27))
    runs = [
        due(records, [warranty], now=T0 + timedelta(days=26, hours=h), settings=SETTINGS)
        for h in (0, 7, 23)
    ]
    assert [r.id for r in runs[0]] == [r.id for r in runs[1]] == [r.id for r in runs[2]]
    assert kinds(runs[0]) == [
        ("decision_overdue", "a-stopped"),
        ("warranty_ending", "other"),
        ("ending", "b-running"),
    ]


def test_a_very_long_key_still_gives_an_id_that_fits_the_outbox() -> None:
    key = "k" * 200
    found = reminder_id("warranty_ending", key, T0)
    assert len(found) <= 200 and found.endswith(":2026-03-02")
    assert found == reminder_id("warranty_ending", key, T0 + timedelta(hours=3))


# --- the outbox and playbook state -------------------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = database.create(database_url)
    yield engine
    engine.dispose()


class Receiver:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(204)


def test_send_queues_each_reminder_once(engine: Engine) -> None:
    receiver = Receiver()
    clock = [T0 + timedelta(days=26)]
    notifier = Notifier(engine, transport=httpx.MockTransport(receiver), clock=lambda: clock[0])
    try:
        records = [record("checkout"), record("pricing", end=T0 + timedelta(days=1))]
        reminders = due(records, [], now=clock[0], settings=SETTINGS)
        assert len(reminders) == 2
        assert send(notifier, reminders, SETTINGS) == 2
        assert notifier.deliver_due() == 2

        clock[0] += timedelta(hours=1)  # the next run: the same reminders, nothing new
        again = due(records, [], now=clock[0], settings=SETTINGS)
        assert [r.id for r in again] == [r.id for r in reminders]
        assert send(notifier, again, SETTINGS) == 0
        assert notifier.deliver_due() == 0
        assert len(notifier.deliveries()) == 2 and len(receiver.requests) == 2

        by_id = {r.headers["X-Liftkit-Event-Id"]: json.loads(r.content) for r in receiver.requests}
        body = by_id["ending:checkout:2026-03-30"]
        assert body == {
            "type": "reminder",
            "kind": "ending",
            "key": "checkout",
            "title": "Checkout ends on 2026-03-30",
            "due": "2026-03-30T09:30:00+00:00",
            "owners": ["ana@example.com"],
            "message": reminders[1].message,
            "reason": reminders[1].message,
        }
        assert {d.playbook for d in notifier.deliveries()} == {"knowledge"}

        two = SETTINGS.model_copy(update={"notify": [*SETTINGS.notify, Webhook(url=URL + "2")]})
        assert send(notifier, again, two) == 2  # a new webhook gets them once, the old one not
        assert send(notifier, again, two) == 0
        assert len(notifier.deliveries()) == 4
        assert send(notifier, again, SETTINGS.model_copy(update={"notify": []})) == 0
    finally:
        notifier.close()


def test_warranties_come_from_saved_playbook_state(platform: Platform) -> None:
    registry = platform.registry
    registry.save("experiments", {"key": "checkout"}, ACTOR)
    registry.save("experiments", {"key": "search"}, ACTOR)
    registry.save(
        "playbooks",
        {"key": "checkout-pb", "experiment": "checkout", "owner": "pm@example.com",
         "warranty": {"owner": "owner@example.com", "days": 30}},
        ACTOR,
    )  # fmt: skip
    registry.save(
        "playbooks", {"key": "search-pb", "experiment": "search", "owner": "pm@example.com"}, ACTOR
    )
    ends = T0 + timedelta(days=30)
    state.save(
        platform.engine, "checkout-pb", state.State(status="warranty", warranty_ends_at=ends), T0
    )
    state.save(platform.engine, "search-pb", state.State(status="running"), T0)
    state.save(platform.engine, "gone", state.State(status="warranty", warranty_ends_at=ends), T0)

    [warranty] = warranties(platform)
    assert warranty == Warranty("checkout-pb", "checkout", "owner@example.com", ends)
    assert warranties(platform, project="other") == []

    [reminder] = due([], [warranty], now=ends - timedelta(days=1), settings=SETTINGS)
    assert reminder.id == "warranty_ending:checkout-pb:2026-04-01"
    # Over: the controller moves on from "warranty" and the reminder source dries up.
    done = state.State(status="promoted", warranty_ends_at=ends, warranty_outcome="positive")
    state.save(platform.engine, "checkout-pb", done, ends)
    assert warranties(platform) == []
