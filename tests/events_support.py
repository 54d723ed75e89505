"""Helpers for the event-ingest tests that run ``liftkit serve`` as a real process.

``Server`` starts the server on a free port with its output in a log file (a pipe nobody reads
could fill up and stall it), waits for ``/readyz``, and stops it gracefully or with SIGKILL.
``call`` is a small HTTP client that answers connection failures with an exception, so callers
can tell "refused" from "answered".
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from liftkit.platform import Platform
from liftkit.settings import Settings

LIFTKIT = [sys.executable, "-m", "liftkit.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    method: str,
    url: str,
    key: str | None = None,
    body: bytes | None = None,
    *,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """``(status, body)`` of an HTTP answer (errors included); connection failures raise."""
    request = urllib.request.Request(url, data=body, method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_json(url: str, key: str | None = None) -> Any:
    status, body = call("GET", url, key)
    assert status == 200, (url, status, body[:500])
    return json.loads(body)


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def bootstrap(data_dir: Path) -> tuple[Platform, str, str]:
    """A fresh registry in ``data_dir``: ``(platform, admin key, ingest key)``; close it."""
    platform = Platform(Settings(data_dir=data_dir))
    admin = platform.bootstrap()
    assert admin is not None
    ingest, _ = platform.accounts.create_key("ingest", created_by="test", name="events test")
    return platform, admin, ingest


class Server:
    """``liftkit serve --data-dir DIR`` as a subprocess on a free port."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*LIFTKIT, "serve", "--data-dir", str(data_dir), "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200", **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if call("GET", self.base + "/readyz", timeout=1)[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"liftkit serve exited early:\n{self.output()}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"liftkit serve not ready in {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait; fails unless the server shut down gracefully (the pipeline's
        shutdown ran). uvicorn re-raises the signal after its shutdown, hence -SIGTERM."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"liftkit serve did not stop in {timeout} s") from None
        self._log.close()
        output = self.log_path.read_text()
        assert code in (0, -signal.SIGTERM), (code, output)
        assert "Application shutdown complete" in output, output

    def __enter__(self) -> Server:
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.kill()
        if not self._log.closed:
            self._log.close()

    def events_status(self, admin_key: str) -> dict[str, Any]:
        status: dict[str, Any] = get_json(self.base + "/api/v1/events/status", admin_key)
        return status

    def wait_loaded(self, admin_key: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll the ingest status until every accepted event is in the store; return it.

        Call it once every write has been answered: the backlog then only shrinks, and it
        counts sealed segments and the active one, so 0 means everything was loaded.
        """
        seen: dict[str, Any] = {}

        def loaded() -> bool:
            seen.update(self.events_status(admin_key))
            return bool(seen["running"]) and seen["spool_backlog_bytes"] == 0

        try:
            wait_for(loaded, timeout, "the spool to be loaded", interval=0.1)
        except AssertionError as error:
            raise AssertionError(f"{error}; last status {seen}\n{self.output()}") from None
        return seen


def read_store(data_dir: Path, sql: str, params: list[Any] | None = None) -> list[Any]:
    """Rows of ``sql`` on ``DATA_DIR/events.duckdb``, opened read-only (server stopped)."""
    with duckdb.connect(str(data_dir / "events.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()
