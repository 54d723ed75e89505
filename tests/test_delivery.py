"""Flag delivery in one process: payloads, ETags, CORS, encryption, schedules, keys, streaming,
and real SDKs (liftkit's, GrowthBook's) pointed at the server (SQLite and PostgreSQL). Remote
evaluation and OFREP are in test_delivery_evaluation.py, other processes in
test_delivery_processes.py."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from datetime import timedelta
from typing import Any

import pytest

import liftkit
from delivery_support import (
    ENV,
    RULE,
    SSEReader,
    client,
    experiment_setup,
    live_server,
    publish_flag,
    sdk_key,
)
from liftkit.platform import Platform
from liftkit.registry.accounts import token_digest
from liftkit.registry.payload import compile_payload, to_json
from liftkit.sdk._engine import CompiledPayload
from liftkit.sdk._types import UserContext
from sdk_fakes import wait_until


def features_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    features: dict[str, Any] = response.json()["features"]
    return features


# -- GET /api/features ------------------------------------------------------------------------


def test_payload_is_the_compiled_snapshot_with_etag_and_cache_headers(platform: Platform) -> None:
    publish_flag(platform, "checkout", False, [RULE])
    key = sdk_key(platform)
    with client(platform) as http:
        first = http.get(f"/api/features/{key}")
        expected = compile_payload(
            platform.registry.snapshot(), environment=ENV, now=platform.clock()
        ).payload
        assert first.content == to_json(expected).encode()
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
        cache_control = first.headers["cache-control"]
        assert "public" in cache_control
        assert f"max-age={platform.settings.payload_max_age}" in cache_control
        assert "stale-while-revalidate=" in cache_control
        assert first.headers["content-type"] == "application/json"
        assert first.headers["x-sse-support"] == "enabled"  # GrowthBook SDKs then stream

        again = http.get(f"/api/features/{key}", headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["etag"] == etag
        listed = http.get(f"/api/features/{key}", headers={"If-None-Match": f'"x", W/{etag}'})
        assert listed.status_code == 304

        publish_flag(platform, "checkout", True)  # published in this process: compiled at once
        wait_until(lambda: http.get(f"/api/features/{key}").headers["etag"] != etag)
        changed = http.get(f"/api/features/{key}", headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert features_of(changed)["checkout"] == {"defaultValue": True}


def test_large_payloads_are_gzipped_for_clients_that_ask(platform: Platform) -> None:
    for i in range(40):
        publish_flag(platform, f"flag-{i:02d}", f"value-{i}" * 3)
    key = sdk_key(platform)
    with client(platform) as http:
        plain = http.get(f"/api/features/{key}", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        zipped = http.get(f"/api/features/{key}", headers={"Accept-Encoding": "gzip, br"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["vary"] == "Accept-Encoding"
        assert zipped.content == plain.content  # httpx decoded it
        assert int(zipped.headers["content-length"]) < len(plain.content) / 2
        assert zipped.headers["etag"] != plain.headers["etag"]
        for etag in (zipped.headers["etag"], plain.headers["etag"]):
            revalidated = http.get(f"/api/features/{key}", headers={"If-None-Match": etag})
            assert revalidated.status_code == 304
        refused = http.get(f"/api/features/{key}", headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers


def test_unknown_revoked_and_non_sdk_keys(platform: Platform) -> None:
    key = sdk_key(platform)
    secret, _ = platform.accounts.create_key("secret", created_by="test", role="admin")
    with client(platform) as http:
        unknown = http.get("/api/features/sdk-doesnotexist")
        assert unknown.status_code == 404
        assert unknown.json()["message"] == "unknown or revoked SDK client key"
        assert http.get(f"/api/features/{secret}").status_code == 403
        assert http.get(f"/sub/{secret}").status_code == 403

        late = sdk_key(platform)  # created after start: picked up without any publish
        wait_until(lambda: http.get(f"/api/features/{late}").status_code == 200)

        assert http.get(f"/api/features/{key}").status_code == 200
        platform.accounts.revoke_key(platform.accounts.sdk_digests()[token_digest(key)].id)
        wait_until(lambda: http.get(f"/api/features/{key}").status_code == 404)
        assert http.post(f"/api/eval/{key}", json={}).status_code == 404
        assert http.get(f"/api/features/{late}").status_code == 200


def test_cors_any_origin_and_preflight(platform: Platform) -> None:
    key = sdk_key(platform)
    with client(platform) as http:
        response = http.get(f"/api/features/{key}", headers={"Origin": "https://shop.example"})
        assert response.headers["access-control-allow-origin"] == "*"
        exposed = response.headers["access-control-expose-headers"]
        assert "ETag" in exposed and "X-SSE-Support" in exposed
        preflight = http.options(
            f"/api/eval/{key}",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-custom",
            },
        )
        assert preflight.status_code == 204
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["access-control-allow-headers"] == "content-type, x-custom"


def test_cors_restricted_to_listed_origins(platform: Platform) -> None:
    settings = dataclasses.replace(
        platform.settings, cors_origins="https://a.example, https://b.example"
    )
    restricted = Platform(settings)
    try:
        key = sdk_key(restricted)
        with client(restricted) as http:
            allowed = http.get(f"/api/features/{key}", headers={"Origin": "https://b.example"})
            assert allowed.headers["access-control-allow-origin"] == "https://b.example"
            assert allowed.headers["vary"] == "Origin"
            other = http.get(f"/api/features/{key}", headers={"Origin": "https://evil.example"})
            assert other.status_code == 200
            assert "access-control-allow-origin" not in other.headers
            preflight = http.options(
                f"/api/features/{key}",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
            )
            assert "access-control-allow-methods" not in preflight.headers
    finally:
        restricted.close()


def test_encrypted_payload_round_trips_through_the_sdks(platform: Platform) -> None:
    from growthbook.growthbook import decrypt

    publish_flag(platform, "checkout", False, [RULE])
    key = sdk_key(platform, encrypt=True)
    [record] = platform.accounts.keys("sdk")
    secret = record.config["encryption_key"]
    with client(platform) as http:
        body = http.get(f"/api/features/{key}").json()
        assert body["features"] == {} and "checkout" not in json.dumps(body)
        sdk = liftkit.Client(body, decryption_key=secret)
        assert sdk.for_user({"country": "GB"}).is_on("checkout")
        assert not sdk.for_user({"country": "FR"}).is_on("checkout")
        assert json.loads(decrypt(body["encryptedFeatures"], secret)) == {
            "checkout": {
                "defaultValue": False,
                "rules": [{"id": f"{ENV}-1", "force": True, "condition": {"country": "GB"}}],
            }
        }
        # Remote evaluation and OFREP work on the plaintext, server-side.
        evaluated = http.post(f"/api/eval/{key}", json={"attributes": {"country": "GB"}})
        assert evaluated.json()["features"]["checkout"] == {"defaultValue": True}


def test_rule_schedule_changes_the_payload_when_it_starts(platform: Platform) -> None:
    start = platform.clock() + timedelta(seconds=1.5)
    scheduled = {"type": "force", "value": True, "schedule": {"start_at": start.isoformat()}}
    publish_flag(platform, "launch", False, [scheduled])
    key = sdk_key(platform)
    with client(platform) as http:
        assert features_of(http.get(f"/api/features/{key}"))["launch"] == {"defaultValue": False}
        wait_until(lambda: "rules" in features_of(http.get(f"/api/features/{key}"))["launch"], 6)
        assert platform.clock() >= start
        payload = CompiledPayload(http.get(f"/api/features/{key}").json())
        assert payload.evaluate("launch", UserContext()).value is True


# -- streaming and real clients ---------------------------------------------------------------


def metric(http_url: str, name: str) -> float:
    text = urllib.request.urlopen(f"{http_url}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not exported")


def test_sse_pushes_each_publish_and_tracks_clients(platform: Platform) -> None:
    publish_flag(platform, "checkout", False)
    key = sdk_key(platform)
    with live_server(platform) as url:
        with SSEReader(f"{url}/sub/{key}") as stream:
            assert stream.status == 200
            wait_until(lambda: stream.retry is not None)
            assert metric(url, "liftkit_sse_clients") == 1
            publish_flag(platform, "checkout", True)
            event = stream.next_event(timeout=15)  # latency is measured in benchmarks/
            data = json.loads(event.data)
            assert data["features"]["checkout"] == {"defaultValue": True}

            fetched = urllib.request.urlopen(f"{url}/api/features/{key}", timeout=5)
            assert fetched.read() == event.data.encode()
            assert fetched.headers["etag"] == f'"{event.id}"'
            publish_flag(platform, "banner", "hello")
            assert "banner" in stream.next_payload()["features"]
        wait_until(lambda: metric(url, "liftkit_sse_clients") == 0)

        # A client reconnecting with a stale Last-Event-ID is caught up at once; a current one
        # gets nothing until the next change (GrowthBook's proxy sends nothing on connect).
        with SSEReader(f"{url}/sub/{key}", {"Last-Event-ID": "stale"}) as behind:
            assert behind.next_payload()["features"]["banner"] == {"defaultValue": "hello"}
        with SSEReader(f"{url}/sub/{key}") as fresh, pytest.raises(AssertionError):
            fresh.next_event(timeout=0.5)
        with SSEReader(f"{url}/sub/sdk-unknown") as unknown:
            assert unknown.status == 404
        head = urllib.request.Request(f"{url}/sub/{key}", method="HEAD")
        with urllib.request.urlopen(head, timeout=5) as answered:
            assert answered.headers["content-type"].startswith("text/event-stream")


def test_sse_keepalive_comments(platform: Platform) -> None:
    settings = dataclasses.replace(platform.settings, sse_keepalive_seconds=0.2)
    quick = Platform(settings)
    try:
        key = sdk_key(quick)
        with live_server(quick) as url, SSEReader(f"{url}/sub/{key}") as stream:
            wait_until(lambda: stream.lines.count(": ping") >= 2, 3)
    finally:
        quick.close()


def test_liftkit_client_follows_changes(platform: Platform) -> None:
    publish_flag(platform, "checkout", False, [RULE])
    key = sdk_key(platform)
    with (
        live_server(platform) as url,
        liftkit.Client(api_host=url, client_key=key, ttl=3600, reconnect_delay=0.05) as sdk,
    ):
        assert sdk.ready
        assert sdk.for_user({"country": "GB"}).is_on("checkout")
        wait_until(lambda: metric(url, "liftkit_sse_clients") == 1)
        publish_flag(platform, "checkout", False)  # the rule is gone
        wait_until(lambda: not sdk.for_user({"country": "GB"}).is_on("checkout"))


def test_growthbook_sdk_local_and_remote_evaluation(platform: Platform) -> None:
    from growthbook import GrowthBook
    from growthbook.growthbook import feature_repo

    key = experiment_setup(platform)
    with live_server(platform) as url:
        local = GrowthBook(api_host=url, client_key=key, attributes={"id": "u3", "country": "GB"})
        local.load_features()
        assert local.is_on("checkout")
        price = local.get_feature_value("price", None)
        assert price in (10, 12, 15)
        viewed: list[str] = []
        remote = GrowthBook(
            api_host=url,
            client_key=key,
            remote_eval=True,
            attributes={"id": "u3", "country": "GB"},
            on_experiment_viewed=lambda experiment, result, **_: viewed.append(experiment.key),
        )
        assert remote.get_feature_value("price", None) == price
        assert remote.is_on("checkout")
        assert viewed == ["price-test"]
        remote.destroy()
        local.destroy()

        # growthbook keeps one process-wide stream client and never forgets its host: reset it.
        feature_repo.stopAutoRefresh(timeout=2)
        streaming = GrowthBook(api_host=url, client_key=key, streaming=True)
        try:
            assert streaming.get_feature_value("banner", "none") == "none"
            wait_until(lambda: metric(url, "liftkit_sse_clients") == 1)
            publish_flag(platform, "banner", "hello")
            wait_until(lambda: streaming.get_feature_value("banner", "none") == "hello")
        finally:
            streaming.destroy(timeout=2)
            feature_repo.stopAutoRefresh(timeout=2)


def test_compile_failure_keeps_serving_the_previous_payload(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_flag(platform, "checkout", True)
    key = sdk_key(platform)
    with client(platform) as http:
        before = http.get(f"/api/features/{key}").content

        def broken() -> None:
            raise RuntimeError("database on fire")

        monkeypatch.setattr(platform.registry, "snapshot", broken)
        publish_flag(platform, "checkout", False)
        cache = http.app.state.cache  # type: ignore[attr-defined]
        wait_until(lambda: cache._failing)
        assert http.get(f"/api/features/{key}").content == before
        assert http.get("/readyz").status_code == 200
        monkeypatch.undo()
        publish_flag(platform, "checkout", "fixed", value_type="string")
        wait_until(lambda: http.get(f"/api/features/{key}").content != before, 8)


def test_hot_path_middleware_serves_payloads_before_the_router(platform: Platform) -> None:
    from delivery_support import TestClient, create_app
    from liftkit.api.delivery import HotPaths

    publish_flag(platform, "checkout", True)
    key = sdk_key(platform)
    app = create_app(platform, admin_api=False)
    state = app.state
    app.add_middleware(HotPaths, platform=platform, cache=state.cache, metrics=state.metrics)
    with TestClient(app) as http, client(platform) as routed:
        fast = http.get(f"/api/features/{key}")
        slow = routed.get(f"/api/features/{key}")
        assert fast.content == slow.content
        assert fast.headers == slow.headers
        assert (
            http.get(
                f"/api/features/{key}", headers={"If-None-Match": fast.headers["etag"]}
            ).status_code
            == 304
        )
        assert http.get("/api/features/sdk-nope").status_code == 404
        assert http.head(f"/api/features/{key}").content == b""
        assert http.get("/healthz").text == "ok"  # everything else passes through
        assert http.options(f"/api/features/{key}").status_code == 204
        exposition = http.get("/metrics").text
        assert 'route="sdk_payload",status="200"} 1.0' in exposition
        assert 'route="sdk_payload",status="304"} 1.0' in exposition


def test_client_keys_are_redacted_from_access_logs() -> None:
    import logging

    from liftkit.api.delivery import RedactClientKeys, redact_client_keys

    line = '127.0.0.1 - "GET /api/features/sdk-Secret123?x=1 HTTP/1.1" 200 /sub/sdk-Other'
    assert redact_client_keys(line) == (
        '127.0.0.1 - "GET /api/features/***?x=1 HTTP/1.1" 200 /sub/***'
    )
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s "%s %s"', ("ip", "POST", "/api/eval/sdk-k"), None
    )
    RedactClientKeys().filter(record)
    assert "sdk-k" not in record.getMessage() and "/api/eval/***" in record.getMessage()
