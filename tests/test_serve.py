"""``liftkit serve`` as a real process on a real socket: first start, keys, health, metrics."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LIFTKIT = [sys.executable, "-m", "liftkit.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(data_dir: Path, *extra: str) -> Iterator[tuple[str, list[str]]]:
    """Run ``liftkit serve``; yield its base URL and (live) output lines."""
    port = free_port()
    process = subprocess.Popen(
        [*LIFTKIT, "serve", "--data-dir", str(data_dir), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None:
                    raise AssertionError(process.stdout.read() if process.stdout else "") from None
                time.sleep(0.1)
        else:
            raise AssertionError("server did not become ready in 30 s")
        yield base, lines
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
        lines.extend(output.splitlines())


def get(url: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_first_start_prints_an_admin_key_once_and_it_works(tmp_path: Path) -> None:
    with server(tmp_path) as (base, first_lines):
        assert get(base + "/healthz")[0] == 200
        status, body = get(base + "/openapi.json")
        assert status == 200 and "/api/v1/features" in json.loads(body)["paths"]
    first = "\n".join(first_lines)
    keys = re.findall(r"lk_sec_\w+", first)
    assert len(keys) == 1, first
    with server(tmp_path) as (base, lines):
        assert get(base + "/api/v1/features")[0] == 401
        status, body = get(base + "/api/v1/features", keys[0])
        assert status == 200 and json.loads(body)["total"] == 0
        metrics = get(base + "/metrics")[1].decode()
        assert 'liftkit_request_seconds_count{method="GET",route="rest",status="200"}' in metrics
    assert not re.findall(r"lk_sec_\w+", "\n".join(lines))  # never printed (or logged) again


def test_bad_settings_are_a_message_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "liftkit.toml").write_text("prot = 80\n")
    command = [*LIFTKIT, "serve", "--data-dir", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert "unknown setting(s): prot" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
