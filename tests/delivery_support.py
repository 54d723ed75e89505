"""Helpers for the flag-delivery tests: apps, registry shortcuts, real servers, an SSE reader.

Run as a script it is a server process for the multi-process tests::

    python tests/delivery_support.py --database-url URL --data-dir DIR [--poll SECONDS]

It binds 127.0.0.1 on a free port, prints ``PORT <n>`` and serves ``create_app`` with uvicorn
until terminated.
"""

from __future__ import annotations

import argparse
import json
import queue
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.testclient import TestClient

from liftkit.api import rest
from liftkit.app import create_app as create
from liftkit.platform import Platform
from liftkit.sdk._remote import SSEEvent, SSEParser
from liftkit.sdk._transport import HttpLineStream
from liftkit.settings import Settings

ENV = "production"


def create_app(platform: Platform, *, admin_api: bool = True) -> Any:
    """``liftkit.app.create_app``; ``admin_api=False`` leaves the FastAPI admin routes empty.

    Building the admin API takes about half a second, which the delivery tests (dozens of
    apps, none calling the admin API) need not pay; the real-socket tests keep it.
    """
    if admin_api:
        return create(platform)
    install = rest.install
    rest.install = lambda api, platform: None
    try:
        return create(platform)
    finally:
        rest.install = install


def client(platform: Platform) -> TestClient:
    """A TestClient for the platform's delivery routes; use it as a context manager (lifespan
    runs: the payload cache starts and stops with it)."""
    return TestClient(create_app(platform, admin_api=False))


def sdk_key(platform: Platform, **options: Any) -> str:
    options.setdefault("environment", ENV)
    token, _ = platform.accounts.create_key("sdk", created_by="test", **options)
    return token


def publish_flag(
    platform: Platform,
    key: str,
    default: Any = False,
    rules: list[dict[str, Any]] | None = None,
    *,
    value_type: str | None = None,
    enabled: bool = True,
) -> None:
    kinds = {bool: "boolean", str: "string", int: "number", float: "number"}
    body = {
        "key": key,
        "value_type": value_type or kinds.get(type(default), "json"),
        "default_value": default,
        "environments": {ENV: {"enabled": enabled, "rules": rules or []}},
    }
    platform.registry.save("features", body, "test")


def publish_experiment(platform: Platform, key: str, variations: int = 2) -> None:
    platform.registry.save(
        "experiments",
        {
            "key": key,
            "status": "running",
            "variations": [{"key": f"v{i}", "name": f"Variation {i}"} for i in range(variations)],
        },
        "test",
    )


RULE = {"type": "force", "value": True, "condition": {"country": "GB"}}


def experiment_setup(platform: Platform) -> str:
    """A three-way price experiment behind ``price``, ``checkout`` on for GB; an SDK key."""
    publish_experiment(platform, "price-test", variations=3)
    publish_flag(
        platform,
        "price",
        10,
        [{"type": "experiment", "experiment": "price-test", "values": [10, 12, 15]}],
    )
    publish_flag(platform, "checkout", False, [RULE])
    return sdk_key(platform)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def uvicorn_config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1
    )


@contextmanager
def live_server(platform: Platform) -> Iterator[str]:
    """The platform's app on a real loopback socket (uvicorn in a thread); yields its URL."""
    sock = free_socket()
    server = uvicorn.Server(uvicorn_config(create_app(platform)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert server.started, "the test server did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class SSEReader:
    """Reads a ``/sub/{key}`` stream in a thread; events (and comments) arrive in a queue."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.stream = HttpLineStream.open(url, headers or {}, timeout=30)
        self.status = self.stream.status
        self.lines: list[str] = []
        self.events: queue.Queue[SSEEvent] = queue.Queue()
        self.retry: float | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        parser = SSEParser()
        try:
            for line in self.stream:
                self.lines.append(line)
                event = parser.feed(line)
                if parser.retry is not None:
                    self.retry = parser.retry
                if event is not None:
                    self.events.put(event)
        except Exception:  # closed from the test thread: http.client fails in assorted ways
            pass

    def next_event(self, timeout: float = 5.0) -> SSEEvent:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no SSE event within {timeout} s") from None

    def next_payload(self, timeout: float = 5.0) -> dict[str, Any]:
        event = self.next_event(timeout)
        assert event.event == "features", event
        data: dict[str, Any] = json.loads(event.data)
        return data

    def close(self) -> None:
        self.stream.close()
        self._thread.join(5)

    def __enter__(self) -> SSEReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()
    settings = Settings(
        data_dir=Path(args.data_dir), database_url=args.database_url, change_poll_seconds=args.poll
    )
    platform = Platform(settings)
    sock = free_socket()
    server = uvicorn.Server(uvicorn_config(create_app(platform)))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        platform.close()


if __name__ == "__main__":
    main()
