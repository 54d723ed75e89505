"""How the client talks HTTP: a three-method protocol and a standard-library implementation.

The protocol is small so tests (and unusual deployments: a proxy, a service mesh sidecar, a
custom TLS setup) can supply their own. Every method may raise any exception on network failure;
callers treat all of them alike.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import NamedTuple, Protocol, runtime_checkable

USER_AGENT = "liftkit-python-sdk"


class Response(NamedTuple):
    """One HTTP response: header names are lower-case, the body is complete and decoded."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@runtime_checkable
class LineStream(Protocol):
    """An open streaming response, read line by line (for server-sent events).

    ``close()`` must be safe to call from another thread while a reader is blocked in iteration,
    and must make that iteration end (return or raise) promptly.
    """

    status: int

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """The HTTP operations the client needs.

    ``get`` and ``post`` return any status (including 304 and errors) as a :class:`Response`;
    they raise only when no response was received. ``stream`` returns once the response headers
    have arrived; its lines come without their line terminator.
    """

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> Response: ...

    def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> Response: ...

    def stream(self, url: str, headers: Mapping[str, str], timeout: float) -> LineStream: ...


class UrllibTransport:
    """The default transport: ``urllib.request`` for requests, ``http.client`` for streams.

    Requests honour the usual proxy environment variables; streams connect directly.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        hdrs = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip", **headers}
        return self._send(urllib.request.Request(url, headers=hdrs, method="GET"), timeout)

    def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> Response:
        hdrs = {"User-Agent": USER_AGENT, **headers}
        req = urllib.request.Request(url, data=body, headers=hdrs, method="POST")
        return self._send(req, timeout)

    def _send(self, req: urllib.request.Request, timeout: float) -> Response:
        try:
            resp = urllib.request.urlopen(req, timeout=timeout, context=self._ssl_context)
        except urllib.error.HTTPError as err:  # 304 and every 4xx/5xx land here
            with err:
                return _response(err.code, err.headers.items(), err.read())
        with resp:
            return _response(resp.status, resp.headers.items(), resp.read())

    def stream(self, url: str, headers: Mapping[str, str], timeout: float) -> LineStream:
        return HttpLineStream.open(url, headers, timeout, self._ssl_context)


def _response(status: int, items: list[tuple[str, str]], body: bytes) -> Response:
    hdrs = {k.lower(): v for k, v in items}
    if hdrs.get("content-encoding", "").lower() == "gzip":
        body = gzip.decompress(body)
    return Response(status, hdrs, body)


class HttpLineStream:
    """A streaming GET over ``http.client`` whose socket can be shut down from another thread."""

    def __init__(
        self,
        conn: http.client.HTTPConnection,
        sock: socket.socket,
        resp: http.client.HTTPResponse,
    ) -> None:
        self._conn = conn
        self._sock = sock
        self._resp = resp
        self.status = resp.status

    @classmethod
    def open(
        cls,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> HttpLineStream:
        parts = urllib.parse.urlsplit(url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            ctx = ssl_context or ssl.create_default_context()
            conn = http.client.HTTPSConnection(parts.netloc, timeout=timeout, context=ctx)
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(parts.netloc, timeout=timeout)
        else:
            raise ValueError(f"unsupported URL scheme {parts.scheme!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        hdrs = {
            "User-Agent": USER_AGENT,
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            **headers,
        }
        try:
            conn.request("GET", path, headers=hdrs)
            sock = conn.sock
            assert sock is not None  # set by request()
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        return cls(conn, sock, resp)

    def __iter__(self) -> Iterator[str]:
        resp = self._resp
        while True:
            raw = resp.readline()
            if not raw:
                return
            yield raw.decode("utf-8", errors="replace").rstrip("\r\n")

    def close(self) -> None:
        """End the stream; a shutdown wakes a reader blocked in another thread."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._resp.close()
        self._conn.close()

    def abandon(self) -> None:
        """Release this process's handle without disturbing the connection (after ``fork``).

        The parent still owns the connection, so no shutdown, and no call that might take a
        lock the parent's reader thread held at the moment of the fork.
        """
        with contextlib.suppress(OSError):
            fd = self._sock.detach()
            if fd >= 0:
                socket.close(fd)


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of a network error, for logs."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
