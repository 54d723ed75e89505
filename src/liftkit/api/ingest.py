"""``POST /api/v1/events``: the ingest hot path, plain ASGI in front of ``events.Pipeline``.

Order of checks, cheapest first, each with its own answer:

1. ``Authorization: Bearer <ingest key>`` (401 unknown, 403 another kind of key). Keys are
   looked up by digest and remembered for ``KEY_TTL`` seconds, so a revoked key stops working
   within that time without a database read per request.
2. Per-key rate limit, when ``ingest_rate_limit`` is set (429 with Retry-After).
3. Store backlog (503 with Retry-After while the loader catches up).
4. Body size, also after gunzip (413 naming the limit), format and length (400/413).
5. Per-event validation: valid events are kept, each rejection is reported with its index,
   field and reason. 200 when any event was accepted (or the batch was empty), 422 when none.
6. Durable append (group commit); the answer is sent only after ``fdatasync``.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from liftkit.api._http import Cors, Headers, header, read_body, send_error, send_json
from liftkit.events.pipeline import Overloaded, Pipeline, Prepared
from liftkit.events.schema import BadBody, Batch, Limits, parse_batch, utc_now
from liftkit.registry.accounts import Accounts, ApiKey, token_digest

log = logging.getLogger("liftkit.events")

KEY_TTL = 5.0
NDJSON_TYPES = (b"application/x-ndjson", b"application/ndjson", b"application/jsonl")


@dataclass
class IngestStats:
    """Totals since start, for /metrics."""

    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    refused_requests: int = 0


class _Bucket:
    """A token bucket per key: ``rate`` events/s, bursts up to one batch's worth."""

    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class IngestEndpoint:
    def __init__(
        self,
        accounts: Accounts,
        pipeline: Pipeline,
        cors: Cors,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = accounts
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.cors = cors
        self.stats = IngestStats()
        self._clock = clock
        self._keys: dict[str, tuple[float, ApiKey | None]] = {}
        self._buckets: dict[int, _Bucket] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin")
        cors = self.cors.headers(origin)
        if scope["method"] == "OPTIONS":
            await self.cors.preflight(scope, send, b"POST, OPTIONS")
            return
        self.stats.requests += 1
        status, value, extra = await self._handle(scope, receive)
        if status >= 400 and status != 422:
            self.stats.refused_requests += 1
        if isinstance(value, str):
            await send_error(send, status, value, [*cors, *extra])
        else:
            await send_json(send, status, value, [*cors, *extra])

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, object, Headers]:
        key, status, problem = await self._authenticate(scope)
        if key is None:
            challenge = [(b"www-authenticate", b'Bearer realm="liftkit ingest"')]
            return status, problem, challenge if status == 401 else []
        settings = self.settings
        retry = self._rate_limited(key.id)
        if retry is not None:
            return (
                429,
                f"over this key's limit of {settings.ingest_rate_limit:g} events/s",
                [(b"retry-after", str(retry).encode())],
            )
        busy = self.pipeline.overloaded()
        if busy is not None:
            return 503, busy, [(b"retry-after", b"5")]
        limit = settings.ingest_max_body_mb << 20
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return 413, _too_large(limit), []
        body = await read_body(receive, limit)
        if body is None:
            return 413, _too_large(limit), []
        encoding = (header(scope, b"content-encoding") or b"").strip().lower()
        if encoding == b"gzip":
            try:
                body = _gunzip(body, limit)
            except ValueError as error:
                return (413 if "limit" in str(error) else 400), str(error), []
        elif encoding not in (b"", b"identity"):
            return 415, "Content-Encoding must be gzip or identity", []
        content_type = (header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        now = utc_now()
        limits = Limits(
            now=now.replace(tzinfo=None),
            max_future_seconds=settings.ingest_max_future_seconds,
            max_age_days=settings.ingest_max_age_days or None,
            max_events=settings.ingest_max_batch,
        )
        pipeline = self.pipeline
        ndjson = content_type in NDJSON_TYPES

        def prepare() -> tuple[Batch, Prepared]:
            batch = parse_batch(body, limits, ndjson=ndjson)
            return batch, pipeline.prepare(batch, now)

        try:
            batch, prepared = await anyio.to_thread.run_sync(prepare)
        except BadBody as error:
            return (413 if error.too_large else 400), str(error), []
        self._charge(key.id, batch.size)
        try:
            await pipeline.write(prepared)
        except Overloaded as error:
            return 503, f"ingest is overloaded: {error}", [(b"retry-after", b"1")]
        except OSError as error:
            log.error("events: could not make %d events durable: %s", len(batch.events), error)
            return 503, "events could not be written to disk; retry", [(b"retry-after", b"5")]
        if prepared.exposures:
            await anyio.to_thread.run_sync(pipeline.count, prepared)
        self.stats.accepted += len(batch.events)
        self.stats.rejected += len(batch.rejected)
        result = {
            "accepted": len(batch.events),
            "rejected": [r.as_dict() for r in batch.rejected],
        }
        return (422 if batch.rejected and not batch.events else 200), result, []

    async def _authenticate(self, scope: Scope) -> tuple[ApiKey | None, int, str]:
        auth = header(scope, b"authorization")
        if auth is None or auth[:7].lower() != b"bearer ":
            return None, 401, "send the ingest key as 'Authorization: Bearer <key>'"
        token = auth[7:].strip().decode("latin-1")
        digest = token_digest(token)
        now = self._clock()
        cached = self._keys.get(digest)
        if cached is None or cached[0] < now:
            key = await anyio.to_thread.run_sync(self.accounts.resolve_key, token)
            if len(self._keys) > 10_000:
                self._keys.clear()
            cached = self._keys[digest] = (now + KEY_TTL, key)
        key = cached[1]
        if key is None:
            return None, 401, "unknown or revoked ingest key"
        if key.type != "ingest":
            message = f"{key.prefix}… is a {key.type} key; POST /api/v1/events takes an ingest key"
            return None, 403, message
        return key, 200, ""

    def _rate_limited(self, key_id: int) -> int | None:
        """Seconds to wait when the key's bucket is empty, else None."""
        rate = self.settings.ingest_rate_limit
        if rate <= 0:
            return None
        bucket = self._bucket(key_id, rate)
        if bucket.tokens >= 1:
            return None  # a batch may overdraw; the debt is waited off before the next one
        return max(1, math.ceil((1 - bucket.tokens) / rate))

    def _charge(self, key_id: int, events: int) -> None:
        rate = self.settings.ingest_rate_limit
        if rate > 0:
            self._bucket(key_id, rate).tokens -= events

    def _bucket(self, key_id: int, rate: float) -> _Bucket:
        now = self._clock()
        burst = max(rate, float(self.settings.ingest_max_batch))
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        return bucket


def _too_large(limit: int) -> str:
    return (
        f"body larger than the limit of {limit >> 20} MB (ingest_max_body_mb); send smaller batches"
    )


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise ValueError(f"body is not valid gzip: {error}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ValueError("unzipped " + _too_large(limit))
    if not inflater.eof:
        raise ValueError("body is not valid gzip: truncated")
    return out


def routes(endpoint: IngestEndpoint) -> list[Route]:
    return [Route("/api/v1/events", endpoint, methods=["POST", "OPTIONS"])]
