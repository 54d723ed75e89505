"""The client over real loopback HTTP: the default transport, streaming, outages and ``fork``."""

from __future__ import annotations

import os
import select
import threading
import time
import warnings
from collections.abc import Iterator

import pytest

from liftkit.sdk._transport import UrllibTransport
from liftkit.sdk.client import Client
from liftkit.sdk.exposures import ExposureLogger
from sdk_fakes import KEY, LiveServer, flag_payload, wait_until


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(flag_payload(color="red")) as s:
        yield s


def live_client(server: LiveServer, **options: object) -> Client:
    return Client(
        api_host=server.url,
        client_key=KEY,
        ttl=3600,  # so that only the stream can explain an update
        reconnect_delay=0.05,
        max_reconnect_delay=0.2,
        **options,  # type: ignore[arg-type]
    )


def test_default_transport_does_conditional_gets(server: LiveServer) -> None:
    transport = UrllibTransport()
    url = f"{server.url}/api/features/{KEY}"
    first = transport.get(url, {}, 5)
    assert first.status == 200
    assert first.body.startswith(b'{"features"')  # gzip-decoded
    assert first.headers["content-encoding"] == "gzip"
    second = transport.get(url, {"If-None-Match": first.headers["etag"]}, 5)
    assert (second.status, second.body) == (304, b"")
    assert transport.get(f"{server.url}/nope", {}, 5).status == 404


def test_updates_arrive_over_a_real_stream(server: LiveServer) -> None:
    with live_client(server) as client:
        assert client.for_user({}).get("color") == "red"
        wait_until(lambda: server.subscriber_count() == 1)
        updated = threading.Event()
        client.add_update_listener(updated.set)
        server.publish(flag_payload(color="blue"))
        assert updated.wait(5)
        assert client.for_user({}).get("color") == "blue"
    wait_until(lambda: server.subscriber_count() == 0)


def test_a_stopped_server_leaves_the_last_known_payload(server: LiveServer) -> None:
    with live_client(server, defaults={"color": "grey"}) as client:
        wait_until(lambda: server.subscriber_count() == 1)
        server.close()
        assert not client.refresh()
        assert client.for_user({}).get("color") == "red"


def test_unreachable_server_gives_defaults_without_raising() -> None:
    with LiveServer(flag_payload()) as gone:
        url = gone.url
    started = time.monotonic()
    with Client(api_host=url, client_key=KEY, defaults={"color": "grey"}) as client:
        assert time.monotonic() - started < 3
        assert client.for_user({}).get("color") == "grey"


def test_exposures_are_posted_with_the_ingest_key(server: LiveServer) -> None:
    logger = ExposureLogger(f"{server.url}/api/v1/events", "ingest-secret", flush_interval=60)
    payload = {
        "features": {
            "f": {"defaultValue": 0, "rules": [{"key": "e", "variations": [0, 1], "meta": []}]}
        }
    }
    with Client(payload, exposure_logger=logger) as client:
        client.for_user({"id": "u1"}).get("f")
        assert client.flush(5)
    (headers, body), *_ = server.posted
    assert headers["Authorization"] == "Bearer ingest-secret"
    assert headers["Content-Type"] == "application/json"
    assert [e["experiment_key"] for e in body] == ["e"]


def _read_line(fd: int, timeout: float) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise AssertionError(f"no line from the child within {timeout} s (got {data!r})")
        chunk = os.read(fd, 100)
        if not chunk:
            raise AssertionError(f"the child closed the pipe (got {data!r})")
        data += chunk
    return data.decode().strip()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_keeps_receiving_updates(server: LiveServer) -> None:
    with live_client(server) as client:
        assert client.for_user({}).get("color") == "red"
        wait_until(lambda: server.subscriber_count() == 1)
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the child: report what it sees, never return into pytest
            code = 1
            try:
                os.close(r)
                os.write(w, f"{client.for_user({}).get('color')}\n".encode())
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if client.for_user({}).get("color") == "blue":
                        os.write(w, b"blue\n")
                        code = 0
                        break
                    time.sleep(0.005)
            finally:
                os._exit(code)
        os.close(w)
        try:
            assert _read_line(r, 10) == "red"
            wait_until(lambda: server.subscriber_count() == 2)  # the child streams on its own
            server.publish(flag_payload(color="blue"))
            assert _read_line(r, 10) == "blue"
        finally:
            os.close(r)
            _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The child let go of the parent's connection without closing it for the parent.
        wait_until(lambda: server.subscriber_count() == 1)
        wait_until(lambda: client.for_user({}).get("color") == "blue")
        server.publish(flag_payload(color="green"))
        wait_until(lambda: client.for_user({}).get("color") == "green")
        assert server.subscriber_count() == 1
        streams_opened = [p for _, p, _ in server.requests if p == f"/sub/{KEY}"]
        assert len(streams_opened) == 2  # the parent's, never reopened, and the child's
