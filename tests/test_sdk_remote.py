"""Loading from the server with an in-process fake transport: ETag, TTL, SSE, outages, staleness."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from liftkit.sdk._remote import Backoff, SSEEvent, SSEParser
from liftkit.sdk.client import Client
from sdk_fakes import KEY, FakeServer, flag_payload, wait_until

HOST = "http://flags.invalid"


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """Clients made by a test, closed afterwards so no thread outlives it."""
    made: list[Client] = []
    yield made
    for c in made:
        c.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("liftkit-") and t.is_alive()]


def make(clients: list[Client], server: FakeServer, **options: Any) -> Client:
    options.setdefault("reconnect_delay", 0.01)
    options.setdefault("max_reconnect_delay", 0.05)
    client = Client(api_host=HOST, client_key=KEY, transport=server, **options)
    clients.append(client)
    return client


def test_constructor_waits_for_the_first_payload(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, streaming=False)
    assert client.ready
    assert client.for_user({}).get("color") == "red"
    assert server.gets[0].get("If-None-Match") is None


def test_unchanged_payload_is_confirmed_with_a_304(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, streaming=False, ttl=3600)
    payload = client.payload
    time.sleep(0.01)
    before = client.age
    assert before is not None and before > 0
    assert client.refresh()
    assert server.gets[-1]["If-None-Match"] == server.etag
    assert client.payload is payload and client.version == 1
    after = client.age
    assert after is not None and after < before


def test_changed_payload_is_fetched_after_the_ttl_in_the_background(
    clients: list[Client],
) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, streaming=False, ttl=0.05)
    ctx = client.for_user({})
    server.set_payload(flag_payload(color="green"))
    wait_until(lambda: client.for_user({}).get("color") == "green")
    assert ctx.get("color") == "red"  # an existing context keeps its snapshot
    assert client.version == 2


def test_no_refresh_before_the_ttl(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    make(clients, server, streaming=False, ttl=3600)
    time.sleep(0.05)
    assert len(server.gets) == 1


def test_server_down_from_the_start_serves_defaults_then_recovers(
    clients: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer(flag_payload(color="red"))
    server.down = True
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="liftkit.sdk"):
        client = make(clients, server, streaming=False, defaults={"color": "grey"})
    assert time.monotonic() - started < 2
    assert not client.ready
    ctx = client.for_user({})
    assert ctx.serving_defaults and ctx.get("color") == "grey"
    assert "serving defaults" in caplog.text
    wait_until(lambda: len(server.gets) >= 3)  # retrying with backoff
    server.down = False
    assert client.wait_until_ready(5)
    assert client.for_user({}).get("color") == "red"


def test_server_down_later_keeps_the_last_known_payload(
    clients: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, streaming=False, ttl=0.01, defaults={"color": "grey"})
    server.down = True
    with caplog.at_level(logging.DEBUG, logger="liftkit.sdk"):
        n = len(server.gets)
        wait_until(lambda: len(server.gets) >= n + 3)
        assert client.for_user({}).get("color") == "red"
        assert not client.refresh()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # one warning per outage, not one per attempt
        server.down = False
        assert client.refresh()
        assert "restored" in caplog.text


@pytest.mark.parametrize("body", [b"{not json", b'{"features": []}'])
def test_unusable_server_payloads_are_ignored(
    clients: list[Client], caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, streaming=False, ttl=3600)
    server.set_payload(body)
    with caplog.at_level(logging.WARNING, logger="liftkit.sdk"):
        assert not client.refresh()
    assert client.for_user({}).get("color") == "red"
    assert "unusable payload" in caplog.text


def test_http_errors_keep_the_current_payload(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, streaming=False, ttl=3600)
    server.features_status = 500
    assert not client.refresh()
    assert client.for_user({}).get("color") == "red"
    assert client.version == 1


def test_streamed_payloads_are_applied(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, ttl=3600)
    wait_until(server.open_streams)
    wait_until(lambda: len(server.gets) == 2)  # the first fetch, and a catch-up on connecting
    updated = threading.Event()
    client.add_update_listener(updated.set)
    server.publish(flag_payload(color="blue"))
    assert updated.wait(5)
    assert client.for_user({}).get("color") == "blue"
    assert len(server.gets) == 2  # the update came through the stream, not a fetch


def test_features_updated_event_triggers_a_refetch(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, ttl=3600)
    wait_until(server.open_streams)
    wait_until(lambda: len(server.gets) >= 2)  # initial fetch and catch-up
    server.publish(flag_payload(color="blue"), event="features-updated")
    wait_until(lambda: client.for_user({}).get("color") == "blue")


def test_stream_reconnects_and_catches_up(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, ttl=3600)
    wait_until(lambda: len(server.streams) == 1)
    server.hang_up()
    server.set_payload(flag_payload(color="blue"))  # published while disconnected
    wait_until(lambda: len(server.streams) == 2)
    wait_until(lambda: client.for_user({}).get("color") == "blue")


def test_stream_outage_is_retried_with_backoff(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, ttl=3600)
    wait_until(lambda: len(server.streams) == 1)
    server.down = True
    server.hang_up()
    time.sleep(0.1)
    server.down = False
    wait_until(lambda: len(server.open_streams()) == 1)
    server.publish(flag_payload(color="green"))
    wait_until(lambda: client.for_user({}).get("color") == "green")


def test_a_server_without_streaming_is_polled_instead(
    clients: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer(flag_payload(color="red"))
    server.stream_status = 404
    with caplog.at_level(logging.WARNING, logger="liftkit.sdk"):
        client = make(clients, server, ttl=0.02)
        wait_until(lambda: "does not stream" in caplog.text)
    server.set_payload(flag_payload(color="blue"))
    wait_until(lambda: client.for_user({}).get("color") == "blue")
    assert len(server.streams) == 1
    assert not [t for t in threading.enumerate() if t.name == "liftkit-stream"]


def test_heartbeats_confirm_freshness_so_no_polling_is_needed(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server, ttl=0.4)
    wait_until(server.open_streams)
    wait_until(lambda: len(server.gets) >= 2)
    gets = len(server.gets)
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:
        server.push(": heartbeat")
        time.sleep(0.02)
    assert len(server.gets) == gets
    age = client.age
    assert age is not None and age < 0.4


def test_polling_continues_when_the_stream_is_silent(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    make(clients, server, ttl=0.02)
    wait_until(server.open_streams)
    n = len(server.gets)
    wait_until(lambda: len(server.gets) >= n + 3)


def test_close_stops_every_background_thread(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    client = make(clients, server)
    wait_until(server.open_streams)
    client.close()
    assert server.streams[0].closed.is_set()
    names = [t.name for t in threading.enumerate() if t.is_alive()]
    assert "liftkit-refresh" not in names and "liftkit-stream" not in names
    assert client.for_user({}).get("color") == "red"


# -- max staleness ---------------------------------------------------------------------------


def test_past_max_staleness_defaults_are_served_and_reported_once(
    clients: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer(flag_payload(color="red"))
    reports: list[float] = []
    client = make(
        clients,
        server,
        streaming=False,
        ttl=3600,
        max_staleness=60,
        defaults={"color": "grey"},
        on_stale=reports.append,
    )
    assert client.for_user({}).get("color") == "red"
    server.down = True
    assert client._remote is not None
    client._remote.last_confirmed = time.monotonic() - 61  # as if a minute of outage passed
    with caplog.at_level(logging.INFO, logger="liftkit.sdk"):
        ctx = client.for_user({})
        assert ctx.serving_defaults and ctx.get("color") == "grey"
        assert client.for_user({}).get("color") == "grey"
        assert client.stale
        assert len(reports) == 1 and reports[0] > 60
        assert "max_staleness" in caplog.text
        server.down = False
        assert client.refresh()  # a 304 confirms the payload again
        assert client.for_user({}).get("color") == "red"
        assert not client.stale
        assert "fresh again" in caplog.text
    client._remote.last_confirmed = time.monotonic() - 61
    client.for_user({})
    assert len(reports) == 2  # once per transition


def test_max_staleness_in_real_time(clients: list[Client]) -> None:
    server = FakeServer(flag_payload(color="red"))
    stale = threading.Event()
    client = make(
        clients,
        server,
        streaming=False,
        ttl=0.05,
        max_staleness=0.2,
        defaults={"color": "grey"},
        on_stale=lambda age: stale.set(),
    )
    server.down = True
    wait_until(lambda: client.for_user({}).get("color") == "grey")
    assert stale.is_set()
    server.down = False
    wait_until(lambda: client.for_user({}).get("color") == "red")


def test_never_loaded_counts_as_stale_from_start(clients: list[Client]) -> None:
    server = FakeServer()
    server.down = True
    reports: list[float] = []
    client = make(clients, server, streaming=False, max_staleness=0.05, on_stale=reports.append)
    wait_until(lambda: client.for_user({}).serving_defaults and reports)


def test_local_payloads_never_go_stale() -> None:
    client = Client(flag_payload(color="red"), max_staleness=0.001)
    time.sleep(0.01)
    assert client.for_user({}).get("color") == "red" and not client.stale


# -- pieces ----------------------------------------------------------------------------------


def test_backoff_grows_with_jitter_up_to_a_cap() -> None:
    backoff = Backoff(1.0, 8.0)
    delays = [backoff.next() for _ in range(6)]
    for got, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert base / 2 <= got <= base
    assert len({round(d, 6) for d in delays}) > 1
    backoff.reset()
    assert backoff.next() <= 1.0


def test_sse_parser_follows_the_event_stream_format() -> None:
    parser = SSEParser()
    lines = [
        ": comment",
        "event: features",
        "id: 7",
        "data: {",
        "data:  }",
        "",
        "",
        "data: plain",
        "retry: 2500",
        "",
    ]
    events = [e for line in lines if (e := parser.feed(line)) is not None]
    assert events == [
        SSEEvent("features", "{\n }", "7"),
        SSEEvent("message", "plain", "7"),
    ]
    assert parser.retry == 2.5
