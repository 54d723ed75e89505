"""The asyncio client: awaitable start, refresh, flush and close; never blocking the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from liftkit.sdk.aio import AsyncClient
from liftkit.sdk.exposures import ExposureLogger
from sdk_fakes import KEY, FakeServer, flag_payload

HOST = "http://flags.invalid"


def options(server: FakeServer, **extra: Any) -> dict[str, Any]:
    return {
        "api_host": HOST,
        "client_key": KEY,
        "transport": server,
        "streaming": False,
        "ttl": 3600,
        **extra,
    }


def no_liftkit_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("liftkit-")]


def test_loads_evaluates_and_refreshes() -> None:
    server = FakeServer(flag_payload(color="red"))

    async def main() -> None:
        async with AsyncClient(**options(server)) as flags:
            assert flags.ready and flags.version == 1 and not flags.stale
            assert flags.payload is flags.client.payload
            assert flags.age is not None
            assert flags.for_user({"id": "u1"}).get("color") == "red"
            assert flags.evaluate("color").value == "red"
            server.set_payload(flag_payload(color="blue"))
            assert await flags.refresh()
            assert flags.for_user({}).get("color") == "blue"
            assert flags.version == 2
            assert await flags.wait_until_ready(1)

    asyncio.run(main())
    assert no_liftkit_threads()


def test_create_waits_without_blocking_the_event_loop() -> None:
    server = FakeServer(flag_payload(color="red"))
    server.get_gate = gate = threading.Event()

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        flags = await AsyncClient.create(
            **options(server, defaults={"color": "grey"}), init_timeout=0.2
        )
        assert time.monotonic() - started >= 0.15
        assert ticks >= 5  # the loop kept running while the client waited
        assert not flags.ready
        assert flags.for_user({}).get("color") == "grey"
        gate.set()
        assert await flags.wait_until_ready(5)
        assert flags.for_user({}).get("color") == "red"
        task.cancel()
        await flags.aclose()

    asyncio.run(main())
    assert no_liftkit_threads()


def test_a_cancelled_create_leaves_nothing_running() -> None:
    server = FakeServer(flag_payload(color="red"))
    server.get_gate = gate = threading.Event()

    async def main() -> None:
        task = asyncio.create_task(AsyncClient.create(**options(server), init_timeout=10))
        await asyncio.sleep(0.05)
        task.cancel()
        gate.set()  # let the blocked fetch finish so the threads can stop
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert no_liftkit_threads()


def test_flush_sends_exposures() -> None:
    server = FakeServer()
    payload = {
        "features": {"f": {"defaultValue": 0, "rules": [{"key": "e", "variations": [0, 1]}]}}
    }
    logger = ExposureLogger(f"{HOST}/api/v1/events", "secret", transport=server, flush_interval=60)

    async def main() -> None:
        async with AsyncClient(payload, exposure_logger=logger) as flags:
            flags.for_user({"id": "u1"}).get("f")
            assert await flags.flush(5)
            stats = flags.exposure_stats
            assert stats is not None and stats.sent == 1

    asyncio.run(main())
    assert [e["experiment_key"] for e in server.events] == ["e"]
