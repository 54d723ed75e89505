"""Compiling registry objects into SDK payloads, checked by evaluating them with the SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import liftkit
from liftkit.registry import Registry
from liftkit.registry.payload import Compiled, compile_payload, encrypt_payload, secure_hash
from liftkit.sdk._hashing import hash_value, in_namespace

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def registry(platform: Any) -> Registry:
    return platform.registry  # type: ignore[no-any-return]


def compiled(registry: Registry, environment: str = "production", **kw: Any) -> Compiled:
    return compile_payload(registry.snapshot(), environment=environment, now=NOW, **kw)


def flag(key: str, *rules: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"key": key, "environments": {"production": {"enabled": True, "rules": list(rules)}}}
    return body | fields


def values(payload: dict[str, Any], key: str, users: list[dict[str, Any]]) -> list[Any]:
    client = liftkit.Client(payload=payload, streaming=False)
    try:
        return [client.for_user(user).get(key) for user in users]
    finally:
        client.close()


USERS = [{"id": f"user-{i}"} for i in range(3000)]


def test_features_off_in_an_environment_or_archived_are_left_out(registry: Registry) -> None:
    registry.save("features", flag("on"), "u")
    registry.save("features", flag("archived", archived=True), "u")
    off = flag("off")
    off["environments"]["production"]["enabled"] = False
    registry.save("features", off, "u")
    registry.save("features", flag("elsewhere", project="other"), "u")
    assert set(compiled(registry).payload["features"]) == {"on", "elsewhere"}
    assert set(compiled(registry, project="other").payload["features"]) == {"elsewhere"}
    assert compiled(registry, environment="staging").payload["features"] == {}


def test_rollout_serves_the_share_it_says(registry: Registry) -> None:
    registry.save(
        "features", flag("ramp", {"type": "rollout", "value": True, "coverage": 0.2}), "u"
    )
    served = values(compiled(registry).payload, "ramp", USERS)
    assert 0.17 < sum(served) / len(served) < 0.23
    # Raising the coverage keeps everyone who already had the feature (same seed).
    registry.save(
        "features", flag("ramp", {"type": "rollout", "value": True, "coverage": 0.5}), "u"
    )
    wider = values(compiled(registry).payload, "ramp", USERS)
    assert all(w for s, w in zip(served, wider, strict=True) if s)


def test_saved_groups_lists_conditions_and_matching_modes(registry: Registry) -> None:
    registry.save(
        "saved-groups", {"key": "vip", "type": "list", "attribute": "id", "values": ["a", "b"]}, "u"
    )
    registry.save("saved-groups", {"key": "gb", "condition": {"country": "GB"}}, "u")
    rules = [
        {"type": "force", "value": True, "saved_groups": [{"match": "all", "ids": ["vip", "gb"]}]},
    ]
    registry.save("features", flag("both", *rules), "u")
    registry.save(
        "features",
        flag(
            "either",
            {
                "type": "force",
                "value": True,
                "saved_groups": [{"match": "any", "ids": ["vip", "gb"]}],
            },
        ),
        "u",
    )
    registry.save(
        "features",
        flag(
            "neither",
            {
                "type": "force",
                "value": True,
                "saved_groups": [{"match": "none", "ids": ["vip", "gb"]}],
            },
        ),
        "u",
    )
    payload = compiled(registry).payload
    assert payload["savedGroups"] == {"vip": ["a", "b"]}
    users = [
        {"id": "a", "country": "GB"},
        {"id": "a", "country": "US"},
        {"id": "z", "country": "FR"},
    ]
    assert values(payload, "both", users) == [True, False, False]
    assert values(payload, "either", users) == [True, True, False]
    assert values(payload, "neither", users) == [False, False, True]


def test_a_missing_saved_group_fails_closed_with_a_warning(registry: Registry) -> None:
    registry.save(
        "features",
        flag("f", {"type": "force", "value": True, "saved_groups": [{"ids": ["gone"]}]}),
        "u",
    )
    result = compiled(registry)
    assert values(result.payload, "f", [{"id": "a"}]) == [False]
    assert "saved group 'gone' does not exist" in result.warnings[0]


def test_secure_string_attributes_are_published_hashed(registry: Registry) -> None:
    registry.save("attributes", {"key": "email", "datatype": "secureString"}, "u")
    registry.save(
        "saved-groups",
        {"key": "staff", "type": "list", "attribute": "email", "values": ["boss@example.com"]},
        "u",
    )
    registry.save(
        "features",
        flag(
            "secret",
            {"type": "force", "value": True, "condition": {"email": {"$in": ["a@example.com"]}}},
        ),
        "u",
    )
    registry.save(
        "features",
        flag("staff", {"type": "force", "value": True, "saved_groups": [{"ids": ["staff"]}]}),
        "u",
    )
    payload = compiled(registry, salt="pepper").payload
    text = str(payload)
    assert "a@example.com" not in text and "boss@example.com" not in text
    hashed = {"email": secure_hash("a@example.com", "pepper")}
    assert values(payload, "secret", [hashed, {"email": "a@example.com"}]) == [True, False]
    assert values(payload, "staff", [{"email": secure_hash("boss@example.com", "pepper")}]) == [
        True
    ]


def experiment(key: str = "exp", **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "status": "running",
        "variations": [{"key": "c", "payload": "A"}, {"key": "t", "payload": "B"}],
    } | fields


def test_experiment_in_one_namespace_uses_the_namespace_field(registry: Registry) -> None:
    registry.save(
        "experiments", experiment(namespaces=[{"namespace": "ns", "start": 0.0, "end": 0.3}]), "u"
    )
    registry.save(
        "features",
        flag(
            "f",
            {"type": "experiment", "experiment": "exp"},
            value_type="string",
            default_value="off",
        ),
        "u",
    )
    rule = compiled(registry).payload["features"]["f"]["rules"][0]
    assert rule["namespace"] == ["ns", 0.0, 0.3]
    served = values(compiled(registry).payload, "f", USERS)
    for user, value in zip(USERS, served, strict=True):
        assert (value != "off") == in_namespace(user["id"], ["ns", 0.0, 0.3])


def test_several_namespaces_and_a_holdout_all_apply(registry: Registry) -> None:
    """Filters are ANDed: in both namespace slices and outside the holdout, never otherwise."""
    namespaces = [
        {"namespace": "a", "start": 0.0, "end": 0.6},
        {"namespace": "b", "start": 0.2, "end": 0.9},
    ]
    registry.save("experiments", experiment(namespaces=namespaces), "u")
    registry.save("holdouts", {"key": "h", "share": 0.1}, "u")
    registry.save(
        "features",
        flag(
            "f",
            {"type": "experiment", "experiment": "exp"},
            value_type="string",
            default_value="off",
        ),
        "u",
    )
    payload = compiled(registry).payload
    assert len(payload["features"]["f"]["rules"][0]["filters"]) == 3
    served = values(payload, "f", USERS)
    for user, value in zip(USERS, served, strict=True):
        held_out = (hash_value("holdout:h", user["id"], 2) or 0) < 0.1
        expected = (
            in_namespace(user["id"], ["a", 0.0, 0.6])
            and in_namespace(user["id"], ["b", 0.2, 0.9])
            and not held_out
        )
        assert (value != "off") == expected
    assert (
        0.3 < sum(v != "off" for v in served) / len(served) < 0.4
    )  # 0.4 * 0.9 ≈ 0.36 under independence


def test_experiment_lifecycle_in_the_payload(registry: Registry) -> None:
    registry.save("experiments", experiment(status="draft"), "u")
    registry.save(
        "features",
        flag(
            "f",
            {"type": "experiment", "experiment": "exp"},
            value_type="string",
            default_value="off",
        ),
        "u",
    )
    assert "rules" not in compiled(registry).payload["features"]["f"]
    registry.save(
        "experiments",
        experiment(
            variations=[
                {"key": "c", "payload": "A", "weight": 0.1},
                {"key": "t", "payload": "B", "weight": 0.9},
            ],
        ),
        "u",
    )
    served = values(compiled(registry).payload, "f", USERS)
    assert 0.87 < served.count("B") / len(served) < 0.93
    registry.save(
        "experiments", experiment(status="stopped", result="won", released_variation="t"), "u"
    )
    assert set(values(compiled(registry).payload, "f", USERS[:50])) == {"B"}
    registry.save("experiments", experiment(status="stopped", result="lost"), "u")
    assert set(values(compiled(registry).payload, "f", USERS[:50])) == {"off"}


def test_rule_values_override_variation_payloads_and_mismatches_warn(registry: Registry) -> None:
    registry.save("experiments", experiment(), "u")
    registry.save(
        "features",
        flag(
            "f",
            {"type": "experiment", "experiment": "exp", "values": [1, 2]},
            value_type="number",
            default_value=0,
        ),
        "u",
    )
    registry.save(
        "features",
        flag(
            "g",
            {"type": "experiment", "experiment": "exp", "values": [1, 2, 3]},
            value_type="number",
            default_value=0,
        ),
        "u",
    )
    registry.save(
        "features",
        flag(
            "h", {"type": "experiment", "experiment": "nope"}, value_type="number", default_value=0
        ),
        "u",
    )
    result = compiled(registry)
    assert set(values(result.payload, "f", USERS[:200])) == {1, 2}
    assert "rules" not in result.payload["features"]["g"]
    assert any("3 values for 2 variations" in w for w in result.warnings)
    assert any("experiment 'nope' does not exist" in w for w in result.warnings)


def test_schedules_and_the_next_change(registry: Registry) -> None:
    start = NOW + timedelta(hours=2)
    end = NOW + timedelta(days=1)
    registry.save(
        "features",
        flag(
            "sale",
            {
                "type": "force",
                "value": True,
                "schedule": {"start_at": start.isoformat(), "end_at": end.isoformat()},
            },
        ),
        "u",
    )
    before = compile_payload(registry.snapshot(), environment="production", now=NOW)
    assert "rules" not in before.payload["features"]["sale"] and before.next_change_at == start
    during = compile_payload(registry.snapshot(), environment="production", now=start)
    assert values(during.payload, "sale", [{"id": "x"}]) == [True] and during.next_change_at == end
    after = compile_payload(registry.snapshot(), environment="production", now=end)
    assert "rules" not in after.payload["features"]["sale"] and after.next_change_at is None


def test_prerequisites_gate_a_rule(registry: Registry) -> None:
    registry.save(
        "features",
        flag("parent", {"type": "force", "value": True, "condition": {"plan": "pro"}}),
        "u",
    )
    registry.save(
        "features",
        flag("child", {"type": "force", "value": True, "prerequisites": [{"feature": "parent"}]}),
        "u",
    )
    registry.save(
        "features",
        flag(
            "gated",
            {
                "type": "force",
                "value": True,
                "prerequisites": [{"feature": "parent", "gate": True}],
            },
        ),
        "u",
    )
    payload = compiled(registry).payload
    # A rule-level prerequisite skips the rule; a gate turns the whole feature off.
    assert values(payload, "child", [{"plan": "pro"}, {"plan": "free"}]) == [True, False]
    assert values(payload, "gated", [{"plan": "pro"}, {"plan": "free"}]) == [True, None]


def test_encrypted_payloads_decrypt_with_the_sdk_and_are_deterministic(registry: Registry) -> None:
    import base64
    import os

    registry.save(
        "saved-groups", {"key": "vip", "type": "list", "attribute": "id", "values": ["a"]}, "u"
    )
    registry.save(
        "features",
        flag("f", {"type": "force", "value": True, "saved_groups": [{"ids": ["vip"]}]}),
        "u",
    )
    key = base64.b64encode(os.urandom(16)).decode()
    plain = compiled(registry).payload
    encrypted = encrypt_payload(plain, key)
    assert encrypted["features"] == {} and "vip" not in str(encrypted)
    assert encrypt_payload(plain, key) == encrypted
    client = liftkit.Client(payload=encrypted, decryption_key=key, streaming=False)
    assert client.for_user({"id": "a"}).get("f") is True
    assert client.for_user({"id": "b"}).get("f") is False
    client.close()
