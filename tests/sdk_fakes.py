"""Test doubles for the SDK client: an in-process fake transport and a real loopback server.

``FakeServer`` implements the client's ``Transport`` protocol directly (no sockets), so tests
can switch the "server" down, change statuses and push stream lines deterministically.
``LiveServer`` is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 with a free port, speaking the
same endpoints over real HTTP (ETag/304, chunked SSE, event ingest) for the few tests that must
cross a socket or a ``fork``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from liftkit.sdk._transport import Response

KEY = "sdk-test"


def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``predicate`` every few milliseconds; fail the test if it stays false."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)


def flag_payload(**values: Any) -> dict[str, Any]:
    """A payload whose features only have default values."""
    return {"features": {k: {"defaultValue": v} for k, v in values.items()}}


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


class FakeStream:
    """One open stream; lines are pushed by the test, ``close`` ends iteration."""

    _END = object()

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.closed = threading.Event()
        self._lines: queue.Queue[object] = queue.Queue()

    def push(self, *lines: str) -> None:
        for line in lines:
            self._lines.put(line)

    def end(self) -> None:
        """The server hangs up."""
        self._lines.put(self._END)

    def __iter__(self) -> Iterator[str]:
        while True:
            item = self._lines.get()
            if item is self._END:
                return
            assert isinstance(item, str)
            yield item

    def close(self) -> None:
        self.closed.set()
        self._lines.put(self._END)


class FakeServer:
    """An in-memory feature server implementing the Transport protocol."""

    def __init__(self, payload: Mapping[str, Any] | None = None) -> None:
        self.lock = threading.Lock()
        self.down = False
        self.features_status: int | None = None  # force a status for the features endpoint
        self.stream_status = 200
        self.post_status = 202
        self.post_gate: threading.Event | None = None  # when set, POSTs wait for it
        self.get_gate: threading.Event | None = None  # when set, GETs wait for it
        self.gets: list[dict[str, str]] = []
        self.posts: list[tuple[dict[str, str], list[dict[str, Any]]]] = []
        self.streams: list[FakeStream] = []
        self.body = b""
        self.etag = ""
        if payload is not None:
            self.set_payload(payload)

    def set_payload(self, payload: Mapping[str, Any] | bytes) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        with self.lock:
            self.body, self.etag = body, etag_of(body)

    def publish(self, payload: Mapping[str, Any], *, event: str | None = "features") -> None:
        """Change the payload and tell open streams (the full payload, or just "refetch")."""
        self.set_payload(payload)
        if event == "features":
            self.push("event: features", "data: " + self.body.decode(), "")
        elif event is not None:
            self.push(f"event: {event}", "data: {}", "")

    def push(self, *lines: str) -> None:
        for s in self.open_streams():
            s.push(*lines)

    def open_streams(self) -> list[FakeStream]:
        with self.lock:
            return [s for s in self.streams if not s.closed.is_set()]

    def hang_up(self) -> None:
        for s in self.open_streams():
            s.end()

    @property
    def post_count(self) -> int:
        with self.lock:
            return len(self.posts)

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for _, batch in self.posts for e in batch]

    # -- Transport ---------------------------------------------------------------------------

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        gate = self.get_gate
        if gate is not None:
            gate.wait(timeout)
        with self.lock:
            self.gets.append(dict(headers))
            if self.down:
                raise ConnectionRefusedError("fake server is down")
            assert url.endswith(f"/api/features/{KEY}"), url
            if self.features_status is not None:
                return Response(self.features_status, {}, b"")
            if not self.body:
                return Response(404, {}, b"")
            if headers.get("If-None-Match") == self.etag:
                return Response(304, {"etag": self.etag}, b"")
            return Response(200, {"etag": self.etag}, self.body)

    def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> Response:
        gate = self.post_gate
        if gate is not None:
            gate.wait(timeout)
        with self.lock:
            if self.down:
                raise ConnectionRefusedError("fake server is down")
            self.posts.append((dict(headers), json.loads(body)))
            return Response(self.post_status, {}, b"")

    def stream(self, url: str, headers: Mapping[str, str], timeout: float) -> FakeStream:
        with self.lock:
            if self.down:
                raise ConnectionRefusedError("fake server is down")
            assert url.endswith(f"/sub/{KEY}"), url
            s = FakeStream(self.stream_status)
            self.streams.append(s)
            return s


class LiveServer:
    """A real HTTP server on 127.0.0.1:<free port> with the SDK's endpoints."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self._lock = threading.Lock()
        self._body = b""
        self._etag = ""
        self._subscribers: list[queue.Queue[bytes | None]] = []
        self._closing = False
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.posted: list[tuple[dict[str, str], Any]] = []
        self.set_payload(payload)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    def set_payload(self, payload: Mapping[str, Any]) -> bytes:
        body = json.dumps(payload).encode()
        with self._lock:
            self._body, self._etag = body, etag_of(body)
        return body

    def publish(self, payload: Mapping[str, Any]) -> None:
        body = self.set_payload(payload)
        self._broadcast(b"event: features\ndata: " + body + b"\n\n")

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def _broadcast(self, chunk: bytes | None) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            q.put(chunk)

    def close(self) -> None:
        with self._lock:
            self._closing = True
        self._broadcast(None)
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(("GET", self.path, dict(self.headers.items())))
                if self.path == f"/api/features/{KEY}":
                    self._features()
                elif self.path == f"/sub/{KEY}":
                    self._subscribe()
                else:
                    self._send(404, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with server._lock:
                    server.posted.append((dict(self.headers.items()), json.loads(body)))
                self._send(202, b"")

            def _send(self, status: int, body: bytes, headers: Mapping[str, str] = {}) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _features(self) -> None:
                with server._lock:
                    body, etag = server._body, server._etag
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                headers = {"ETag": etag, "Content-Type": "application/json"}
                if "gzip" in self.headers.get("Accept-Encoding", ""):
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                self._send(200, body, headers)

            def _subscribe(self) -> None:
                q: queue.Queue[bytes | None] = queue.Queue()
                with server._lock:
                    if server._closing:
                        self._send(503, b"")
                        return
                    server._subscribers.append(q)
                self.close_connection = True
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self._chunk(b": connected\n\n")
                    while True:
                        try:
                            item = q.get(timeout=0.05)
                        except queue.Empty:
                            item = b": heartbeat\n\n"  # also notices a client that left
                        if item is None:
                            break
                        self._chunk(item)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
                finally:
                    with server._lock:
                        server._subscribers.remove(q)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler
