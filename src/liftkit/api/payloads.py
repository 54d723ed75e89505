"""The payload cache: every live SDK connection's payload, compiled ahead of the requests.

The hot paths (``/api/features``, ``/sub``, remote evaluation, OFREP) never touch the database:
they look the client key's digest up in a dict and serve bytes compiled here. A compile reads
ONE registry snapshot and builds every connection's payload from it, so all connections of a
process agree on what is live; it runs in a worker thread so the event loop keeps serving.

Recompiles happen

- when this process publishes (``registry.on_publish``, handed to the event loop thread-safely);
- when another process publishes: PostgreSQL NOTIFY (LISTEN on ``NOTIFY_CHANNEL``, with a slow
  epoch poll as a safety net), or on SQLite by polling the epoch counter every
  ``change_poll_seconds``;
- at the next rule-schedule boundary (``next_change_at``).

Requests arriving while a compile runs are coalesced into one more compile, so a burst of
publishes costs at most two. A failed compile is logged and the previous payloads keep being
served. Each connection's ``Payload`` object is replaced only when its bytes change, which is
how SSE subscribers know whether to be told.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from liftkit.api.observability import Metrics
from liftkit.platform import Platform
from liftkit.registry.accounts import token_digest
from liftkit.registry.database import NOTIFY_CHANNEL, is_postgres
from liftkit.registry.payload import compile_payload, encrypt_payload, to_json
from liftkit.registry.store import Published
from liftkit.sdk._engine import CompiledPayload

log = logging.getLogger("liftkit.delivery")

#: Bodies smaller than this are not worth a gzip variant (headers dominate).
GZIP_MIN_BYTES = 1024
#: How often PostgreSQL deployments re-read the epoch in case a NOTIFY was lost.
SAFETY_POLL_SECONDS = 30.0
#: After a failed compile, how soon to try again.
RETRY_SECONDS = 5.0
_NOT_COMPILED = "the SDK payloads have not been compiled yet"


@dataclass(frozen=True, slots=True, eq=False)
class Payload:
    """One SDK connection's payload, ready to serve (immutable; replaced when it changes)."""

    key_id: int
    environment: str
    project: str | None
    #: What ``GET /api/features`` serves (encrypted when the connection is).
    body: bytes
    #: Strong ETag of ``body``, quotes included, as header bytes.
    etag: bytes
    #: ``body`` gzip-compressed, or None when too small to bother.
    gzip_body: bytes | None
    gzip_etag: bytes
    #: The plaintext payload (never encrypted): for remote evaluation and OFREP.
    data: dict[str, Any]
    engine: CompiledPayload
    #: The SSE frame announcing this payload (``id`` is the ETag's hash).
    event: bytes
    #: The ETag without quotes (also the SSE event id).
    tag: str
    #: ``len(body)`` as header bytes.
    content_length: bytes


class Subscriber:
    """One open SSE stream's mailbox: only the newest payload matters, so no queue."""

    __slots__ = ("closed", "latest", "wake")

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.latest: Payload | None = None
        self.closed = False

    def push(self, payload: Payload | None) -> None:
        """Deliver a new payload, or None when the key was revoked (the stream then ends)."""
        if payload is None:
            self.closed = True
        else:
            self.latest = payload
        self.wake.set()


@dataclass
class _Build:
    payloads: dict[str, Payload]
    epoch: int
    next_change_at: datetime | None


def _etag(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def _make_payload(
    key_id: int,
    environment: str,
    project: str | None,
    body: bytes,
    data: dict[str, Any],
    engine: CompiledPayload,
) -> Payload:
    tag = _etag(body)
    zipped = gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
    return Payload(
        key_id=key_id,
        environment=environment,
        project=project,
        body=body,
        etag=f'"{tag}"'.encode(),
        gzip_body=zipped,
        gzip_etag=f'"{tag}-gzip"'.encode(),
        data=data,
        engine=engine,
        event=b"id: " + tag.encode() + b"\nevent: features\ndata: " + body + b"\n\n",
        tag=tag,
        content_length=str(len(body)).encode(),
    )


class PayloadCache:
    """Compiled payloads by client-key digest, kept current for the life of the app."""

    def __init__(self, platform: Platform, metrics: Metrics) -> None:
        self.platform = platform
        self.metrics = metrics
        self._payloads: dict[str, Payload] = {}
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._seen_epoch: int | None = None
        self._next_change_at: datetime | None = None
        self._failing = False
        self._not_ready: str | None = _NOT_COMPILED
        self._warned: set[str] = set()

    # -- reading (event loop only) -------------------------------------------------------------

    def lookup(self, client_key: str) -> Payload | None:
        """The payload of a live SDK key, or None (unknown, revoked, or not an SDK key)."""
        return self._payloads.get(token_digest(client_key))

    def get(self, digest: str) -> Payload | None:
        return self._payloads.get(digest)

    def not_ready_reason(self) -> str | None:
        """Why the server cannot serve SDKs yet (until the first compile), else None."""
        return self._not_ready

    @property
    def connections(self) -> int:
        return len(self._payloads)

    def subscribe(self, digest: str) -> Subscriber:
        subscriber = Subscriber()
        self._subscribers.setdefault(digest, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, digest: str, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(digest)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[digest]

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Compile once (so the app starts ready), then watch for changes in the background."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.platform.registry.on_publish.append(self._on_publish)
        await self.compile()
        self._tasks = [
            asyncio.create_task(self._compile_loop(), name="liftkit-payload-compiler"),
            asyncio.create_task(self._watch(), name="liftkit-change-watcher"),
        ]

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.platform.registry.on_publish.remove(self._on_publish)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                subscriber.push(None)
        self._loop = None

    def request_compile(self) -> None:
        """Ask for a recompile soon (event loop thread only; bursts coalesce)."""
        if self._wake is not None:
            self._wake.set()

    def _on_publish(self, published: Published) -> None:
        # Called synchronously in whichever thread published: hand over to the event loop.
        self.metrics.publishes.inc()
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nothing to do
            loop.call_soon_threadsafe(self._published, published.epoch)

    def _published(self, epoch: int) -> None:
        self._seen_epoch = epoch if self._seen_epoch is None else max(self._seen_epoch, epoch)
        self.request_compile()

    # -- compiling -----------------------------------------------------------------------------

    async def compile(self) -> bool:
        """Compile every connection now; True on success (failures keep the old payloads)."""
        started = time.perf_counter()
        try:
            build = await asyncio.to_thread(self._build, self._payloads)
        except Exception as exc:
            log.exception("compiling SDK payloads failed; the previous payloads stay in service")
            self._failing = True
            if self._not_ready is not None:
                self._not_ready = f"compiling the SDK payloads failed ({type(exc).__name__})"
            return False
        self.metrics.payload_compiles.inc()
        self.metrics.payload_compile_seconds.observe(time.perf_counter() - started)
        previous, self._payloads = self._payloads, build.payloads
        self._seen_epoch = (
            build.epoch if self._seen_epoch is None else max(self._seen_epoch, build.epoch)
        )
        self._next_change_at = build.next_change_at
        self._failing = False
        self._not_ready = None
        self._notify(previous, build.payloads)
        return True

    def _notify(self, previous: dict[str, Payload], current: dict[str, Payload]) -> None:
        for digest, subscribers in list(self._subscribers.items()):
            new = current.get(digest)
            if new is not None and new is previous.get(digest):
                continue
            for subscriber in list(subscribers):
                subscriber.push(new)

    def _build(self, previous: dict[str, Payload]) -> _Build:
        """Runs in a worker thread: one snapshot, every connection's bytes."""
        registry = self.platform.registry
        epoch = registry.epoch()  # read first: a publish racing the snapshot is seen next time
        snapshot = registry.snapshot()
        keys = self.platform.accounts.sdk_digests()
        now = self.platform.clock()
        salt = self.platform.settings.secure_attribute_salt
        scopes: dict[tuple[str, str | None], dict[str, Any]] = {}
        engines: dict[tuple[str, str | None], CompiledPayload] = {}
        next_change: datetime | None = None
        payloads: dict[str, Payload] = {}
        for digest, key in keys.items():
            scope = (key.environment or "", key.project)
            data = scopes.get(scope)
            if data is None:
                compiled = compile_payload(
                    snapshot, environment=scope[0], now=now, project=scope[1], salt=salt
                )
                for warning in compiled.warnings:
                    if warning not in self._warned:
                        self._warned.add(warning)
                        log.warning("SDK payload for environment %r: %s", scope[0], warning)
                data = scopes[scope] = compiled.payload
                if compiled.next_change_at is not None:
                    at = compiled.next_change_at
                    next_change = at if next_change is None else min(next_change, at)
            secret = key.config.get("encryption_key")
            served = encrypt_payload(data, str(secret)) if secret else data
            body = to_json(served).encode()
            old = previous.get(digest)
            if old is not None and old.body == body and old.key_id == key.id:
                payloads[digest] = old  # unchanged: same object, so no SSE notice
                continue
            engine = engines.get(scope)
            if engine is None:
                engine = engines[scope] = CompiledPayload(data)
            payloads[digest] = _make_payload(key.id, scope[0], scope[1], body, data, engine)
        return _Build(payloads, epoch, next_change)

    def _seconds_to_next_compile(self) -> float | None:
        delays: list[float] = []
        if self._failing:
            delays.append(RETRY_SECONDS)
        if self._next_change_at is not None:
            remaining = (self._next_change_at - self.platform.clock()).total_seconds()
            delays.append(max(remaining, 0.0) + 0.005)  # just past the boundary
        return min(delays) if delays else None

    async def _compile_loop(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._seconds_to_next_compile())
            wake.clear()  # requests made from here on cause another compile
            await self.compile()

    # -- other processes' publishes ------------------------------------------------------------

    async def _watch(self) -> None:
        if is_postgres(self.platform.engine):
            await self._listen_postgres()
        else:
            await self._poll_epoch(max(self.platform.settings.change_poll_seconds, 0.01))

    async def _check_epoch(self) -> None:
        try:
            epoch = await asyncio.to_thread(self.platform.registry.epoch)
        except Exception as exc:
            log.warning("reading the change counter failed: %s", type(exc).__name__)
            return
        if epoch != self._seen_epoch:
            self._seen_epoch = epoch
            self.request_compile()

    async def _poll_epoch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._check_epoch()

    async def _listen_postgres(self) -> None:
        import psycopg

        url = self.platform.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 0.5
                    await self._check_epoch()  # whatever happened while not listening
                    while True:
                        async for notice in conn.notifies(timeout=SAFETY_POLL_SECONDS):
                            self._noticed(notice.payload)
                        await self._check_epoch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: poll meanwhile, then listen again
                log.warning(
                    "listening for changes on PostgreSQL failed (%s); retrying in %.1f s",
                    type(exc).__name__,
                    backoff,
                )
                await asyncio.sleep(backoff)
                await self._check_epoch()
                backoff = min(backoff * 2, SAFETY_POLL_SECONDS)

    def _noticed(self, payload: str) -> None:
        try:
            epoch = int(payload)
        except ValueError:
            self.request_compile()
            return
        if epoch != self._seen_epoch:
            self._seen_epoch = epoch
            self.request_compile()
