"""Raw-ASGI plumbing shared by the SDK hot paths: CORS, small responses, bodies, key hygiene.

The hot paths speak ASGI directly (no ``Request``/``Response`` objects), so the few things a
framework would do for them live here, written once: CORS headers prebuilt as bytes, JSON
error replies, a size-capped body reader, and how a key that is not a live SDK key is
answered. ``RedactClientKeys`` keeps client keys out of access logs, which print paths.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.types import Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]
#: Token prefixes of keys that are real but not SDK keys (see ``registry.accounts``).
NON_SDK_PREFIXES = ("lk_sec_", "lk_ing_")
MAX_BODY_BYTES = 1 << 20
JSON = (b"content-type", b"application/json")
NO_STORE = (b"cache-control", b"no-store")


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class Cors:
    """CORS headers from ``settings.cors_origins`` ("*" or a comma list), prebuilt as bytes."""

    def __init__(self, origins: str) -> None:
        allowed = [o.strip() for o in origins.split(",") if o.strip()]
        self.any = "*" in allowed
        self.origins = {o.rstrip("/").encode() for o in allowed}
        self._expose = (b"access-control-expose-headers", b"ETag, X-SSE-Support")
        self._any = [(b"access-control-allow-origin", b"*"), self._expose]

    def headers(self, origin: bytes | None) -> Headers:
        """What to add to a response for a request from ``origin`` (shared list: copy to add)."""
        if self.any:
            return self._any
        if origin is not None and origin in self.origins:
            return [(b"access-control-allow-origin", origin), (b"vary", b"Origin"), self._expose]
        return [(b"vary", b"Origin")]

    async def preflight(self, scope: Scope, send: Send, methods: bytes) -> None:
        """Answer an OPTIONS preflight; request headers asked for are allowed as asked."""
        origin = requested = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-headers":
                requested = value
        headers = self.headers(origin)
        if headers is self._any or len(headers) > 1:
            headers = [
                *headers,
                (b"access-control-allow-methods", methods),
                (b"access-control-allow-headers", requested or b"Content-Type"),
                (b"access-control-max-age", b"86400"),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


async def respond(send: Send, status: int, body: bytes, headers: Headers) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, value: Any, headers: Headers) -> None:
    await respond(send, status, dumps(value), [JSON, NO_STORE, *headers])


async def send_error(send: Send, status: int, message: str, headers: Headers) -> None:
    await send_json(send, status, {"status": status, "message": message}, headers)


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, or None when it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def key_error(client_key: str) -> tuple[int, str]:
    """Status and message for a path key that is not a live SDK key (never echoing it)."""
    if client_key.startswith(NON_SDK_PREFIXES):
        return 403, "this endpoint takes an SDK client key, not a secret or ingest key"
    return 404, "unknown or revoked SDK client key"


_KEY_IN_PATH = re.compile(r"(/(?:api/features|sub|api/eval)/)[^/?\s\"]+")


def redact_client_keys(text: str) -> str:
    """``text`` with client keys in delivery URLs replaced by ``***`` (for access logs)."""
    return _KEY_IN_PATH.sub(r"\1***", text)


class RedactClientKeys(logging.Filter):
    """A logging filter for ``uvicorn.access`` (or any log) that hides client keys in URLs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_client_keys(a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = redact_client_keys(record.msg)
        return True
