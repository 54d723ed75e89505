"""Keeping a payload fresh from the server: conditional polling, server-sent events, backoff.

Two daemon threads per client:

* the *refresher* fetches ``GET /api/features/{key}`` with ``If-None-Match`` whenever the last
  confirmation is older than the TTL (so readers never wait: stale-while-revalidate), and backs
  off with jitter while the server is unreachable;
* the *streamer* holds ``GET /sub/{key}`` open and applies ``features`` events (the full payload)
  or asks the refresher to refetch on ``features-updated``; it reconnects with capped,
  jittered exponential backoff, and asks for a catch-up fetch after every (re)connect.

A "confirmation" is any moment the client knows its payload is current: a 200 or 304, a
``features`` event, or any line (heartbeat included) on a stream that has been in sync since it
connected. Fetches and applied events are serialised by one lock held across the request, so an
older response can never overwrite a newer pushed payload.

After ``fork`` the child forgets the parent's threads, locks and connection, and restarts on
first use (``ensure_started``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from liftkit.sdk import _lifecycle
from liftkit.sdk._engine import CompiledPayload
from liftkit.sdk._transport import LineStream, Transport, describe_error
from liftkit.sdk.errors import LiftkitError

log = logging.getLogger("liftkit.sdk")

UNSUPPORTED_STREAM_STATUSES = frozenset({404, 405, 501})


class Backoff:
    """Exponential delays with "equal jitter": half fixed, half random, capped."""

    def __init__(self, initial: float, maximum: float, factor: float = 2.0) -> None:
        self.initial = max(initial, 0.0)
        self.maximum = max(maximum, self.initial)
        self.factor = factor
        self._next = self.initial

    def next(self) -> float:
        base = self._next
        self._next = min(self._next * self.factor, self.maximum)
        return base / 2 + random.uniform(0, base / 2)

    def reset(self) -> None:
        self._next = self.initial


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: str
    id: str | None = None


class SSEParser:
    """Incremental parser for the ``text/event-stream`` format, one line at a time."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self.retry: float | None = None
        """The server's ``retry:`` hint in seconds, if it sent one."""

    def feed(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None  # a comment: servers send these as heartbeats
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value) / 1000
        return None


class RemoteSource:
    """Fetches and streams one client key's payload, handing each new payload to ``on_payload``."""

    def __init__(
        self,
        *,
        api_host: str,
        client_key: str,
        transport: Transport,
        on_payload: Callable[[CompiledPayload], None],
        decryption_key: str | None = None,
        ttl: float = 60.0,
        streaming: bool = True,
        request_timeout: float = 10.0,
        stream_read_timeout: float = 90.0,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 60.0,
    ) -> None:
        base = api_host.rstrip("/")
        key = urllib.parse.quote(client_key, safe="")
        self.features_url = f"{base}/api/features/{key}"
        self.stream_url = f"{base}/sub/{key}"
        self._transport = transport
        self._on_payload = on_payload
        self._decryption_key = decryption_key
        self._ttl = ttl
        self._streaming = streaming
        self._request_timeout = request_timeout
        self._stream_read_timeout = stream_read_timeout
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay

        self.last_confirmed: float | None = None
        """``time.monotonic()`` of the last confirmation, or None if there never was one."""
        self._etag: str | None = None
        self._closed = False
        self._running = False
        self._threads: list[threading.Thread] = []
        self._stream: LineStream | None = None
        self._conn_gen = 0
        self._synced_gen = -1
        self._force = False
        self._failing = False
        self._init_sync_primitives(first_attempt_done=False)
        _lifecycle.register_fork_aware(self)

    def _init_sync_primitives(self, *, first_attempt_done: bool) -> None:
        self._fetch_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._first_attempt = threading.Event()
        if first_attempt_done:
            self._first_attempt.set()

    # -- lifecycle ---------------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the background threads unless they run (cheap; called on every ``for_user``)."""
        if self._running or self._closed:
            return
        with self._state_lock:
            if self._running or self._closed:
                return
            self._running = True
            loops = [("liftkit-refresh", self._refresh_loop)]
            if self._streaming:
                loops.append(("liftkit-stream", self._stream_loop))
            self._threads = [threading.Thread(target=f, name=n, daemon=True) for n, f in loops]
            for t in self._threads:
                t.start()

    def wait_first_attempt(self, timeout: float) -> bool:
        """Block until the first fetch has finished (either way); False on timeout."""
        return self._first_attempt.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        with self._state_lock:
            self._closed = True
            self._stop.set()
            self._wake.set()
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)

    def _after_fork_in_child(self) -> None:
        # The parent's threads are gone and may have held our locks mid-operation; the parent
        # still owns its stream connection, so only drop our handle on it.
        stream, self._stream = self._stream, None
        if stream is not None:
            abandon = getattr(stream, "abandon", None)
            if callable(abandon):
                abandon()
        self._init_sync_primitives(first_attempt_done=True)
        self._threads = []
        self._running = False
        self._conn_gen += 1
        self._force = True  # the child cannot know what it missed: check on first use
        if self._closed:
            self._stop.set()

    # -- fetching ----------------------------------------------------------------------------

    def request_fetch(self) -> None:
        """Ask the refresher to fetch now, ignoring TTL and failure backoff."""
        self._force = True
        self._wake.set()

    def fetch(self) -> bool:
        """One conditional GET; applies a new payload. True on 200 or 304 (a confirmation)."""
        with self._fetch_lock:
            try:
                return self._fetch_locked()
            finally:
                self._first_attempt.set()

    def _fetch_locked(self) -> bool:
        gen = self._conn_gen
        headers = {"Accept": "application/json"}
        etag = self._etag
        if etag:
            headers["If-None-Match"] = etag
        try:
            resp = self._transport.get(self.features_url, headers, self._request_timeout)
        except Exception as exc:
            self._note_failure(f"fetching features failed: {describe_error(exc)}")
            return False
        if resp.status == 304 and etag:
            self._confirm(gen)
            return True
        if resp.status != 200:
            self._note_failure(f"fetching features failed: HTTP {resp.status}")
            return False
        try:
            payload = CompiledPayload.from_json(resp.body, decryption_key=self._decryption_key)
        except LiftkitError as exc:
            self._note_failure(f"the server sent an unusable payload: {exc}")
            return False
        except Exception as exc:  # an engine bug must not kill the refresher
            self._note_failure(f"the server sent an unusable payload: {describe_error(exc)}")
            return False
        self._etag = resp.headers.get("etag") or None
        self._on_payload(payload)
        self._confirm(gen)
        return True

    def _confirm(self, gen: int) -> None:
        self._synced_gen = gen
        self.last_confirmed = time.monotonic()
        if self._failing:
            self._failing = False
            log.info("liftkit: connection to the feature server restored")

    def _note_failure(self, message: str) -> None:
        # Warn once per outage; a server down for an hour should not flood the log.
        if self._failing:
            log.debug("liftkit: %s", message)
        else:
            self._failing = True
            log.warning("liftkit: %s; retrying in the background", message)

    def _refresh_loop(self) -> None:
        backoff = Backoff(self._reconnect_delay, self._max_reconnect_delay)
        retry_at = 0.0
        stop, wake = self._stop, self._wake
        while not stop.is_set():
            now = time.monotonic()
            if self._force:
                due = now
            else:
                confirmed = self.last_confirmed
                due = now if confirmed is None else confirmed + self._ttl
                due = max(due, retry_at)
            if due > now:
                wake.wait(due - now)
                wake.clear()
                continue
            self._force = False
            try:
                ok = self.fetch()
            except Exception:  # defensive: on_payload is the client's code
                log.exception("liftkit: refresh failed")
                ok = False
            if ok:
                backoff.reset()
                retry_at = 0.0
            else:
                retry_at = time.monotonic() + backoff.next()

    # -- streaming ---------------------------------------------------------------------------

    def _stream_loop(self) -> None:
        backoff = Backoff(self._reconnect_delay, self._max_reconnect_delay)
        stop = self._stop
        warned = False
        while not stop.is_set():
            try:
                stream = self._transport.stream(self.stream_url, {}, self._stream_read_timeout)
            except Exception as exc:
                if not warned:
                    log.info("liftkit: streaming connection failed: %s", describe_error(exc))
                    warned = True
            else:
                with self._state_lock:
                    if stop.is_set():
                        stream.close()
                        return
                    self._stream = stream
                    self._conn_gen += 1
                try:
                    if stream.status in UNSUPPORTED_STREAM_STATUSES:
                        log.warning(
                            "liftkit: the server does not stream updates (HTTP %d); polling "
                            "every %.0f s instead",
                            stream.status,
                            self._ttl,
                        )
                        return
                    if stream.status == 200:
                        if self._consume(stream, backoff):
                            warned = False
                    elif not warned:
                        log.info("liftkit: streaming connection refused: HTTP %d", stream.status)
                        warned = True
                except Exception as exc:
                    if not stop.is_set() and not warned:
                        log.info("liftkit: streaming connection lost: %s", describe_error(exc))
                        warned = True
                finally:
                    with self._state_lock:
                        if self._stream is stream:
                            self._stream = None
                    stream.close()
            stop.wait(backoff.next())

    def _consume(self, stream: LineStream, backoff: Backoff) -> bool:
        """Read events until the stream ends; True if anything arrived."""
        gen = self._conn_gen
        self.request_fetch()  # catch up on whatever was published while disconnected
        parser = SSEParser()
        got_any = False
        for line in stream:
            if self._stop.is_set():
                break
            if not got_any:
                got_any = True
                backoff.reset()
            if self._synced_gen == gen:
                self.last_confirmed = time.monotonic()
            event = parser.feed(line)
            if event is not None:
                self._handle_event(event, gen)
            if parser.retry is not None:  # the server's own reconnection delay
                backoff.initial = min(parser.retry, backoff.maximum)
                backoff.reset()
                parser.retry = None
        return got_any

    def _handle_event(self, event: SSEEvent, gen: int) -> None:
        if event.event == "features-updated":
            self.request_fetch()
        elif event.event == "features":
            with self._fetch_lock:
                try:
                    payload = CompiledPayload.from_json(
                        event.data, decryption_key=self._decryption_key
                    )
                except Exception as exc:
                    log.warning("liftkit: ignoring an unusable streamed payload: %s", exc)
                    self.request_fetch()
                    return
                self._etag = None  # the payload no longer matches the last ETag
                self._on_payload(payload)
                self._confirm(gen)
