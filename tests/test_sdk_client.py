"""The client's evaluation surface: loading local payloads, contexts, defaults, exposures."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from liftkit.sdk import sticky
from liftkit.sdk._engine import CompiledPayload
from liftkit.sdk.client import Client, EvalContext
from liftkit.sdk.errors import PayloadError
from sdk_fakes import flag_payload

EXPERIMENT = {
    "key": "exp1",
    "variations": ["control", "treatment"],
    "weights": [0.5, 0.5],
    "hashAttribute": "id",
    "meta": [{"key": "c"}, {"key": "t"}],
}
PAYLOAD: dict[str, Any] = {
    "features": {
        "banner": {"defaultValue": True},
        "color": {
            "defaultValue": "blue",
            "rules": [{"condition": {"plan": "pro"}, "force": "gold"}],
        },
        "nothing": {"defaultValue": None},
        "checkout": {"defaultValue": "control", "rules": [EXPERIMENT]},
        "zero": {"defaultValue": 0},
    }
}


def test_evaluates_a_dict_payload() -> None:
    client = Client(PAYLOAD)
    ctx = client.for_user({"id": "u1", "plan": "pro"})
    assert isinstance(ctx, EvalContext)
    assert ctx.is_on("banner") and not ctx.is_off("banner")
    assert ctx.get("color") == "gold"
    assert client.for_user({"plan": "free"}).get("color") == "blue"
    result = ctx.evaluate("color")
    assert (result.value, result.source) == ("gold", "force")
    assert ctx.is_off("zero") and ctx.get("zero", 5) == 0
    assert client.ready and client.version == 1 and client.age is None and not client.stale


def test_get_returns_the_callers_default_for_unknown_and_null_values() -> None:
    ctx = Client(PAYLOAD).for_user({"id": "u1"})
    assert ctx.get("missing", "fallback") == "fallback"
    assert ctx.get("missing") is None
    assert ctx.evaluate("missing").source == "unknownFeature"
    assert ctx.get("nothing", 7) == 7
    assert not ctx.is_on("missing")


def test_experiment_result_carries_key_variation_and_flag() -> None:
    ctx = Client(PAYLOAD).for_user({"id": "u1"})
    result = ctx.evaluate("checkout")
    assert result.source == "experiment"
    assert result.experiment_key == "exp1"
    assert result.in_experiment
    assert result.variation_id in (0, 1)
    assert result.experiment_result is not None
    assert result.experiment_result.key == ("c", "t")[result.variation_id or 0]


@pytest.mark.parametrize("as_str", [True, False])
def test_loads_a_payload_file(tmp_path: Path, as_str: bool) -> None:
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(flag_payload(answer=42)))
    client = Client(str(path) if as_str else path)
    assert client.for_user({}).get("answer") == 42


def test_accepts_a_compiled_payload() -> None:
    payload = CompiledPayload.from_dict(flag_payload(answer=42))
    assert Client(payload).payload is payload


def test_unreadable_local_payloads_raise_payload_error(tmp_path: Path) -> None:
    with pytest.raises(PayloadError, match="cannot read"):
        Client(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PayloadError):
        Client(bad)
    with pytest.raises(PayloadError):
        Client({"features": []})


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="client_key"):
        Client(api_host="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="max_staleness"):
        Client(PAYLOAD, max_staleness=0)
    with pytest.raises(ValueError, match="ingest_key"):
        Client(PAYLOAD, ingest_key="secret")


def test_without_a_payload_contexts_serve_the_configured_defaults() -> None:
    client = Client(defaults={"banner": False, "limit": 10})
    ctx = client.for_user({"id": "u1"})
    assert ctx.serving_defaults
    assert not client.ready
    assert ctx.get("limit") == 10
    assert ctx.evaluate("limit").source == "defaultValue"
    assert ctx.get("other", "x") == "x"
    assert ctx.evaluate("other").source == "unknownFeature"
    assert {k: r.value for k, r in ctx.evaluate_all().items()} == {"banner": False, "limit": 10}


def test_results_are_memoised_per_context(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = CompiledPayload.evaluate

    def counting(self: CompiledPayload, key: str, user: Any) -> Any:
        calls.append(key)
        return real(self, key, user)

    monkeypatch.setattr(CompiledPayload, "evaluate", counting)
    client = Client(PAYLOAD)
    ctx = client.for_user({"id": "u1"})
    first = ctx.evaluate("color")
    assert ctx.evaluate("color") is first
    ctx.get("color")
    ctx.is_on("color")
    assert calls == ["color"]
    client.for_user({"id": "u1"}).evaluate("color")
    assert calls == ["color", "color"]


def test_evaluate_all_agrees_with_single_evaluations() -> None:
    ctx = Client(PAYLOAD).for_user({"id": "u1", "plan": "pro"})
    single = ctx.evaluate("color")
    everything = ctx.evaluate_all()
    assert set(everything) == set(PAYLOAD["features"])
    assert everything["color"] is single
    assert everything["checkout"] is ctx.evaluate("checkout")


def test_evaluation_errors_are_logged_and_served_as_defaults(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: CompiledPayload, *args: Any) -> Any:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(CompiledPayload, "evaluate", broken)
    monkeypatch.setattr(CompiledPayload, "evaluate_all", broken)
    ctx = Client(PAYLOAD, defaults={"color": "grey"}).for_user({"id": "u1"})
    with caplog.at_level(logging.ERROR, logger="liftkit.sdk"):
        assert ctx.get("color") == "grey"
        assert ctx.evaluate("banner").source == "unknownFeature"
        assert ctx.evaluate_all()["color"].value == "grey"
    assert "engine bug" in caplog.text


def test_on_exposure_fires_once_per_context_and_experiment() -> None:
    seen: list[tuple[str, str]] = []
    client = Client(PAYLOAD, on_exposure=lambda exp, res: seen.append((exp["key"], res.key)))
    ctx = client.for_user({"id": "u1"})
    ctx.get("checkout")
    ctx.evaluate_all()
    ctx.is_on("checkout")
    assert len(seen) == 1 and seen[0][0] == "exp1"
    client.for_user({"id": "u1"}).get("checkout")
    assert len(seen) == 2
    client.for_user({"id": "u1"}).get("banner")  # no experiment, no exposure
    assert len(seen) == 2


def test_a_failing_exposure_callback_does_not_reach_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(exp: Any, res: Any) -> None:
        raise ValueError("callback bug")

    ctx = Client(PAYLOAD, on_exposure=explode).for_user({"id": "u1"})
    with caplog.at_level(logging.ERROR, logger="liftkit.sdk"):
        assert ctx.get("checkout") in ("control", "treatment")
    assert "callback bug" in caplog.text


def test_forced_variations_and_features_are_passed_to_the_engine() -> None:
    client = Client(PAYLOAD)
    ctx = client.for_user({"id": "u1"}, forced_variations={"exp1": 1}, forced_features={"x": 3})
    assert ctx.get("checkout") == "treatment"
    assert ctx.evaluate("x").source == "override"
    assert client.for_user({"id": "u1"}, forced_variations={"exp1": 0}).get("checkout") == (
        "control"
    )


def _sticky_payload(weights: list[float]) -> dict[str, Any]:
    rule = {**EXPERIMENT, "weights": weights, "bucketVersion": 0}
    return {"features": {"checkout": {"defaultValue": "none", "rules": [rule]}}}


def test_sticky_bucketing_keeps_a_users_variation_across_weight_changes() -> None:
    service = sticky.InMemoryStickyBucketService()
    first = Client(_sticky_payload([1.0, 0.0]), sticky_bucket_service=service)
    assert first.for_user({"id": "u1"}).get("checkout") == "control"
    doc = service.get_assignments("id", "u1")
    assert doc is not None and doc["assignments"] == {"exp1__0": "c"}

    moved = _sticky_payload([0.0, 1.0])
    assert Client(moved).for_user({"id": "u1"}).get("checkout") == "treatment"
    result = Client(moved, sticky_bucket_service=service).for_user({"id": "u1"})
    assert result.get("checkout") == "control"
    assert result.evaluate("checkout").experiment_result is not None
    assert result.evaluate("checkout").experiment_result.sticky_bucket_used  # type: ignore[union-attr]


def test_a_failing_sticky_service_does_not_reach_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def get_assignments(self, name: str, value: str) -> dict[str, Any] | None:
            raise OSError("redis down")

        def save_assignments(self, doc: dict[str, Any]) -> None:
            raise OSError("redis down")

    client = Client(_sticky_payload([1.0, 0.0]), sticky_bucket_service=Broken())
    with caplog.at_level(logging.ERROR, logger="liftkit.sdk"):
        assert client.for_user({"id": "u1"}).get("checkout") == "control"
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "liftkit: loading sticky buckets failed; bucketing without them",
        "liftkit: saving a sticky bucket failed",
    ]


def test_contexts_keep_their_snapshot_while_the_payload_is_swapped() -> None:
    client = Client(flag_payload(n=0))
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            ctx = client.for_user({})
            first = ctx.get("n")
            if ctx.get("n") != first or not isinstance(first, int):
                errors.append(f"inconsistent {first}")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for n in range(1, 200):
        client._set_payload(CompiledPayload.from_dict(flag_payload(n=n)))
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert client.for_user({}).get("n") == 199 and client.version == 200


def test_update_listeners_run_and_their_errors_are_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    client = Client(flag_payload(n=0), on_update=lambda: calls.append(1))

    def bad() -> None:
        raise RuntimeError("listener bug")

    client.add_update_listener(bad)
    with caplog.at_level(logging.ERROR, logger="liftkit.sdk"):
        client._set_payload(CompiledPayload.from_dict(flag_payload(n=1)))
    assert calls == [1]
    assert "listener bug" in caplog.text


def test_close_is_idempotent_and_contexts_still_work() -> None:
    with Client(PAYLOAD) as client:
        pass
    client.close()
    assert client.for_user({}).is_on("banner")
    assert client.flush() and client.exposure_stats is None and not client.refresh()


def test_redirect_and_url_targeted_experiments_through_a_context() -> None:
    exposures: list[str] = []
    client = Client(
        {
            "experiments": [
                {
                    "key": "new-home",
                    "urlPatterns": [{"type": "simple", "include": True, "pattern": "/home"}],
                    "variations": [{}, {"urlRedirect": "https://example.com/home2"}],
                    "weights": [0, 1],
                }
            ]
        },
        on_exposure=lambda exp, res: exposures.append(str(exp["key"])),
    )
    ctx = client.for_user({"id": "1"}, url="https://example.com/home")
    redirect = ctx.redirect()
    assert redirect is not None and redirect.url == "https://example.com/home2"
    ((experiment, result),) = ctx.auto_experiments()
    assert experiment["key"] == "new-home" and result.variation_id == 1
    assert exposures == ["new-home"]  # once per context
    assert client.for_user({"id": "1"}, url="https://example.com/other").redirect() is None
    offline = Client(defaults={}).for_user({"id": "1"}, url="https://example.com/home")
    assert offline.redirect() is None and offline.auto_experiments() == []
