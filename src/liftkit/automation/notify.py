"""Webhook notifications from playbooks: a durable outbox, signed and retried with backoff.

Why an outbox: the controller first writes one ``webhook_deliveries`` row per event and URL
(in the database, so a restart or crash loses nothing), then :meth:`Notifier.deliver_due`
POSTs the rows that are due. Delivery is *at least once*: a process that dies after the POST
but before recording it sends again, so every request carries ``X-Liftkit-Event-Id`` for
receivers to drop repeats. A row is claimed (its ``next_at`` pushed forward) before it is
sent, so two workers do not send it at the same moment.

Signatures: with a non-empty secret (``${ENV}`` placeholders expanded at send time; the
database keeps them unexpanded) each request has ``X-Liftkit-Timestamp: <unix seconds>`` and
``X-Liftkit-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>``. Receivers
recompute it over the exact body bytes and check the timestamp is recent (:func:`verify` does
both), so a captured request cannot be replayed later.

Failures (non-2xx, timeouts, connection errors) are retried after ``base_delay * 2**(n-1)``
seconds (at most ``max_delay``, times a random jitter in [0.5, 1]) until ``max_attempts``; a
4xx other than 408 and 429 means the request itself is wrong, so it fails at once. A secret
naming an unset variable counts as a failed attempt too (so a restart with it set delivers).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, Row, select, update
from sqlalchemy.dialects import postgresql, sqlite

from liftkit.events.schema import utc_now
from liftkit.registry.playbooks import Webhook
from liftkit.registry.tables import webhook_deliveries as table
from liftkit.warehouse.connections import WarehouseError, expand_env

log = logging.getLogger("liftkit.automation.notify")

_RETRYABLE_4XX = frozenset({408, 429})
_ENV_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Liftkit-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = 300,
) -> bool:
    """Whether ``signature`` is right for ``body`` and ``timestamp`` is within ``tolerance`` s."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if not secret or abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    expected = sign(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


@dataclass(frozen=True)
class Delivery:
    """One outbox row, for listing (the secret is left out)."""

    id: int
    event_id: str
    playbook: str
    url: str
    format: str
    status: str  # "pending" | "sent" | "failed"
    attempts: int
    next_at: datetime
    last_error: str
    created_at: datetime
    sent_at: datetime | None


def _escape(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(playbook: str, event: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook payload summarising a playbook event."""
    name = event.get("playbook") or playbook
    action = event.get("action") or event.get("type") or "event"
    reason = " ".join(str(event.get("reason") or "").split())
    dry = "(dry run) " if event.get("dry_run") else ""
    tail = f": {reason}" if reason else ""
    summary = f"{dry}{name} — {action}{tail}"
    mrkdwn = f"{dry}*{_escape(name)}* — {_escape(action)}{_escape(tail)}"
    if event.get("url"):
        mrkdwn += f" <{event['url']}|details>"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}]
    numbers = event.get("numbers")
    if isinstance(numbers, dict) and numbers:
        pairs = list(numbers.items())[:10]  # Slack allows ten fields in a section
        items = [{"type": "mrkdwn", "text": f"*{_escape(k)}*: {_escape(v)}"} for k, v in pairs]
        blocks.append({"type": "section", "fields": items})
    context = " · ".join(str(event[k]) for k in ("experiment", "type", "at") if event.get(k))
    if context:
        element = {"type": "mrkdwn", "text": _escape(context)}
        blocks.append({"type": "context", "elements": [element]})
    return {"text": _escape(summary), "blocks": blocks}


def body_bytes(format: str, playbook: str, event: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed) for ``event``."""
    payload = slack_payload(playbook, event) if format == "slack" else event
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


class Notifier:
    """Queues playbook events for webhooks and delivers the ones that are due."""

    def __init__(
        self,
        engine: Engine,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_attempts: int = 8,
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        timeout: float = 5.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.random = random.Random()
        self.client = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def enqueue(
        self, playbook: str, event_id: str, webhooks: Sequence[Webhook], event: dict[str, Any]
    ) -> int:
        """One pending row per webhook; an (event_id, url) already queued is skipped."""
        now = self.clock()
        body = json.loads(json.dumps(event, default=str))  # JSON-safe (datetimes as text)
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        added = 0
        with self.engine.begin() as conn:
            for hook in webhooks:
                values = dict(
                    event_id=event_id, playbook=playbook, url=str(hook.url), secret=hook.secret,
                    format=hook.format, body=body, status="pending", attempts=0, next_at=now,
                    last_error="", created_at=now, sent_at=None,
                )  # fmt: skip
                stmt = dialect.insert(table).values(**values)
                stmt = stmt.on_conflict_do_nothing(index_elements=["event_id", "url"])
                added += conn.execute(stmt.returning(table.c.id)).first() is not None
        return added

    def deliver_due(self, *, limit: int = 100) -> int:
        """POST the pending rows that are due (oldest first); returns how many were sent."""
        now = self.clock()
        query = (
            select(table)
            .where(table.c.status == "pending", table.c.next_at <= now)
            .order_by(table.c.next_at, table.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        sent = 0
        for row in rows:
            if not self._claim(row.id, now):
                continue  # another worker has it
            error, retry = self._send(row, now)
            self._record(row, error, retry)
            sent += error is None
        return sent

    def _claim(self, id: int, now: datetime) -> bool:
        claim = (
            update(table)
            .where(table.c.id == id, table.c.status == "pending", table.c.next_at <= now)
            .values(next_at=now + timedelta(seconds=self.timeout * 2 + 30))
        )
        with self.engine.begin() as conn:
            return conn.execute(claim).rowcount == 1

    def _send(self, row: Row[Any], now: datetime) -> tuple[str | None, bool]:
        """None on success, else a short error (never the secret) and whether to retry."""
        host = urlsplit(row.url).hostname or "?"
        try:
            secret = expand_env(row.secret)
        except WarehouseError:
            names = [n for n in _ENV_NAME.findall(row.secret) if n not in os.environ]
            error = f"environment variable {', '.join(names) or '?'} is not set (webhook secret)"
            log.warning("webhook to %s for %s not sent: %s", host, row.playbook, error)
            return error, True
        body = body_bytes(row.format, row.playbook, row.body)
        timestamp = str(int(now.timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "liftkit-webhooks",
            "X-Liftkit-Event-Id": row.event_id,
            "X-Liftkit-Timestamp": timestamp,
        }
        if secret:
            headers["X-Liftkit-Signature"] = sign(secret, timestamp, body)
        try:
            response = self.client.post(row.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error, retry = type(exc).__name__, True
        else:
            if response.is_success:
                return None, False
            code = response.status_code
            error = f"HTTP {code}"
            retry = not (400 <= code < 500) or code in _RETRYABLE_4XX
        log.warning("webhook to %s for %s failed: %s", host, row.playbook, error)
        return error, retry

    def _record(self, row: Row[Any], error: str | None, retry: bool) -> None:
        now = self.clock()
        values: dict[str, Any]
        if error is None:
            values = {"status": "sent", "sent_at": now, "attempts": row.attempts + 1}
        else:
            attempts = row.attempts + 1
            delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
            delay *= self.random.uniform(0.5, 1.0)
            failed = not retry or attempts >= self.max_attempts
            values = {
                "attempts": attempts,
                "last_error": error[:500],
                "status": "failed" if failed else "pending",
                "next_at": now + timedelta(seconds=delay),
            }
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == row.id).values(**values))

    def deliveries(self, playbook: str | None = None, *, limit: int = 100) -> list[Delivery]:
        """The outbox, newest first (optionally one playbook's)."""
        query = select(table).order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
        if playbook is not None:
            query = query.where(table.c.playbook == playbook)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        names = [f.name for f in fields(Delivery)]
        return [Delivery(**{name: row._mapping[name] for name in names}) for row in rows]

    def close(self) -> None:
        self.client.close()
