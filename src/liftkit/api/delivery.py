"""The SDK hot paths: payloads, streaming, remote evaluation and OFREP, as plain ASGI routes.

Each endpoint is a small ASGI callable behind a Starlette ``Route`` (no ``Request`` object, no
FastAPI serialisation): ``GET /api/features/{key}`` is a dict lookup by the key's digest and
a write of bytes compiled by ``PayloadCache`` with their ETag, so it does no database work and
no JSON encoding per request (see DESIGN.md, "Hot paths").

- ``GET /api/features/{client_key}`` — the payload; ``If-None-Match`` → 304; gzip when asked
  and worth it; ``Cache-Control: public, max-age=<payload_max_age>, stale-while-revalidate``.
- ``GET /sub/{client_key}`` — server-sent events (``liftkit.api.streaming``).
- ``POST /api/eval/{client_key}`` — GrowthBook remote evaluation.
- ``POST /ofrep/v1/evaluate/flags[/{key}]`` — OpenFeature OFREP, the key in ``Authorization:
  Bearer`` or ``X-API-Key``; ``GET /ofrep/v1/configuration``.

Unknown or revoked client keys get 404 (path) or 401 (header); secret and ingest keys get 403
without being looked up. Client keys never appear in anything this module logs.

``HotPaths`` serves the payload endpoint ahead of Starlette's router and middleware, which
otherwise cost several times the endpoint itself (benchmarks/README.md, "Flag delivery").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from hashlib import sha256
from typing import Any

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from liftkit.api import evaluation
from liftkit.api._http import (
    JSON,
    MAX_BODY_BYTES,
    NON_SDK_PREFIXES,
    Cors,
    Headers,
    RedactClientKeys,
    dumps,
    header,
    key_error,
    read_body,
    redact_client_keys,
    respond,
    send_error,
    send_json,
)
from liftkit.api.observability import Metrics
from liftkit.api.payloads import Payload, PayloadCache
from liftkit.api.streaming import StreamEndpoint
from liftkit.platform import Platform

#: GrowthBook's SDKs open the ``/sub`` stream only for servers that announce it this way.
SSE_SUPPORT = (b"x-sse-support", b"enabled")

__all__ = ["HotPaths", "RedactClientKeys", "redact_client_keys", "routes"]


def _etag_matches(if_none_match: bytes, payload: Payload) -> bool:
    """RFC 9110 weak comparison against either representation's ETag (same payload version)."""
    if if_none_match in (payload.etag, payload.gzip_etag):
        return True
    tag = payload.tag.encode()
    for candidate in if_none_match.split(b","):
        value = candidate.strip().removeprefix(b"W/").strip(b'"').removesuffix(b"-gzip")
        if value in (tag, b"*"):
            return True
    return False


def _accepts_gzip(accept_encoding: bytes) -> bool:
    for part in accept_encoding.lower().split(b","):
        coding, _, params = part.strip().partition(b";")
        if coding.strip() == b"gzip":
            return params.replace(b" ", b"") not in (b"q=0", b"q=0.0", b"q=0.00", b"q=0.000")
    return False


class FeaturesEndpoint:
    """``GET /api/features/{client_key}``: precompiled bytes, ETag/304, optional gzip."""

    def __init__(self, cache: PayloadCache, max_age: int, cors: Cors) -> None:
        self.cache = cache
        self.cors = cors
        self._plain: dict[bytes, Headers] = {}
        swr = max(3600, max_age)
        self.cache_control = (
            b"cache-control",
            f"public, max-age={max_age}, stale-while-revalidate={swr}".encode(),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await self.cors.preflight(scope, send, b"GET, OPTIONS")
            return
        await self.serve(scope, scope["path_params"]["client_key"], send)

    async def serve(self, scope: Scope, client_key: str, send: Send) -> int:
        """Answer a GET or HEAD for ``client_key``; returns the status sent."""
        payload = self.cache.get(sha256(client_key.encode()).hexdigest())
        if_none_match = accept_encoding = origin = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"accept-encoding":
                accept_encoding = value
            elif name == b"origin":
                origin = value
        if payload is None:
            status, message = key_error(client_key)
            await send_error(send, status, message, self.cors.headers(origin))
            return status
        zipped = payload.gzip_body is not None
        use_gzip = zipped and accept_encoding is not None and _accepts_gzip(accept_encoding)
        head = scope["method"] == "HEAD"
        if not use_gzip and if_none_match is None and self.cors.any:
            # The common case, one prebuilt header list per payload version.
            headers = self._plain.get(payload.etag)
            if headers is None:
                if len(self._plain) > 4096:
                    self._plain.clear()
                headers = self._plain[payload.etag] = self._headers(payload, False, None)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if head else payload.body})
            return 200
        headers = self._headers(payload, use_gzip, origin)
        if if_none_match is not None and _etag_matches(if_none_match, payload):
            del headers[-2:]  # no content-type or content-length on a 304
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 304
        body = (payload.gzip_body or b"") if use_gzip else payload.body
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})
        return 200

    def _headers(self, payload: Payload, use_gzip: bool, origin: bytes | None) -> Headers:
        """A 200's headers; content-type and content-length last (a 304 drops them)."""
        headers = [
            (b"etag", payload.gzip_etag if use_gzip else payload.etag),
            self.cache_control,
            SSE_SUPPORT,
            *self.cors.headers(origin),
        ]
        if payload.gzip_body is not None:
            headers.append((b"vary", b"Accept-Encoding"))
        if use_gzip:
            headers.append((b"content-encoding", b"gzip"))
            length = str(len(payload.gzip_body or b"")).encode()
        else:
            length = payload.content_length
        headers += [JSON, (b"content-length", length)]
        return headers


class RemoteEvalEndpoint:
    """``POST /api/eval/{client_key}``: evaluate every feature for one user, server-side."""

    def __init__(self, cache: PayloadCache, cors: Cors) -> None:
        self.cache = cache
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await self.cors.preflight(scope, send, b"POST, OPTIONS")
            return
        cors = self.cors.headers(header(scope, b"origin"))
        client_key = scope["path_params"]["client_key"]
        payload = self.cache.lookup(client_key)
        if payload is None:
            status, message = key_error(client_key)
            await send_error(send, status, message, cors)
            return
        raw = await read_body(receive)
        if raw is None:
            await send_error(send, 413, f"body: larger than {MAX_BODY_BYTES} bytes", cors)
            return
        try:
            user = evaluation.remote_eval_user(evaluation.parse_json(raw))
        except evaluation.BadRequest as exc:
            await send_error(send, 400, str(exc), cors)
            return
        await send_json(send, 200, evaluation.remote_evaluate(payload, user), cors)


class OfrepEndpoint:
    """OFREP single (``flag`` path parameter present) and bulk evaluation."""

    def __init__(self, cache: PayloadCache, cors: Cors) -> None:
        self.cache = cache
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await self.cors.preflight(scope, send, b"POST, OPTIONS")
            return
        token = origin = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
                if scheme.lower() == "bearer" and credentials.strip():
                    token = credentials.strip()
            elif name == b"x-api-key" and token is None:
                token = value.decode("latin-1").strip()
            elif name == b"origin":
                origin = value
            elif name == b"if-none-match":
                if_none_match = value
        cors = self.cors.headers(origin)
        flag = scope["path_params"].get("flag")
        payload = self.cache.lookup(token) if token else None
        if payload is None:
            status = 403 if token and token.startswith(NON_SDK_PREFIXES) else 401
            details = (
                "OFREP takes an SDK client key, not a secret or ingest key"
                if status == 403
                else "an SDK client key is required (Authorization: Bearer <key> or X-API-Key)"
            )
            body: dict[str, Any] = {"errorCode": "GENERAL", "errorDetails": details}
            if flag is not None:
                body["key"] = flag
            await send_json(send, status, body, cors)
            return
        raw = await read_body(receive)
        if raw is None:
            details = f"body: larger than {MAX_BODY_BYTES} bytes"
            await send_json(send, 413, {"errorCode": "PARSE_ERROR", "errorDetails": details}, cors)
            return
        if flag is not None:
            status, result = evaluation.ofrep_single(payload, flag, raw)
            await send_json(send, status, result, cors)
            return
        status, out, etag = evaluation.ofrep_bulk(payload, raw)
        headers = [JSON, (b"cache-control", b"private, no-cache"), *cors]
        if etag is not None:
            headers.append((b"etag", etag.encode()))
            tags = [t.strip() for t in (if_none_match or b"").split(b",")]
            if etag.encode() in tags:
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
        await respond(send, status, out, headers)


class OfrepConfiguration:
    """``GET /ofrep/v1/configuration`` (an optional OFREP extension)."""

    def __init__(self, cors: Cors) -> None:
        self.cors = cors
        self.body = dumps(evaluation.ofrep_configuration())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await self.cors.preflight(scope, send, b"GET, OPTIONS")
            return
        cors = self.cors.headers(header(scope, b"origin"))
        await respond(send, 200, self.body, [JSON, *cors])


def routes(platform: Platform, cache: PayloadCache, metrics: Metrics) -> list[BaseRoute]:
    """The delivery routes, to be mounted first in the app (before the admin API)."""
    settings = platform.settings
    cors = Cors(settings.cors_origins)
    ofrep = OfrepEndpoint(cache, cors)
    return [
        Route(
            "/api/features/{client_key}",
            FeaturesEndpoint(cache, settings.payload_max_age, cors),
            methods=["GET", "OPTIONS"],
        ),
        Route(
            "/sub/{client_key}",
            StreamEndpoint(cache, metrics, settings.sse_keepalive_seconds, cors),
            methods=["GET", "OPTIONS"],
        ),
        Route(
            "/api/eval/{client_key}", RemoteEvalEndpoint(cache, cors), methods=["POST", "OPTIONS"]
        ),
        Route("/ofrep/v1/evaluate/flags/{flag}", ofrep, methods=["POST", "OPTIONS"]),
        Route("/ofrep/v1/evaluate/flags", ofrep, methods=["POST", "OPTIONS"]),
        Route("/ofrep/v1/configuration", OfrepConfiguration(cors), methods=["GET", "OPTIONS"]),
    ]


class HotPaths:
    """ASGI middleware answering ``GET /api/features/{key}`` before the router and middleware.

    Starlette's router, its exception middleware and the generic timing middleware cost
    several times what the endpoint does (~8 µs against ~2 µs in-process; under uvicorn the
    routed endpoint reaches 60 % of a bare ASGI app's requests/s, this one 80 %, see
    benchmarks/README.md). The payload endpoint is the one path where that shows, so it is
    dispatched here, by prefix, and timed with a pre-bound histogram child; everything else
    passes through untouched. Install it as the outermost user middleware (added after the
    timing middleware): ``app.add_middleware(HotPaths, platform=..., cache=...,
    metrics=...)``.
    """

    PREFIX = "/api/features/"

    def __init__(
        self, app: ASGIApp, platform: Platform, cache: PayloadCache, metrics: Metrics
    ) -> None:
        self.app = app
        settings = platform.settings
        self.endpoint = FeaturesEndpoint(
            cache, settings.payload_max_age, Cors(settings.cors_origins)
        )
        self.histogram = metrics.request_seconds
        self._observers: dict[int, Callable[[float], None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path.startswith(self.PREFIX):
                client_key = path[len(self.PREFIX) :]
                if client_key and "/" not in client_key:
                    started = time.perf_counter()
                    status = await self.endpoint.serve(scope, client_key, send)
                    self._observer(status, scope["method"])(time.perf_counter() - started)
                    return
        await self.app(scope, receive, send)

    def _observer(self, status: int, method: str) -> Callable[[float], None]:
        key = status if method == "GET" else -status
        observe = self._observers.get(key)
        if observe is None:
            child = self.histogram.labels("sdk_payload", method, str(status))
            observe = self._observers[key] = child.observe
        return observe
