"""Server-side evaluation over HTTP: GrowthBook remote evaluation and OpenFeature OFREP
(SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import liftkit
from delivery_support import ENV, client, experiment_setup, publish_flag, sdk_key
from liftkit.platform import Platform
from liftkit.sdk._engine import CompiledPayload
from liftkit.sdk._types import UserContext
from sdk_fakes import wait_until

# -- remote evaluation ------------------------------------------------------------------------


def test_remote_eval_matches_local_evaluation_and_reports_exposures(platform: Platform) -> None:
    key = experiment_setup(platform)
    with client(platform) as http:
        local = CompiledPayload(http.get(f"/api/features/{key}").json())
        for user_id in ("u1", "u2", "u3", "u4", "u5", "u6"):
            attributes = {"id": user_id, "country": "GB"}
            body = http.post(f"/api/eval/{key}", json={"attributes": attributes}).json()
            expected = local.evaluate("price", UserContext(attributes=attributes))
            price = body["features"]["price"]
            assert price["defaultValue"] == expected.value
            [rule] = price["rules"]
            [track] = rule["tracks"]
            assert track["experiment"]["key"] == "price-test"
            assert "condition" not in track["experiment"]
            variation = track["result"]["variationId"]
            assert track["result"]["value"] == expected.value
            shown = track["experiment"]["variations"]
            assert [v for i, v in enumerate(shown) if i != variation] == [{}, {}]
            assert body["features"]["checkout"] == {"defaultValue": True}
            # liftkit's SDK evaluates the response and replays the exposure.
            seen: list[Any] = []
            sdk = liftkit.Client(body, on_exposure=lambda exp, res, seen=seen: seen.append(exp))
            assert sdk.for_user({}).get("price") == expected.value
            assert [exp["key"] for exp in seen] == ["price-test"]


def test_remote_eval_honours_forced_features_variations_and_url(platform: Platform) -> None:
    key = experiment_setup(platform)
    with client(platform) as http:
        body = {
            "attributes": {"id": "u1"},
            "forcedVariations": {"price-test": 2},
            "forcedFeatures": [["checkout", "forced"]],
            "url": "https://shop.example/cart",
        }
        features = http.post(f"/api/eval/{key}", json=body).json()["features"]
        assert features["price"]["defaultValue"] == 15
        assert features["checkout"] == {"defaultValue": "forced"}
        as_object = {**body, "forcedFeatures": {"checkout": 7}, "forcedVariations": {}}
        features = http.post(f"/api/eval/{key}", json=as_object).json()["features"]
        assert features["checkout"] == {"defaultValue": 7}


BAD_BODIES = [
    (b"{not json", "body"),
    (b"[1, 2]", "body"),
    (b'{"attributes": [1]}', "attributes"),
    (b'{"forcedVariations": {"x": "a"}}', "forcedVariations"),
    (b'{"forcedFeatures": [["x"]]}', "forcedFeatures"),
    (b'{"url": 5}', "url"),
]


def test_remote_eval_rejects_bad_bodies_naming_the_field(platform: Platform) -> None:
    key = sdk_key(platform)
    with client(platform) as http:
        for body, field in BAD_BODIES:
            response = http.post(f"/api/eval/{key}", content=body)
            assert response.status_code == 400, body
            assert response.json()["message"].startswith(f"{field}:"), body
        assert http.post(f"/api/eval/{key}", content=b"").status_code == 200


# -- OFREP ------------------------------------------------------------------------------------


def ofrep(http: Any, path: str, key: str | None, body: Any, **headers: str) -> Any:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return http.post(f"/ofrep/v1/evaluate/flags{path}", json=body, headers=headers)


def test_ofrep_single_flag_reasons_variants_and_metadata(platform: Platform) -> None:
    key = experiment_setup(platform)
    publish_flag(platform, "plain", "blue")
    publish_flag(platform, "nothing", None, value_type="json")
    publish_flag(platform, "rollout", False, [{"type": "rollout", "value": True, "coverage": 1.0}])
    with client(platform) as http:
        gb = ofrep(http, "/checkout", key, {"context": {"targetingKey": "u1", "country": "GB"}})
        assert gb.status_code == 200
        assert gb.json() == {
            "key": "checkout",
            "value": True,
            "reason": "TARGETING_MATCH",
            "variant": f"{ENV}-1",
            "metadata": {"source": "force", "ruleId": f"{ENV}-1"},
        }
        fr = ofrep(http, "/checkout", key, {"context": {"targetingKey": "u1", "country": "FR"}})
        assert (fr.json()["value"], fr.json()["reason"]) == (False, "DEFAULT")
        assert ofrep(http, "/plain", key, {}).json()["reason"] == "STATIC"
        assert (
            ofrep(http, "/rollout", key, {"context": {"targetingKey": "u1"}}).json()["reason"]
            == "SPLIT"
        )
        code_default = ofrep(http, "/nothing", key, {"context": {}}).json()
        assert "value" not in code_default and code_default["reason"] == "DEFAULT"

        local = CompiledPayload(http.get(f"/api/features/{key}").json())
        split = ofrep(http, "/price", key, {"context": {"targetingKey": "u7"}}).json()
        expected = local.evaluate("price", UserContext(attributes={"id": "u7"}))
        assert split["value"] == expected.value and split["reason"] == "SPLIT"
        assert expected.experiment_result is not None
        assert split["variant"] == expected.experiment_result.key
        assert split["metadata"]["experimentKey"] == "price-test"
        via_header = http.post(
            "/ofrep/v1/evaluate/flags/price",
            json={"context": {"targetingKey": "u7"}},
            headers={"X-API-Key": key},
        )
        assert via_header.json() == split


def test_ofrep_errors(platform: Platform) -> None:
    key = experiment_setup(platform)
    secret, _ = platform.accounts.create_key("secret", created_by="test", role="admin")
    with client(platform) as http:
        missing = ofrep(http, "/nope", key, {"context": {}})
        assert missing.status_code == 404
        assert missing.json()["errorCode"] == "FLAG_NOT_FOUND"
        assert missing.json()["key"] == "nope"
        garbled = http.post(
            "/ofrep/v1/evaluate/flags/price",
            content=b"{oops",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert (garbled.status_code, garbled.json()["errorCode"]) == (400, "PARSE_ERROR")
        bad_context = ofrep(http, "/price", key, {"context": [1]})
        assert (bad_context.status_code, bad_context.json()["errorCode"]) == (
            400,
            "INVALID_CONTEXT",
        )
        bad_key = ofrep(http, "/price", key, {"context": {"targetingKey": 5}})
        assert bad_key.json()["errorCode"] == "INVALID_CONTEXT"
        assert "targetingKey" in bad_key.json()["errorDetails"]
        assert ofrep(http, "/price", None, {}).status_code == 401
        assert ofrep(http, "/price", "sdk-unknown", {}).status_code == 401
        assert ofrep(http, "", "sdk-unknown", {}).status_code == 401
        assert ofrep(http, "/price", secret, {}).status_code == 403
        bulk_bad = ofrep(http, "", key, {"context": "x"})
        assert (bulk_bad.status_code, bulk_bad.json()["errorCode"]) == (400, "INVALID_CONTEXT")


def test_ofrep_bulk_with_etag(platform: Platform) -> None:
    key = experiment_setup(platform)
    context = {"context": {"targetingKey": "u1", "country": "GB"}}
    with client(platform) as http:
        first = ofrep(http, "", key, context)
        assert first.status_code == 200
        flags = {f["key"]: f for f in first.json()["flags"]}
        assert set(flags) == {"price", "checkout"}
        assert flags["checkout"]["value"] is True
        single = ofrep(http, "/price", key, context).json()
        assert flags["price"] == single
        etag = first.headers["etag"]
        same = ofrep(http, "", key, context, **{"If-None-Match": etag})
        assert (same.status_code, same.content) == (304, b"")
        other = {"context": {"targetingKey": "u1", "country": "FR"}}
        changed = ofrep(http, "", key, other, **{"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        publish_flag(platform, "checkout", "new", value_type="string")
        wait_until(
            lambda: ofrep(http, "", key, context, **{"If-None-Match": etag}).status_code == 200
        )
        config = http.get("/ofrep/v1/configuration").json()
        assert config["name"] == "liftkit"
