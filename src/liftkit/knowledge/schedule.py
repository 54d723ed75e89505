"""Sending the knowledge base's reminders from inside the server, every so often.

Each run computes what is due and queues it in the webhook outbox, which drops repeats by
reminder id, so several server processes (or a restart) never send one reminder twice; then it
delivers what is due. ``liftkit kb remind --send`` does the same once, for cron.
"""

from __future__ import annotations

import logging
import threading

from liftkit.automation.notify import Notifier
from liftkit.knowledge import reminders
from liftkit.knowledge.base import KnowledgeBase
from liftkit.platform import Platform

log = logging.getLogger("liftkit.knowledge.schedule")
#: The first run waits this long after start (or the interval, if shorter).
FIRST_RUN_SECONDS = 60.0


class ReminderLoop:
    def __init__(self, platform: Platform, *, interval: float, notifier: Notifier | None = None):
        self.platform = platform
        self.interval = interval
        self.notifier = notifier or Notifier(platform.engine, clock=platform.clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Queue the reminders due now and deliver the outbox; returns how many were new."""
        kb = KnowledgeBase(self.platform)
        settings = kb.settings()
        if not settings.notify:
            return 0
        queued = reminders.send(self.notifier, kb.reminders(), settings)
        self.notifier.deliver_due()
        return queued

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="liftkit-reminders", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.notifier.close()

    def _loop(self) -> None:
        wait = min(self.interval, FIRST_RUN_SECONDS)
        while not self._stop.wait(wait):
            try:
                queued = self.run_once()
                if queued:
                    log.info("queued %d knowledge-base reminder(s)", queued)
            except Exception:  # a bad run must not end the loop; the next one tries again
                log.exception("knowledge-base reminders failed")
            wait = self.interval
