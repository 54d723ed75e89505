"""Webhook outbox: signatures, ``${ENV}`` secrets, retries with backoff, Slack payloads, restarts.

No sockets: every request goes to an ``httpx.MockTransport`` handler, and time is a test clock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from liftkit.automation.notify import Delivery, Notifier, slack_payload, verify
from liftkit.registry import database
from liftkit.registry.playbooks import Webhook
from liftkit.registry.tables import webhook_deliveries

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
URL = "https://hooks.example.com/liftkit/in"
OTHER = "https://other.example.org/hook"
EVENT: dict[str, Any] = {
    "id": "evt-1",
    "type": "playbook.rollback",
    "playbook": "checkout-v2",
    "experiment": "checkout-v2",
    "action": "rollback",
    "reason": "guardrail errors breached (+3.1%, limit +1%)",
    "at": "2026-11-21T10:00:00Z",
    "dry_run": False,
    "numbers": {"errors_lift": 0.031, "p_value": 0.002, "users": 120_000},
    "url": "http://liftkit.example/experiments/checkout-v2",
}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Receiver:
    """A webhook receiver: answers from a script of status codes (then 200), or from ``check``."""

    def __init__(self, *answers: int, check: Callable[[httpx.Request], int] | None = None) -> None:
        self.answers = list(answers)
        self.check = check
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.check is not None:
            return httpx.Response(self.check(request))
        return httpx.Response(self.answers.pop(0) if self.answers else 200)


def signed_with(secret: str, clock: Clock) -> Callable[[httpx.Request], int]:
    """A receiver's check: 204 if the request verifies with ``secret``, else 401."""

    def check(request: httpx.Request) -> int:
        headers = request.headers
        ok = verify(
            secret,
            headers.get("X-Liftkit-Timestamp", ""),
            request.content,
            headers.get("X-Liftkit-Signature", ""),
            now=clock().timestamp(),
        )
        return 204 if ok else 401

    return check


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = database.create(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(engine: Engine, clock: Clock) -> Iterator[Callable[..., Notifier]]:
    made: list[Notifier] = []

    def factory(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> Notifier:
        transport = httpx.MockTransport(handler)
        notifier = Notifier(engine, transport=transport, clock=clock, **options)
        made.append(notifier)
        return notifier

    yield factory
    for notifier in made:
        notifier.close()


def only(notifier: Notifier) -> Delivery:
    [delivery] = notifier.deliveries()
    return delivery


def test_the_receiver_verifies_the_signature_over_the_exact_body(
    make: Callable[..., Notifier], clock: Clock
) -> None:
    receiver = Receiver(check=signed_with("s3cret", clock))
    notifier = make(receiver)
    assert notifier.enqueue("checkout-v2", "evt-1", [Webhook(url=URL, secret="s3cret")], EVENT) == 1
    assert notifier.deliver_due() == 1

    [request] = receiver.requests
    body, headers = request.content, request.headers
    assert body == json.dumps(EVENT, separators=(",", ":"), sort_keys=True).encode()
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "liftkit-webhooks"
    assert headers["X-Liftkit-Event-Id"] == "evt-1"
    timestamp, signature = headers["X-Liftkit-Timestamp"], headers["X-Liftkit-Signature"]
    assert timestamp == str(int(NOW.timestamp())) and signature.startswith("sha256=")
    now = NOW.timestamp()
    assert verify("s3cret", timestamp, body, signature, now=now + 299)
    assert not verify("s3cret", timestamp, body.replace(b"rollback", b"ramp"), signature, now=now)
    assert not verify("wrong", timestamp, body, signature, now=now)
    assert not verify("s3cret", str(int(timestamp) + 60), body, signature, now=now)
    assert not verify("s3cret", timestamp, body, signature, now=now + 301)  # a replay
    assert not verify("s3cret", timestamp, body, signature, now=now + 30, tolerance=10)
    assert not verify("s3cret", "yesterday", body, signature, now=now)

    delivery = only(notifier)
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("sent", 1, NOW)
    assert (delivery.url, delivery.format, delivery.last_error) == (URL, "liftkit", "")
    assert "s3cret" not in repr(delivery)


def test_secrets_are_expanded_from_the_environment_and_never_recorded(
    make: Callable[..., Notifier],
    engine: Engine,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("LIFTKIT_TEST_HOOK_SECRET", "from-env-123")
    monkeypatch.delenv("LIFTKIT_TEST_HOOK_MISSING", raising=False)
    receiver = Receiver(check=signed_with("from-env-123", clock))
    notifier = make(receiver)
    hooks = [
        Webhook(url=URL, secret="${LIFTKIT_TEST_HOOK_SECRET}"),
        Webhook(url=OTHER, secret="${LIFTKIT_TEST_HOOK_SECRET}${LIFTKIT_TEST_HOOK_MISSING}"),
    ]
    assert notifier.enqueue("checkout-v2", "evt-1", hooks, EVENT) == 2
    with caplog.at_level(logging.DEBUG, logger="liftkit.automation.notify"):
        assert notifier.deliver_due() == 1

    assert [str(r.url) for r in receiver.requests] == [URL]  # the other one was not sent
    by_url = {d.url: d for d in notifier.deliveries()}
    assert by_url[URL].status == "sent"
    missing = by_url[OTHER]
    assert missing.status == "pending" and missing.sent_at is None and missing.attempts == 1
    assert "environment variable LIFTKIT_TEST_HOOK_MISSING is not set" in missing.last_error
    assert "from-env-123" not in missing.last_error
    assert "from-env-123" not in caplog.text and "LIFTKIT_TEST_HOOK_MISSING" in caplog.text
    with engine.connect() as conn:  # the database holds the placeholders, not the values
        stored = set(conn.execute(select(webhook_deliveries.c.secret)).scalars())
    assert stored == {h.secret for h in hooks}

    # Once the variable is set (say, after a restart), the retry goes through.
    monkeypatch.setenv("LIFTKIT_TEST_HOOK_MISSING", "")
    clock.now = missing.next_at
    assert notifier.deliver_due() == 1
    assert {d.status for d in notifier.deliveries()} == {"sent"}


def test_failures_are_retried_with_growing_backoff(
    make: Callable[..., Notifier], clock: Clock
) -> None:
    receiver = Receiver(500, 500, 200)
    notifier = make(receiver, base_delay=10.0)
    notifier.enqueue("checkout-v2", "evt-1", [Webhook(url=URL)], EVENT)

    assert notifier.deliver_due() == 0
    first = only(notifier)
    assert (first.status, first.attempts, first.last_error) == ("pending", 1, "HTTP 500")
    assert timedelta(seconds=5) <= first.next_at - clock.now <= timedelta(seconds=10)

    clock.now = first.next_at - timedelta(seconds=1)
    assert notifier.deliver_due() == 0  # not due yet: nothing is sent
    assert len(receiver.requests) == 1

    clock.now = first.next_at
    assert notifier.deliver_due() == 0
    second = only(notifier)
    assert (second.status, second.attempts) == ("pending", 2)
    assert timedelta(seconds=10) <= second.next_at - clock.now <= timedelta(seconds=20)
    assert second.next_at - first.next_at >= first.next_at - NOW  # the wait grows

    clock.now = second.next_at
    assert notifier.deliver_due() == 1
    third = only(notifier)
    assert (third.status, third.attempts, third.sent_at) == ("sent", 3, clock.now)
    assert len(receiver.requests) == 3
    assert {r.headers["X-Liftkit-Event-Id"] for r in receiver.requests} == {"evt-1"}

    clock.now += timedelta(days=1)
    assert notifier.deliver_due() == 0 and len(receiver.requests) == 3


def test_a_delivery_fails_after_max_attempts(make: Callable[..., Notifier], clock: Clock) -> None:
    receiver = Receiver(*[503] * 10)
    notifier = make(receiver, max_attempts=3, base_delay=100.0, max_delay=120.0)
    notifier.enqueue("checkout-v2", "evt-1", [Webhook(url=URL)], EVENT)
    for attempt in range(1, 4):
        assert notifier.deliver_due() == 0
        delivery = only(notifier)
        assert delivery.attempts == attempt and delivery.last_error == "HTTP 503"
        assert delivery.next_at - clock.now <= timedelta(seconds=120)  # capped at max_delay
        clock.now = delivery.next_at
    assert delivery.status == "failed"
    clock.now += timedelta(days=1)
    assert notifier.deliver_due() == 0 and len(receiver.requests) == 3


def test_enqueue_is_idempotent_per_event_and_url(
    make: Callable[..., Notifier], clock: Clock
) -> None:
    notifier = make(Receiver())
    hooks = [Webhook(url=URL, secret="a"), Webhook(url=OTHER, format="slack")]
    assert notifier.enqueue("checkout-v2", "evt-1", hooks, EVENT) == 2
    assert notifier.enqueue("checkout-v2", "evt-1", hooks, EVENT) == 0
    assert notifier.enqueue("checkout-v2", "evt-1", [hooks[0], hooks[0]], EVENT) == 0
    clock.now += timedelta(minutes=1)
    assert notifier.enqueue("search", "evt-2", [hooks[0], hooks[0]], {"id": "evt-2"}) == 1

    listed = notifier.deliveries()
    assert [(d.event_id, d.url) for d in listed] == [
        ("evt-2", URL), ("evt-1", OTHER), ("evt-1", URL)
    ]  # fmt: skip
    assert [d.event_id for d in notifier.deliveries("checkout-v2")] == ["evt-1", "evt-1"]
    assert len(notifier.deliveries(limit=1)) == 1
    assert notifier.deliver_due(limit=2) == 2
    assert notifier.deliver_due() == 1


def test_slack_payloads_summarise_the_event(make: Callable[..., Notifier]) -> None:
    receiver = Receiver()
    notifier = make(receiver)
    notifier.enqueue("checkout-v2", "evt-1", [Webhook(url=URL, format="slack")], EVENT)
    assert notifier.deliver_due() == 1

    [request] = receiver.requests
    assert "X-Liftkit-Signature" not in request.headers  # no secret, no signature
    assert request.headers["X-Liftkit-Event-Id"] == "evt-1"
    payload = json.loads(request.content)
    assert set(payload) == {"text", "blocks"}
    assert "checkout-v2" in payload["text"] and "rollback" in payload["text"]
    assert "\n" not in payload["text"]
    section = payload["blocks"][0]["text"]["text"]
    assert section.startswith("*checkout-v2* — rollback: guardrail errors breached")
    assert f"<{EVENT['url']}|details>" in section
    fields = [f["text"] for b in payload["blocks"] for f in b.get("fields", [])]
    assert "*p_value*: 0.002" in fields and len(fields) == 3

    # Missing fields are tolerated; at most ten numbers are shown.
    bare = slack_payload("search", {"numbers": {f"n{i}": i for i in range(15)}})
    assert "search" in bare["text"]
    assert len(bare["blocks"][1]["fields"]) == 10
    assert slack_payload("x", {})["blocks"][0]["text"]["text"].startswith("*x*")


def test_client_errors_fail_at_once_and_timeouts_are_retried(
    make: Callable[..., Notifier], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    slack_url = "https://hooks.example.com/services/T000/B000/tok3n"
    timeouts = [httpx.ReadTimeout("timed out"), httpx.ConnectError("refused")]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "other.example.org":
            if timeouts:
                raise timeouts.pop(0)
            return httpx.Response(200)
        return httpx.Response(404)

    notifier = make(handler)
    notifier.enqueue("checkout-v2", "evt-1", [Webhook(url=slack_url), Webhook(url=OTHER)], EVENT)
    with caplog.at_level(logging.WARNING, logger="liftkit.automation.notify"):
        assert notifier.deliver_due() == 0
    by_url = {d.url: d for d in notifier.deliveries()}
    gone, slow = by_url[slack_url], by_url[OTHER]
    assert (gone.status, gone.attempts, gone.last_error) == ("failed", 1, "HTTP 404")
    assert (slow.status, slow.attempts, slow.last_error) == ("pending", 1, "ReadTimeout")
    assert "hooks.example.com" in caplog.text and "tok3n" not in caplog.text  # host only

    clock.now = slow.next_at
    assert notifier.deliver_due() == 0
    assert only_url(notifier, OTHER).last_error == "ConnectError"
    clock.now = only_url(notifier, OTHER).next_at
    assert notifier.deliver_due() == 1
    assert only_url(notifier, OTHER).status == "sent"
    assert only_url(notifier, slack_url).attempts == 1  # a 404 is not retried


def only_url(notifier: Notifier, url: str) -> Delivery:
    [delivery] = [d for d in notifier.deliveries() if d.url == url]
    return delivery


def test_the_outbox_survives_a_restart(database_url: str, clock: Clock) -> None:
    receiver = Receiver()
    engine = database.create(database_url)
    before = Notifier(engine, transport=httpx.MockTransport(receiver), clock=clock)
    before.enqueue("checkout-v2", "evt-1", [Webhook(url=URL, secret="s")], EVENT)
    before.close()  # the process stops before delivering
    engine.dispose()

    engine = database.create(database_url)
    after = Notifier(engine, transport=httpx.MockTransport(receiver), clock=clock)
    try:
        assert after.deliver_due() == 1
        assert only(after).status == "sent"
        assert json.loads(receiver.requests[0].content) == EVENT
    finally:
        after.close()
        engine.dispose()
