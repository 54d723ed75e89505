"""Freshness across processes: two real servers (uvicorn, real sockets) share one registry.

A publish made in a third process (this test) must reach both servers' payload endpoint and an
SSE client of each within a couple of seconds: by the epoch poll on SQLite, by LISTEN/NOTIFY on
PostgreSQL. Each server runs ``tests/delivery_support.py`` (``create_app`` under uvicorn).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from delivery_support import SSEReader, publish_flag, sdk_key
from liftkit.platform import Platform
from sdk_fakes import wait_until

SUPPORT = Path(__file__).with_name("delivery_support.py")
POLL_SECONDS = 0.2


@contextmanager
def server_process(platform: Platform, data_dir: Path) -> Iterator[str]:
    """A server process on the platform's database; yields its base URL once it is ready."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(SUPPORT),
            "--database-url",
            platform.settings.registry_url,
            "--data-dir",
            str(data_dir),
            "--poll",
            str(POLL_SECONDS),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            process.kill()
            raise AssertionError(f"server did not start: {line}{process.communicate()[1]}")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        wait_until(lambda: _ready(url), 30)
        yield url
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def features(url: str, key: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/api/features/{key}", timeout=5) as response:
        body: dict[str, object] = json.loads(response.read())["features"]
        return body


def test_a_publish_reaches_every_server_and_their_streams(
    platform: Platform, tmp_path: Path
) -> None:
    publish_flag(platform, "checkout", False)
    key = sdk_key(platform)
    with ExitStack() as stack:
        urls = [stack.enter_context(server_process(platform, tmp_path / name)) for name in "ab"]
        streams = [stack.enter_context(SSEReader(f"{url}/sub/{key}")) for url in urls]
        for stream in streams:
            wait_until(lambda stream=stream: stream.retry is not None)
        # How fast is measured in benchmarks/delivery.py; here only that it arrives (the
        # generous timeout keeps a loaded CI machine from failing a correct server).
        for version in (True, "second"):
            publish_flag(platform, "checkout", version, value_type="json")
            for url, stream in zip(urls, streams, strict=True):
                payload = stream.next_payload(timeout=15)
                assert payload["features"]["checkout"] == {"defaultValue": version}
                assert features(url, key)["checkout"] == {"defaultValue": version}

        # A key revoked in another process stops working everywhere, and its streams end.
        record = next(k for k in platform.accounts.keys("sdk"))
        platform.accounts.revoke_key(record.id)
        for url, stream in zip(urls, streams, strict=True):
            wait_until(lambda url=url: _status(f"{url}/api/features/{key}") == 404, 15)
            stream._thread.join(15)
            assert not stream._thread.is_alive()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
