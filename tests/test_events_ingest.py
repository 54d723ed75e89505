"""POST /api/v1/events in-process: bad input, limits, live counters, metrics and status."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import duckdb
import pytest
from starlette.testclient import TestClient

from liftkit.app import create_app
from liftkit.platform import Platform
from liftkit.settings import Settings

NOW = datetime.now(UTC)


def exposure(i: int, **changes: Any) -> dict[str, Any]:
    event = {
        "type": "exposure",
        "event_id": f"x-{i}",
        "timestamp": NOW.isoformat().replace("+00:00", "Z"),
        "experiment_key": "checkout-button",
        "variation_id": i % 2,
        "hash_attribute": "id",
        "hash_value": f"user-{i}",
        "attributes": {"id": f"user-{i}", "country": "NZ"},
    }
    return {**event, **changes}


def track(i: int, **changes: Any) -> dict[str, Any]:
    event = {
        "type": "track",
        "event_id": f"t-{i}",
        "timestamp": NOW.isoformat(),
        "name": "purchase",
        "value": 12.5,
        "user_id": f"user-{i}",
        "properties": {"sku": "A1"},
    }
    return {**event, **changes}


class Ingest:
    """A running app with an ingest key and an admin key."""

    def __init__(self, platform: Platform, client: TestClient, token: str, admin: str) -> None:
        self.platform = platform
        self.client = client
        self.auth = {"Authorization": f"Bearer {token}"}
        self.admin = {"Authorization": f"Bearer {admin}"}

    def post(self, body: Any, headers: dict[str, str] | None = None) -> Any:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(
            "/api/v1/events", content=content, headers={**self.auth, **(headers or {})}
        )

    def stored(self, table: str = "exposures") -> list[tuple[Any, ...]]:
        pipeline = self.client.app.state.pipeline  # type: ignore[attr-defined]
        assert pipeline.flush()
        path = self.platform.settings.data_dir / "events.duckdb"
        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute(f"SELECT * FROM {table} ORDER BY event_id").fetchall()


def make_ingest(tmp_path: Any, **settings: Any) -> Iterator[Ingest]:
    platform = Platform(Settings(data_dir=tmp_path / "data", **settings))
    platform.bootstrap()
    admin, _ = platform.accounts.create_key("secret", created_by="test", role="admin")
    token, _ = platform.accounts.create_key("ingest", created_by="test", name="ingest")
    try:
        with TestClient(create_app(platform)) as client:
            yield Ingest(platform, client, token, admin)
    finally:
        platform.close()


@pytest.fixture
def ingest(tmp_path: Any) -> Iterator[Ingest]:
    yield from make_ingest(tmp_path)


def test_valid_batch_is_stored_with_its_own_timestamps(ingest: Ingest) -> None:
    late = NOW - timedelta(days=3)
    day = (NOW - timedelta(days=1)).replace(microsecond=0, tzinfo=None)  # naive UTC
    plus_two = timezone(timedelta(hours=2))
    body = [
        exposure(1),
        exposure(2, timestamp=late.isoformat()),
        # an offset is converted to UTC; Unix seconds are UTC; no zone means UTC
        exposure(3, timestamp=(day.replace(tzinfo=UTC).astimezone(plus_two)).isoformat()),
        exposure(4, timestamp=int(day.replace(tzinfo=UTC).timestamp()) - 3600),
        track(1),
        track(2, value=None, timestamp=day.isoformat()),
    ]
    response = ingest.post(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 6, "rejected": []}
    rows = ingest.stored()
    assert [r[0] for r in rows] == ["x-1", "x-2", "x-3", "x-4"]
    assert rows[2][1] == day
    assert rows[3][1] == day - timedelta(hours=1)
    assert rows[1][1] == late.replace(tzinfo=None)  # attributed by its own timestamp
    assert rows[1][2] > rows[1][1] + timedelta(days=2)  # received_at is arrival time
    assert json.loads(rows[0][9]) == {"id": "user-1", "country": "NZ"}
    events = ingest.stored("events")
    assert [(e[0], e[3], e[4], e[5]) for e in events] == [
        ("t-1", "purchase", 12.5, "user-1"),
        ("t-2", "purchase", None, "user-2"),
    ]
    assert events[1][1] == day


def test_mixed_batch_keeps_the_valid_events_and_names_each_bad_field(ingest: Ingest) -> None:
    body = [
        exposure(1),
        exposure(2, variation_id="two"),
        {k: v for k, v in exposure(3).items() if k != "event_id"},
        exposure(4, timestamp="yesterday"),
        track(5, user_id=None),
        {"type": "click", "event_id": "c"},
        "not an object",
        exposure(6, colour="red"),
        exposure(7),
    ]
    response = ingest.post(body)
    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 2
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [
        (1, "variation_id"),
        (2, "event_id"),
        (3, "timestamp"),
        (4, "(event)"),
        (5, "type"),
        (6, "(event)"),
        (7, "colour"),
    ]
    assert "user_id or anonymous_id" in result["rejected"][3]["message"]
    assert [r[0] for r in ingest.stored()] == ["x-1", "x-7"]


def test_every_event_rejected_is_422_and_nothing_is_stored(ingest: Ingest) -> None:
    response = ingest.post([exposure(1, variation_id=-1), exposure(2, hash_value="")])
    assert response.status_code == 422
    assert [r["field"] for r in response.json()["rejected"]] == ["variation_id", "hash_value"]
    assert ingest.stored() == []


def test_ndjson_and_gzip(ingest: Ingest) -> None:
    lines = b"\n".join(json.dumps(e).encode() for e in [exposure(1), exposure(2)])
    lines += b"\n{broken\n\n" + json.dumps(track(3)).encode() + b"\n"
    response = ingest.post(lines, {"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 3,
        "rejected": [{"index": 2, "field": "(line)", "message": "not valid JSON"}],
    }
    zipped = gzip.compress(json.dumps([exposure(4)]).encode())
    response = ingest.post(zipped, {"Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 1, "rejected": []}
    assert [r[0] for r in ingest.stored()] == ["x-1", "x-2", "x-4"]
    assert ingest.post(b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip"}).status_code == 400
    assert ingest.post(b"[]", {"Content-Encoding": "br"}).status_code == 415


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[{", "not valid JSON"),
        (b"", None),
        (b"42", "expected a JSON array"),
        (b'"events"', "expected a JSON array"),
    ],
)
def test_bodies_that_are_not_events(ingest: Ingest, body: bytes, fragment: str | None) -> None:
    response = ingest.post(body)
    if fragment is None:  # an empty body is an empty batch
        assert response.status_code == 200
        assert response.json() == {"accepted": 0, "rejected": []}
        return
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_resent_events_are_stored_once(ingest: Ingest) -> None:
    batch = [exposure(i) for i in range(5)]
    assert ingest.post(batch).status_code == 200
    assert ingest.post([*batch, exposure(1)]).status_code == 200  # resent, and twice within
    assert [r[0] for r in ingest.stored()] == [f"x-{i}" for i in range(5)]
    status = ingest.client.get("/api/v1/events/status", headers=ingest.admin).json()
    assert status["loaded"]["duplicates"] == 6
    assert status["loaded"]["exposures"] == 5


def test_clock_skew_and_age_limits(ingest: Ingest) -> None:
    now = datetime.now(UTC)  # not NOW: the suite may have run for minutes since import
    ahead = (now + timedelta(minutes=10)).isoformat()
    slightly = (now + timedelta(seconds=30)).isoformat()
    old = (now - timedelta(days=40)).isoformat()
    response = ingest.post(
        [exposure(1, timestamp=ahead), exposure(2, timestamp=slightly), exposure(3, timestamp=old)]
    )
    rejected = response.json()["rejected"]
    assert response.json()["accepted"] == 1
    assert rejected[0]["index"] == 0 and "in the future (limit 300 s)" in rejected[0]["message"]
    assert rejected[1]["index"] == 2 and "events import" in rejected[1]["message"]


def test_credentials(ingest: Ingest) -> None:
    client = ingest.client
    no_key = client.post("/api/v1/events", content=b"[]")
    assert no_key.status_code == 401 and "Bearer" in no_key.json()["message"]
    assert "www-authenticate" in no_key.headers
    bad = client.post(
        "/api/v1/events", content=b"[]", headers={"Authorization": "Bearer lk_ing_nope"}
    )
    assert bad.status_code == 401
    admin = client.post("/api/v1/events", content=b"[]", headers=ingest.admin)
    assert admin.status_code == 403 and "ingest key" in admin.json()["message"]
    sdk_token, _ = ingest.platform.accounts.create_key(
        "sdk", created_by="t", name="s", environment="production"
    )
    sdk = client.post(
        "/api/v1/events", content=b"[]", headers={"Authorization": f"Bearer {sdk_token}"}
    )
    assert sdk.status_code == 403
    # ... and an ingest key cannot read anything
    assert client.get("/api/v1/features", headers=ingest.auth).status_code == 403


def test_size_and_length_limits(tmp_path: Any) -> None:
    for ingest in make_ingest(tmp_path, ingest_max_body_mb=1, ingest_max_batch=100):
        big = json.dumps([exposure(1, attributes={"pad": "x" * (2 << 20)})]).encode()
        response = ingest.post(big)
        assert response.status_code == 413 and "1 MB" in response.json()["message"]
        bomb = gzip.compress(b"[" + b" " * (3 << 20) + b"]")
        response = ingest.post(bomb, {"Content-Encoding": "gzip"})
        assert response.status_code == 413 and "unzipped" in response.json()["message"]
        response = ingest.post([exposure(i) for i in range(101)])
        assert response.status_code == 413 and "limit is 100" in response.json()["message"]
        assert ingest.post([exposure(i) for i in range(100)]).status_code == 200


def test_rate_limit_answers_429_with_retry_after(tmp_path: Any) -> None:
    for ingest in make_ingest(tmp_path, ingest_rate_limit=1.0, ingest_max_batch=50):
        assert ingest.post([exposure(i) for i in range(50)]).status_code == 200
        response = ingest.post([exposure(99)])
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert "1 events/s" in response.json()["message"]


def test_backlog_over_the_limit_answers_503_with_retry_after(tmp_path: Any) -> None:
    for ingest in make_ingest(tmp_path, spool_max_mb=0, events_load_seconds=3600.0):
        assert ingest.post([exposure(1)]).status_code == 200  # the backlog was empty
        response = ingest.post([exposure(2)])
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "wait to be loaded" in response.json()["message"]
        assert [r[0] for r in ingest.stored()] == ["x-1"]  # loading frees the spool again
        assert ingest.post([exposure(2)]).status_code == 200


def test_cors_preflight_allows_browser_sdks(ingest: Ingest) -> None:
    response = ingest.client.options(
        "/api/v1/events",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "authorization" in response.headers["access-control-allow-headers"]


def running_experiment(platform: Platform, weights: list[float]) -> None:
    platform.registry.save(
        "experiments",
        {
            "key": "checkout-button",
            "status": "running",
            "variations": [
                {"key": "control", "weight": weights[0]},
                {"key": "treatment", "weight": weights[1]},
            ],
            "phases": [{"name": "main", "started_at": (NOW - timedelta(days=1)).isoformat()}],
        },
        "user:test",
    )


def units(control: int, treatment: int, start: int = 0) -> list[dict[str, Any]]:
    events = [exposure(start + i, variation_id=0) for i in range(control)]
    events += [exposure(start + control + i, variation_id=1) for i in range(treatment)]
    return events


def test_live_counters_flag_a_planted_srm(ingest: Ingest) -> None:
    running_experiment(ingest.platform, [0.5, 0.5])
    before = ingest.client.get(
        "/api/v1/experiments/checkout-button/exposures", headers=ingest.admin
    ).json()
    assert (before["units"], before["weights"], before["srm"]["p_value"]) == (
        [0, 0],
        [0.5, 0.5],
        None,
    )
    ingest.post(units(600, 400))
    ingest.post(units(600, 400))  # the same units again: counted once
    live = ingest.client.get("/api/v1/experiments/checkout-button/exposures", headers=ingest.admin)
    body = live.json()
    assert body["units"] == [600, 400]
    assert body["weights"] == [0.5, 0.5]
    assert body["srm"]["flagged"] is True and body["srm"]["p_value"] < 1e-9
    metrics = ingest.client.get("/metrics").text
    assert (
        'liftkit_experiment_exposed_units{experiment="checkout-button",variation="0"} 600.0'
        in metrics
    )
    assert 'liftkit_experiment_srm_p_value{experiment="checkout-button"}' in metrics
    assert 'liftkit_events_received_total{outcome="accepted"} 2000.0' in metrics


def test_live_counters_pass_a_healthy_split_and_count_multiple_exposures(ingest: Ingest) -> None:
    running_experiment(ingest.platform, [0.2, 0.8])
    ingest.post(units(205, 795))
    ingest.post([exposure(3, variation_id=1), exposure(999, variation_id=0, hash_value="user-3")])
    body = ingest.client.get(
        "/api/v1/experiments/checkout-button/exposures", headers=ingest.admin
    ).json()
    assert body["units"] == [204, 795]  # user-3 saw both: out of the counts
    assert body["multiple_exposures"] == 1
    assert body["srm"]["flagged"] is False and body["srm"]["p_value"] > 0.1
    everything = ingest.client.get("/api/v1/events/live", headers=ingest.admin).json()
    assert [item["experiment"] for item in everything["items"]] == ["checkout-button"]
    unknown = ingest.client.get("/api/v1/experiments/nope/exposures", headers=ingest.admin)
    assert unknown.status_code == 404


def test_live_counters_are_rebuilt_from_the_store_after_a_restart(tmp_path: Any) -> None:
    for ingest in make_ingest(tmp_path):
        running_experiment(ingest.platform, [0.5, 0.5])
        ingest.post(units(30, 20))
    for ingest in make_ingest(tmp_path):
        ingest.post(units(0, 5, start=1000))
        pipeline = ingest.client.app.state.pipeline  # type: ignore[attr-defined]
        assert pipeline.flush()
        body = ingest.client.get(
            "/api/v1/experiments/checkout-button/exposures", headers=ingest.admin
        ).json()
        assert body["units"] == [30, 25]


def test_ingest_is_in_the_openapi_document(ingest: Ingest) -> None:
    spec = ingest.client.get("/openapi.json").json()
    post = spec["paths"]["/api/v1/events"]["post"]
    assert set(post["responses"]) >= {"200", "400", "401", "413", "422", "429", "503"}
    assert {"ExposureEvent", "TrackEvent"} <= set(spec["components"]["schemas"])


def test_settings_reach_the_endpoint(tmp_path: Any) -> None:
    settings = replace(Settings(data_dir=tmp_path), ingest_max_future_seconds=5.0)
    platform = Platform(settings)
    platform.bootstrap()
    token, _ = platform.accounts.create_key("ingest", created_by="t", name="i")
    with TestClient(create_app(platform)) as client:
        ahead = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
        response = client.post(
            "/api/v1/events",
            content=json.dumps([exposure(1, timestamp=ahead, event_id=uuid.uuid4().hex)]),
            headers={"Authorization": f"Bearer {token}"},
        )
    platform.close()
    assert "limit 5 s" in response.json()["rejected"][0]["message"]


def test_the_docs_show_the_tables() -> None:
    from pathlib import Path

    from liftkit.events.store import TABLES, markdown_table

    docs = (Path(__file__).resolve().parents[1] / "docs" / "events.md").read_text()
    for table in TABLES:
        assert markdown_table(table) in docs


def test_a_second_app_on_the_same_data_directory_refuses_events(ingest: Ingest) -> None:
    """The spool has one writer; a second server on the same directory answers 503."""
    assert ingest.post([exposure(1)]).status_code == 200
    with TestClient(create_app(ingest.platform)) as second:
        response = second.post(
            "/api/v1/events", content=json.dumps([exposure(2)]), headers=ingest.auth
        )
        assert response.status_code == 503
        assert "in use by another liftkit process" in response.json()["message"]
        assert second.get("/readyz").status_code == 200  # it serves everything else
    assert ingest.post([exposure(3)]).status_code == 200
    assert [r[0] for r in ingest.stored()] == ["x-1", "x-3"]
