"""The OpenFeature provider: types, reasons, variants, errors, context mapping, events."""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from liftkit.sdk._engine import CompiledPayload
from liftkit.sdk.client import Client
from liftkit.sdk.openfeature import LiftkitProvider

PAYLOAD: dict[str, Any] = {
    "features": {
        "flag": {"defaultValue": False, "rules": [{"condition": {"plan": "pro"}, "force": True}]},
        "text": {"defaultValue": "hello"},
        "count": {"defaultValue": 3},
        "whole": {"defaultValue": 4.0},
        "ratio": {"defaultValue": 0.5},
        "config": {"defaultValue": {"a": [1, 2]}},
        "empty": {"defaultValue": None},
        "exp": {
            "defaultValue": "none",
            "rules": [
                {
                    "key": "exp1",
                    "variations": ["a", "b"],
                    "meta": [{"key": "control"}, {"key": "treatment"}],
                }
            ],
        },
        "since": {
            "defaultValue": False,
            "rules": [{"condition": {"signup": {"$gt": "2024-01-01"}}, "force": True}],
        },
    }
}


@pytest.fixture
def provider() -> LiftkitProvider:
    return LiftkitProvider(Client(PAYLOAD))


def ctx(key: str | None = "u1", **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=key, attributes=attributes)


def test_resolves_each_type(provider: LiftkitProvider) -> None:
    assert provider.resolve_boolean_details("flag", True, ctx(plan="pro")).value is True
    assert provider.resolve_string_details("text", "x").value == "hello"
    assert provider.resolve_integer_details("count", 0).value == 3
    assert provider.resolve_integer_details("whole", 0).value == 4
    ratio = provider.resolve_float_details("ratio", 0.0)
    assert ratio.value == 0.5
    count_as_float = provider.resolve_float_details("count", 0.0)
    assert count_as_float.value == 3.0 and isinstance(count_as_float.value, float)
    assert provider.resolve_object_details("config", {}).value == {"a": [1, 2]}


def test_reasons_follow_the_result_source(provider: LiftkitProvider) -> None:
    forced = provider.resolve_boolean_details("flag", False, ctx(plan="pro"))
    assert forced.reason == Reason.TARGETING_MATCH and forced.variant is None
    default = provider.resolve_boolean_details("flag", True, ctx(plan="free"))
    assert (default.value, default.reason) == (False, Reason.DEFAULT)
    split = provider.resolve_string_details("exp", "x", ctx("u1"))
    assert split.reason == Reason.SPLIT
    assert split.variant == {"a": "control", "b": "treatment"}[split.value]
    assert split.flag_metadata["experimentKey"] == "exp1"
    assert split.flag_metadata["source"] == "experiment"


def test_the_targeting_key_is_the_id_attribute(provider: LiftkitProvider) -> None:
    seen = set()
    for i in range(40):
        seen.add(provider.resolve_string_details("exp", "x", ctx(f"user-{i}")).value)
        first = provider.resolve_string_details("exp", "x", ctx(f"user-{i}", id="ignored"))
        again = provider.resolve_string_details("exp", "x", ctx(f"user-{i}"))
        assert first.value == again.value
    assert seen == {"a", "b"}
    no_id = provider.resolve_string_details("exp", "x", ctx(None))
    assert no_id.value == "none" and no_id.reason == Reason.DEFAULT


def test_datetime_attributes_become_iso_strings(provider: LiftkitProvider) -> None:
    late = datetime(2025, 3, 1, tzinfo=UTC)
    early = datetime(2023, 3, 1, tzinfo=UTC)
    assert provider.resolve_boolean_details("since", False, ctx(signup=late)).value is True
    assert provider.resolve_boolean_details("since", False, ctx(signup=early)).value is False


def test_errors(provider: LiftkitProvider) -> None:
    missing = provider.resolve_boolean_details("nope", True)
    assert (missing.value, missing.reason, missing.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )
    for details in [
        provider.resolve_boolean_details("text", False),
        provider.resolve_integer_details("ratio", 7),
        provider.resolve_integer_details("flag", 7),
        provider.resolve_float_details("flag", 1.5),
        provider.resolve_string_details("count", "d"),
        provider.resolve_object_details("text", {"d": 1}),
    ]:
        assert details.error_code == ErrorCode.TYPE_MISMATCH
        assert details.value in (False, 7, 1.5, "d", {"d": 1})
    empty = provider.resolve_string_details("empty", "fallback")
    assert (empty.value, empty.reason, empty.error_code) == ("fallback", Reason.DEFAULT, None)


def test_not_ready_and_stale() -> None:
    client = Client(defaults={"text": "offline"})
    provider = LiftkitProvider(client)
    not_ready = provider.resolve_string_details("other", "d")
    assert (not_ready.value, not_ready.error_code) == ("d", ErrorCode.PROVIDER_NOT_READY)
    served = provider.resolve_string_details("text", "d")
    assert (served.value, served.reason) == ("offline", Reason.STALE)


def test_through_the_openfeature_api_with_change_events() -> None:
    client = Client(PAYLOAD)
    changes: list[Any] = []
    api.set_provider(LiftkitProvider(client), "liftkit-test")
    try:
        flags = api.get_client("liftkit-test")
        flags.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, changes.append)
        assert flags.get_boolean_value("flag", False, ctx(plan="pro")) is True
        details = flags.get_string_details("exp", "x", ctx("u1"))
        assert details.reason == Reason.SPLIT and details.variant in ("control", "treatment")
        assert flags.get_integer_value("nope", 9) == 9
        client._set_payload(
            CompiledPayload.from_dict({"features": {"flag": {"defaultValue": True}}})
        )
        assert flags.get_boolean_value("flag", False) is True
        assert len(changes) == 1
    finally:
        api.clear_providers()


def test_a_clear_error_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "openfeature" or n.startswith("openfeature.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "liftkit.sdk.openfeature")
    with pytest.raises(ImportError, match=r"liftkit\[openfeature\]"):
        importlib.import_module("liftkit.sdk.openfeature")
