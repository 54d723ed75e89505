"""``GET /sub/{client_key}``: payload changes pushed as server-sent events.

The wire format is GrowthBook's: ``event: features`` with the whole payload JSON (as served by
``/api/features``, encrypted if the connection is) on one ``data:`` line, and an ``id:`` that is
the payload's ETag hash. Like GrowthBook's proxy, nothing is sent on connect but a ``retry:``
hint: SDKs fetch the payload first and stream changes after. A client that reconnects with a
``Last-Event-ID`` other than the current payload's (browsers' EventSource does this by itself)
missed a change and gets the current payload at once.

Each stream is one ``Subscriber`` mailbox in the ``PayloadCache``; the cache pushes the new
``Payload`` (pre-built event bytes) the moment a compile changes it, and only the newest is
kept, so a slow client never queues stale payloads. Idle streams get a comment line every
``sse_keepalive_seconds`` (proxies keep the connection, clients know it is alive). A revoked
key, a server stopping, or the client leaving ends the stream; ``liftkit_sse_clients`` counts
the open ones.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Receive, Scope, Send

from liftkit.api._http import Cors, header, key_error, send_error
from liftkit.api.observability import Metrics
from liftkit.api.payloads import PayloadCache, Subscriber
from liftkit.registry.accounts import token_digest

#: SSE ``retry:`` hint (ms): how long an EventSource waits before reconnecting.
SSE_RETRY_MS = 3000
PING = b": ping\n\n"


class StreamEndpoint:
    """The ASGI endpoint behind the ``/sub/{client_key}`` route."""

    def __init__(self, cache: PayloadCache, metrics: Metrics, keepalive: float, cors: Cors) -> None:
        self.cache = cache
        self.metrics = metrics
        self.keepalive = max(keepalive, 0.05)
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await self.cors.preflight(scope, send, b"GET, OPTIONS")
            return
        cors = self.cors.headers(header(scope, b"origin"))
        client_key = scope["path_params"]["client_key"]
        digest = token_digest(client_key)
        payload = self.cache.get(digest)
        if payload is None:
            status, message = key_error(client_key)
            await send_error(send, status, message, cors)
            return
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
            *cors,
        ]
        if scope["method"] == "HEAD":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        subscriber = self.cache.subscribe(digest)
        last_id = header(scope, b"last-event-id")
        if last_id is not None and last_id.decode("latin-1").strip() != payload.tag:
            subscriber.push(payload)  # it missed a change while reconnecting
        self.metrics.sse_clients.inc()
        watcher = asyncio.create_task(self._watch_disconnect(receive, subscriber))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await self._chunk(send, f"retry: {SSE_RETRY_MS}\n\n".encode())
            await self._pump(send, subscriber)
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            self.cache.unsubscribe(digest, subscriber)
            self.metrics.sse_clients.dec()
        with contextlib.suppress(Exception):  # end the response cleanly if anyone is listening
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send, subscriber: Subscriber) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscriber.wake.wait(), self.keepalive)
            if subscriber.closed:
                return
            if subscriber.wake.is_set():
                subscriber.wake.clear()
                latest, subscriber.latest = subscriber.latest, None
                if latest is not None:
                    await self._chunk(send, latest.event)
                    continue
            await self._chunk(send, PING)

    @staticmethod
    async def _chunk(send: Send, chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    @staticmethod
    async def _watch_disconnect(receive: Receive, subscriber: Subscriber) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        subscriber.closed = True
        subscriber.wake.set()
