"""Built-in exposure logging: batched, in the background, bounded, never in the caller's way.

An exposure says "this user saw this variation of this experiment"; analysis joins them with
metric events. :class:`ExposureLogger` queues them in memory (a bounded buffer: when it is full,
new exposures are dropped and counted), deduplicates per (hash attribute, hash value,
experiment, variation) with a bounded LRU, and a daemon thread POSTs JSON arrays to the ingest
endpoint by batch size or interval. Recording never blocks on I/O and never raises; failures and
drops are visible in :attr:`ExposureLogger.stats`.

The event shape is documented in ``docs/sdk.md`` ("Exposure events").
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from liftkit.sdk import _lifecycle
from liftkit.sdk._transport import Transport, UrllibTransport, describe_error
from liftkit.sdk._types import ExperimentResult

log = logging.getLogger("liftkit.sdk")

_RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class ExposureStats:
    """Counters since the logger started (in this process: a forked child starts from zero)."""

    queued: int
    """Exposures waiting to be sent."""
    sent: int
    """Exposures the server accepted (2xx)."""
    dropped: int
    """Exposures discarded because the queue was full (or the logger closed)."""
    failed: int
    """Exposures given up on after the server refused them or retries ran out."""
    deduplicated: int
    """Exposures not queued because the same user already saw the same variation."""


def exposure_event(
    experiment: Mapping[str, Any], result: ExperimentResult, attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """The wire form of one exposure (see ``docs/sdk.md``)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "type": "exposure",
        "event_id": uuid.uuid4().hex,
        "timestamp": now,
        "experiment_key": str(experiment.get("key") or ""),
        "variation_id": result.variation_id,
        "variation_key": result.key,
        "feature_key": result.feature_id,
        "hash_attribute": result.hash_attribute,
        "hash_value": str(result.hash_value),
        "attributes": dict(attributes),
    }


class ExposureLogger:
    """Sends exposures to ``POST {api_host}/api/v1/events`` with ``Authorization: Bearer``."""

    def __init__(
        self,
        endpoint: str,
        ingest_key: str,
        *,
        transport: Transport | None = None,
        batch_size: int = 100,
        flush_interval: float = 5.0,
        max_queue: int = 10_000,
        dedup_size: int = 100_000,
        request_timeout: float = 5.0,
        max_retries: int = 2,
        retry_delay: float = 0.5,
        exit_timeout: float = 2.0,
    ) -> None:
        if batch_size < 1 or max_queue < 1 or dedup_size < 0:
            raise ValueError("batch_size and max_queue must be positive, dedup_size >= 0")
        self.endpoint = endpoint
        self._headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {ingest_key}",
        }
        self._transport: Transport = transport or UrllibTransport()
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._dedup_size = dedup_size
        self._request_timeout = request_timeout
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._exit_timeout = exit_timeout
        self._seen: OrderedDict[tuple[str, str, str, int], None] = OrderedDict()
        self._closed = False
        self._reset()
        _lifecycle.register_fork_aware(self)
        _lifecycle.register_at_exit(self)

    def __repr__(self) -> str:  # the default repr would be harmless, but say what it is
        return f"ExposureLogger(endpoint={self.endpoint!r})"

    def _reset(self) -> None:
        """Fresh buffer, counters, locks and no thread (at start, and in a forked child)."""
        self._lock = threading.Lock()
        self._settled_cond = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._closing = threading.Event()
        if self._closed:
            self._closing.set()
        self._buffer: deque[dict[str, Any]] = deque()
        self._thread: threading.Thread | None = None
        self._flush_requested = False
        self._accepted = 0
        self._settled = 0
        self._sent = 0
        self._dropped = 0
        self._failed = 0
        self._deduplicated = 0

    @property
    def stats(self) -> ExposureStats:
        with self._lock:
            return ExposureStats(
                queued=len(self._buffer),
                sent=self._sent,
                dropped=self._dropped,
                failed=self._failed,
                deduplicated=self._deduplicated,
            )

    def record(
        self,
        experiment: Mapping[str, Any],
        result: ExperimentResult,
        attributes: Mapping[str, Any],
    ) -> None:
        """Queue one exposure unless already seen; never blocks on I/O, never raises."""
        try:
            self._record(experiment, result, attributes)
        except Exception:
            log.exception("liftkit: could not queue an exposure")

    def _record(
        self,
        experiment: Mapping[str, Any],
        result: ExperimentResult,
        attributes: Mapping[str, Any],
    ) -> None:
        key = (
            result.hash_attribute,
            str(result.hash_value),
            str(experiment.get("key") or ""),
            result.variation_id,
        )
        with self._lock:
            if self._closed:
                self._dropped += 1
                return
            if key in self._seen:
                self._seen.move_to_end(key)
                self._deduplicated += 1
                return
            if len(self._buffer) >= self._max_queue:
                self._dropped += 1
                return
            self._buffer.append(exposure_event(experiment, result, attributes))
            self._accepted += 1
            if self._dedup_size:
                self._seen[key] = None
                if len(self._seen) > self._dedup_size:
                    self._seen.popitem(last=False)
            full = len(self._buffer) >= self._batch_size
            start = self._thread is None
            if start:
                self._thread = threading.Thread(
                    target=self._run, name="liftkit-exposures", daemon=True
                )
        if start:
            assert self._thread is not None
            self._thread.start()
        if full:
            self._wake.set()

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything queued so far; True if it was all settled (sent or failed) in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._accepted
            if self._settled >= target:
                return True
            self._flush_requested = True
        self._wake.set()
        with self._settled_cond:
            while self._settled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._settled_cond.wait(remaining)
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (waiting at most ``timeout``) and stop; later records are dropped."""
        with self._lock:
            self._closed = True
            thread = self._thread
        _lifecycle.unregister_at_exit(self)
        self._closing.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("liftkit: exposure logger still sending after %.1f s", timeout)

    def _close_at_exit(self) -> None:
        self.close(self._exit_timeout)

    def _after_fork_in_child(self) -> None:
        # Whatever the parent had queued is the parent's to send; the dedup memory stays valid.
        self._reset()

    def _run(self) -> None:
        wake, closing = self._wake, self._closing
        while True:
            woken = wake.wait(self._flush_interval)
            wake.clear()
            # Woken by a full batch: send full batches only, the rest waits for the interval.
            with self._lock:
                everything = not woken or self._flush_requested or closing.is_set()
                self._flush_requested = False
            try:
                self._drain(everything)
            except Exception:
                log.exception("liftkit: exposure logging failed")
            if closing.is_set():
                self._drain(True)
                return

    def _drain(self, everything: bool) -> None:
        while True:
            with self._lock:
                if not everything and len(self._buffer) < self._batch_size:
                    return
                n = min(len(self._buffer), self._batch_size)
                batch = [self._buffer.popleft() for _ in range(n)]
            if not batch:
                return
            ok = self._send(batch)
            with self._lock:
                if ok:
                    self._sent += len(batch)
                else:
                    self._failed += len(batch)
                self._settled += len(batch)
                self._settled_cond.notify_all()

    def _send(self, batch: list[dict[str, Any]]) -> bool:
        body = json.dumps(batch, separators=(",", ":"), default=str).encode()
        reason = ""
        for attempt in range(self._max_retries + 1):
            if attempt:
                self._closing.wait(self._retry_delay * 2 ** (attempt - 1))
            try:
                resp = self._transport.post(
                    self.endpoint, self._headers, body, self._request_timeout
                )
            except Exception as exc:
                reason = describe_error(exc)
                continue
            if 200 <= resp.status < 300:
                return True
            reason = f"HTTP {resp.status}"
            if 400 <= resp.status < 500 and resp.status not in _RETRYABLE_CLIENT_ERRORS:
                break
        log.warning(
            "liftkit: dropping %d exposures the server did not take: %s", len(batch), reason
        )
        return False
