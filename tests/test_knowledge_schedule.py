"""The reminder loop the server runs: due reminders reach the webhook once, through the outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from liftkit.automation.notify import Notifier
from liftkit.knowledge.schedule import ReminderLoop
from liftkit.platform import Platform
from liftkit.settings import Settings

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
URL = "https://hooks.example.com/kb"


def test_due_reminders_are_sent_once(database_url: str, tmp_path: Path) -> None:
    now = [START]
    platform = Platform(
        Settings(data_dir=tmp_path, database_url=database_url), clock=lambda: now[0]
    )
    platform.bootstrap()
    sent: list[dict[str, object]] = []

    def receive(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(204)

    notifier = Notifier(
        platform.engine, transport=httpx.MockTransport(receive), clock=lambda: now[0]
    )
    loop = ReminderLoop(platform, interval=3600, notifier=notifier)
    try:
        registry = platform.registry
        registry.save("experiments", {"key": "checkout", "status": "running",
                      "phases": [{"started_at": START.isoformat()}]}, "user:a")  # fmt: skip
        registry.save("briefs", {"key": "checkout", "experiment": "checkout",
                      "owners": ["ana@example.com"], "criteria": {"min_days": 14},
                      "planned_end": "2026-03-15"}, "user:a")  # fmt: skip
        assert loop.run_once() == 0  # no webhook configured: nothing is queued
        registry.save("knowledge-settings", {"key": "default", "notify": [{"url": URL}]}, "user:a")
        assert loop.run_once() == 0  # 13 days before the end: nothing due
        now[0] = START + timedelta(days=11)
        assert loop.run_once() == 1
        assert [(e["kind"], e["key"]) for e in sent] == [("ending", "checkout")]
        assert loop.run_once() == 0 and len(sent) == 1  # never twice
    finally:
        loop.stop()
        platform.close()
