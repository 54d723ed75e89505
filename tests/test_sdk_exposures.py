"""Built-in exposure logging: batching, deduplication, bounds, failures, shutdown and fork."""

from __future__ import annotations

import logging
import os
import re
import select
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from liftkit.sdk._types import ExperimentResult
from liftkit.sdk.client import Client
from liftkit.sdk.exposures import ExposureLogger, ExposureStats
from sdk_fakes import FakeServer, wait_until

ENDPOINT = "http://flags.invalid/api/v1/events"
SECRET = "ingest-secret-123"


def result(user: str = "u1", variation: int = 1, feature: str | None = "f") -> ExperimentResult:
    return ExperimentResult(
        key=f"v{variation}",
        variation_id=variation,
        value=variation,
        in_experiment=True,
        hash_used=True,
        hash_attribute="id",
        hash_value=user,
        feature_id=feature,
    )


EXP = {"key": "exp1", "variations": [0, 1]}


@pytest.fixture
def loggers() -> Iterator[list[ExposureLogger]]:
    made: list[ExposureLogger] = []
    yield made
    for lg in made:
        lg.close(timeout=5)
    assert not [t for t in threading.enumerate() if t.name == "liftkit-exposures"]


def make(loggers: list[ExposureLogger], server: FakeServer, **options: Any) -> ExposureLogger:
    options.setdefault("flush_interval", 60)
    options.setdefault("retry_delay", 0.001)
    logger = ExposureLogger(ENDPOINT, SECRET, transport=server, **options)
    loggers.append(logger)
    return logger


def test_events_have_the_documented_shape(loggers: list[ExposureLogger]) -> None:
    server = FakeServer()
    logger = make(loggers, server)
    logger.record(EXP, result(), {"id": "u1", "plan": "pro"})
    assert logger.flush(5)
    ((headers, batch),) = server.posts
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["Content-Type"] == "application/json"
    (event,) = batch
    assert set(event) == {
        "type",
        "event_id",
        "timestamp",
        "experiment_key",
        "variation_id",
        "variation_key",
        "feature_key",
        "hash_attribute",
        "hash_value",
        "attributes",
    }
    assert event["type"] == "exposure"
    assert re.fullmatch(r"[0-9a-f]{32}", event["event_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["timestamp"])
    assert event["experiment_key"] == "exp1"
    assert (event["variation_id"], event["variation_key"]) == (1, "v1")
    assert event["feature_key"] == "f"
    assert (event["hash_attribute"], event["hash_value"]) == ("id", "u1")
    assert event["attributes"] == {"id": "u1", "plan": "pro"}
    assert logger.stats == ExposureStats(queued=0, sent=1, dropped=0, failed=0, deduplicated=0)


def test_a_full_batch_is_sent_without_waiting_for_the_interval(
    loggers: list[ExposureLogger],
) -> None:
    server = FakeServer()
    logger = make(loggers, server, batch_size=3)
    for i in range(7):
        logger.record(EXP, result(user=f"u{i}"), {})
    wait_until(lambda: server.post_count == 2)
    assert [len(batch) for _, batch in server.posts] == [3, 3]
    assert logger.stats.queued == 1


def test_the_interval_sends_a_partial_batch(loggers: list[ExposureLogger]) -> None:
    server = FakeServer()
    make(loggers, server, flush_interval=0.02).record(EXP, result(), {})
    wait_until(lambda: server.post_count == 1)


def test_duplicates_are_sent_once(loggers: list[ExposureLogger]) -> None:
    server = FakeServer()
    logger = make(loggers, server)
    logger.record(EXP, result(), {})
    logger.record(EXP, result(), {})
    logger.record(EXP, result(variation=0), {})  # another variation is another exposure
    logger.record({"key": "exp2"}, result(), {})
    logger.record(EXP, result(user="u2"), {})
    assert logger.flush(5)
    assert len(server.events) == 4
    assert logger.stats.deduplicated == 1


def test_the_dedup_memory_is_bounded(loggers: list[ExposureLogger]) -> None:
    server = FakeServer()
    logger = make(loggers, server, dedup_size=2)
    for user in ["a", "b", "c", "a"]:  # "a" was evicted by "c"
        logger.record(EXP, result(user=user), {})
    logger.record(EXP, result(user="c"), {})
    assert logger.flush(5)
    assert [e["hash_value"] for e in server.events] == ["a", "b", "c", "a"]


def test_a_full_queue_drops_and_counts_without_blocking(loggers: list[ExposureLogger]) -> None:
    server = FakeServer()
    server.post_gate = gate = threading.Event()
    logger = make(loggers, server, batch_size=1, max_queue=2)
    logger.record(EXP, result(user="first"), {})
    wait_until(lambda: logger.stats.queued == 0)  # taken by the sender, which is now stuck
    started = time.monotonic()
    for i in range(10):
        logger.record(EXP, result(user=f"u{i}"), {})
    assert time.monotonic() - started < 0.5
    assert logger.stats.queued == 2
    assert logger.stats.dropped == 8
    gate.set()
    assert logger.flush(5)
    assert logger.stats.sent == 3


def test_a_dropped_exposure_can_be_recorded_again_later(loggers: list[ExposureLogger]) -> None:
    server = FakeServer()
    server.post_gate = gate = threading.Event()
    logger = make(loggers, server, batch_size=1, max_queue=1)
    logger.record(EXP, result(user="first"), {})
    wait_until(lambda: logger.stats.queued == 0)
    logger.record(EXP, result(user="a"), {})
    logger.record(EXP, result(user="b"), {})  # dropped: queue full
    gate.set()
    assert logger.flush(5)
    logger.record(EXP, result(user="b"), {})
    assert logger.flush(5)
    assert [e["hash_value"] for e in server.events] == ["first", "a", "b"]


def test_network_failures_are_retried_then_counted_never_raised(
    loggers: list[ExposureLogger], caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer()
    server.down = True
    logger = make(loggers, server, max_retries=2)
    with caplog.at_level(logging.DEBUG, logger="liftkit.sdk"):
        logger.record(EXP, result(), {"id": "u1"})
        assert logger.flush(5)
    assert logger.stats.failed == 1 and logger.stats.sent == 0
    assert "dropping 1 exposures" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(("status", "attempts"), [(400, 1), (429, 3), (503, 3)])
def test_client_errors_are_not_retried(
    loggers: list[ExposureLogger], status: int, attempts: int
) -> None:
    server = FakeServer()
    server.post_status = status
    logger = make(loggers, server, max_retries=2)
    logger.record(EXP, result(), {})
    assert logger.flush(5)
    assert server.post_count == attempts
    assert logger.stats.failed == 1


def test_close_sends_what_is_queued_and_later_records_are_dropped(
    loggers: list[ExposureLogger],
) -> None:
    server = FakeServer()
    logger = make(loggers, server)
    logger.record(EXP, result(), {})
    logger.close(5)
    assert len(server.events) == 1
    logger.record(EXP, result(user="u2"), {})
    assert logger.stats.dropped == 1
    assert logger.flush(0.1)


def test_close_at_exit_flushes(loggers: list[ExposureLogger]) -> None:
    from liftkit.sdk import _lifecycle

    server = FakeServer()
    logger = make(loggers, server)
    logger.record(EXP, result(), {})
    _lifecycle._run_exit_hooks()
    assert len(server.events) == 1
    assert logger not in set(_lifecycle._closables)


def test_unserialisable_attributes_do_not_break_a_batch(loggers: list[ExposureLogger]) -> None:
    server = FakeServer()
    logger = make(loggers, server)
    logger.record(EXP, result(), {"when": object()})
    assert logger.flush(5)
    assert logger.stats.sent == 1


def test_the_client_reports_exposures_to_its_logger(loggers: list[ExposureLogger]) -> None:
    server = FakeServer()
    logger = make(loggers, server)
    payload = {
        "features": {
            "f": {"defaultValue": 0, "rules": [{"key": "exp1", "variations": [0, 1]}]},
        }
    }
    callback: list[str] = []
    client = Client(
        payload, exposure_logger=logger, on_exposure=lambda e, r: callback.append(r.key)
    )
    for _ in range(3):  # three requests by the same user: one exposure sent
        client.for_user({"id": "u1", "plan": "pro"}).get("f")
    assert client.flush(5)
    assert len(callback) == 3
    (event,) = server.events
    assert event["feature_key"] == "f" and event["attributes"] == {"id": "u1", "plan": "pro"}
    assert client.exposure_stats == logger.stats
    assert client.exposure_stats is not None and client.exposure_stats.deduplicated == 2


def test_the_client_builds_a_logger_from_an_ingest_key() -> None:
    server = FakeServer({"features": {}})
    with Client(
        api_host="http://flags.invalid/",
        client_key="sdk-test",
        ingest_key=SECRET,
        transport=server,
        streaming=False,
    ) as client:
        assert client.exposure_logger is not None
        assert client.exposure_logger.endpoint == ENDPOINT
        assert SECRET not in repr(client.exposure_logger)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_with_an_empty_queue_and_its_own_sender(
    loggers: list[ExposureLogger],
) -> None:
    server = FakeServer()
    server.post_gate = gate = threading.Event()
    logger = make(loggers, server, batch_size=1)
    logger.record(EXP, result(user="parent-1"), {})
    wait_until(lambda: logger.stats.queued == 0)  # the sender holds it, blocked
    logger.record(EXP, result(user="parent-2"), {})
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            gate.set()  # the child's copy of the gate: its own sender must not block
            before = logger.stats
            logger.record(EXP, result(user="parent-2"), {})  # remembered: deduplicated
            logger.record(EXP, result(user="child"), {})
            ok = logger.flush(5)
            sent = [e["hash_value"] for e in server.events]
            os.write(w, f"{before.queued} {ok} {sent}\n".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        ready = select.select([r], [], [], 10)[0]
        assert ready, "the child did not answer"
        line = os.read(r, 1000).decode().strip()
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert line == "0 True ['child']"
    gate.set()
    assert logger.flush(5)
    assert [e["hash_value"] for e in server.events] == ["parent-1", "parent-2"]
