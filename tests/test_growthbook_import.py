"""Importing GrowthBook SDK payloads, proved by evaluation: the original payload and the payload
liftkit compiles from the imported objects serve every user the same value."""

from __future__ import annotations

import base64
import copy
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

import liftkit
from liftkit.platform import Platform
from liftkit.registry import Experiment, Feature, RolloutRule, SavedGroup
from liftkit.registry import config_as_code as cac
from liftkit.registry.growthbook_import import (
    ImportProblem,
    convert,
    desired_objects,
    read_payload,
)
from liftkit.registry.payload import compile_payload, encrypt_payload

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

#: What a GrowthBook server sends for one environment: targeting, rollouts (GrowthBook's own
#: hashing: version 1, feature key as seed), feature- and rule-level prerequisites, saved
#: groups, an inline experiment without key or hash version, experiment-ref rules with
#: namespaces and seeds, a stopped experiment (a seeded rollout) and typed values.
PAYLOAD: dict[str, Any] = {
    "status": 200,
    "dateUpdated": "2026-11-20T10:00:00.000Z",
    "features": {
        "dark-mode": {
            "defaultValue": False,
            "rules": [{"id": "fr_1", "condition": {"plan": {"$in": ["pro", "team"]}},
                       "force": True}],
        },
        "new-search": {
            "defaultValue": False,
            "rules": [
                {"id": "fr_2", "condition": {"country": "US"}, "force": True, "coverage": 0.3},
                {"id": "fr_3", "force": True, "coverage": 0.1, "hashAttribute": "company",
                 "seed": "search-ramp"},
            ],
        },
        "beta-banner": {
            "defaultValue": False,
            "rules": [
                {"id": "fr_4", "condition": {"id": {"$inGroup": "grp_beta"}}, "force": True},
                {"id": "fr_5", "condition": {"$or": [{"country": "GB"},
                                                     {"company": {"$inGroup": "grp_big"}}]},
                 "force": True},
            ],
        },
        "checkout-kill-switch": {
            "defaultValue": False,
            "rules": [{"id": "fr_6", "condition": {"country": "FR"}, "force": True}],
        },
        "checkout": {
            "defaultValue": "v1",
            "rules": [
                {"parentConditions": [{"id": "checkout-kill-switch",
                                       "condition": {"value": False}, "gate": True}]},
                {"id": "fr_7", "condition": {"appVersion": {"$vgte": "3.0.0"}},
                 "parentConditions": [{"id": "dark-mode", "condition": {"value": True}}],
                 "force": "v3"},
                {"id": "fr_8", "key": "checkout-redesign", "variations": ["v1", "v2"],
                 "weights": [0.5, 0.5], "coverage": 0.8, "hashAttribute": "id", "hashVersion": 2,
                 "seed": "0b7c6f0e-checkout", "phase": "1", "name": "Checkout redesign",
                 "meta": [{"key": "control", "name": "Control"},
                          {"key": "redesign", "name": "Redesign"}],
                 "namespace": ["checkout", 0, 0.6]},
            ],
        },
        "price": {
            "defaultValue": 9.99,
            "rules": [{"id": "fr_9", "variations": [9.99, 12.99, 14.99],
                       "weights": [0.3334, 0.3333, 0.3333], "coverage": 1,
                       "meta": [{"key": "0"}, {"key": "1"}, {"key": "2"}]}],
        },
        "onboarding-copy": {
            "defaultValue": {"title": "Welcome"},
            "rules": [{"id": "fr_10", "condition": {"country": {"$in": ["US", "CA"]}},
                       "force": {"title": "Hi there"}, "coverage": 1, "hashAttribute": "id",
                       "seed": "onboarding-exp", "hashVersion": 2}],
        },
        "search-algo": {
            "defaultValue": "bm25",
            "rules": [{"id": "fr_11", "condition": {"company": {"$notInGroup": "grp_big"}},
                       "key": "search-algo-test", "variations": ["bm25", "vector"],
                       "hashAttribute": "company", "fallbackAttribute": "id", "hashVersion": 2,
                       "coverage": 0.5, "meta": [{"key": "bm25"}, {"key": "vector"}]}],
        },
        "max-results": {
            "defaultValue": 10,
            "rules": [{"condition": {"plan": "pro"}, "force": 20},
                      {"force": 15, "coverage": 0.5}],
        },
        "gated-only": {
            "defaultValue": True,
            "rules": [{"parentConditions": [{"id": "dark-mode", "condition": {"value": True},
                                             "gate": True}]}],
        },
    },
    "savedGroups": {"grp_beta": [f"u{i}" for i in range(0, 600, 7)], "grp_big": ["acme", "globex"]},
}  # fmt: skip


def users(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        user: dict[str, Any] = {
            "id": f"u{i}",
            "country": rng.choice(["US", "GB", "FR", "DE", "CA"]),
            "plan": rng.choice(["free", "pro", "team"]),
            "appVersion": rng.choice(["2.9.1", "3.0.0", "3.4.2"]),
        }
        if rng.random() < 0.8:
            user["company"] = rng.choice(["acme", "globex", "initech", "umbrella", "hooli"])
        out.append(user)
    return out


def imported_payload(platform: Platform, payload: dict[str, Any]) -> dict[str, Any]:
    """Import ``payload`` into production through plan/apply, then compile it back."""
    result = convert(payload, environment="production", now=NOW)
    desired = desired_objects(platform.registry, result, "production")
    cac.apply(platform.registry, cac.plan(platform.registry, desired), "importer")
    snapshot = platform.registry.snapshot()
    return compile_payload(snapshot, environment="production", now=NOW).payload


def served(payload: dict[str, Any], people: list[dict[str, Any]]) -> dict[str, list[Any]]:
    client = liftkit.Client(payload=payload, streaming=False)
    try:
        out: dict[str, list[Any]] = {key: [] for key in PAYLOAD["features"]}
        for user in people:
            ctx = client.for_user(user)
            for key, seen in out.items():
                result = ctx.evaluate(key)
                variation = result.experiment_result
                seen.append((result.value, variation.variation_id if variation else None))
        return out
    finally:
        client.close()


def test_imported_objects_serve_every_user_what_growthbook_served(platform: Platform) -> None:
    result = convert(PAYLOAD, environment="production", now=NOW)
    assert result.warnings == [
        "feature 'beta-banner' rule 2 (fr_5): saved group 'grp_big' inlined as its list of values"
    ]
    people = users(2000)
    compiled = imported_payload(platform, PAYLOAD)
    original, mine = served(PAYLOAD, people), served(compiled, people)
    for key in PAYLOAD["features"]:
        assert mine[key] == original[key], key
    # The check can fail: every feature actually varies between users.
    for key in PAYLOAD["features"]:
        assert len({json.dumps(v) for v in original[key]}) > 1, key


def test_what_the_objects_look_like(platform: Platform) -> None:
    imported_payload(platform, PAYLOAD)
    registry = platform.registry
    checkout = registry.get("features", "checkout")
    assert isinstance(checkout, Feature)
    assert (checkout.value_type, checkout.kind) == ("string", "experiment")
    rules = checkout.environments["production"].rules
    assert [r.id for r in rules] == ["fr_7", "fr_8"]
    gate, dark_mode = rules[0].prerequisites
    assert (gate.feature, gate.gate, dark_mode.feature, dark_mode.gate) == (
        "checkout-kill-switch", True, "dark-mode", False,
    )  # fmt: skip
    experiment = registry.get("experiments", "checkout-redesign")
    assert isinstance(experiment, Experiment)
    assert experiment.status == "running" and experiment.hash_version == 2
    assert [v.key for v in experiment.variations] == ["control", "redesign"]
    assert experiment.namespaces[0].namespace == "checkout"
    assert registry.find("namespaces", "checkout") is not None
    price_test = registry.get("experiments", "price")  # inline experiment: keyed by its feature
    assert isinstance(price_test, Experiment) and price_test.hash_version == 1
    ramp = registry.get("features", "new-search")
    assert isinstance(ramp, Feature)
    rollout = ramp.environments["production"].rules[1]
    assert isinstance(rollout, RolloutRule)
    assert (rollout.hash_version, rollout.hash_attribute, rollout.seed) == (
        1,
        "company",
        "search-ramp",
    )
    beta = registry.get("saved-groups", "grp_beta")
    assert isinstance(beta, SavedGroup) and beta.attribute == "id" and "u7" in beta.values
    number = registry.get("features", "max-results")
    assert isinstance(number, Feature) and number.value_type == "number"
    json_flag = registry.get("features", "onboarding-copy")
    assert isinstance(json_flag, Feature) and json_flag.value_type == "json"


def test_importing_again_plans_nothing_and_keeps_other_environments(platform: Platform) -> None:
    imported_payload(platform, PAYLOAD)
    registry = platform.registry
    staging = copy.deepcopy(PAYLOAD)
    staging["features"]["dark-mode"]["rules"] = []
    again = convert(staging, environment="staging", now=NOW)
    cac.apply(registry, cac.plan(registry, desired_objects(registry, again, "staging")), "i")
    dark = registry.get("features", "dark-mode")
    assert isinstance(dark, Feature)
    assert set(dark.environments) == {"production", "staging"}
    assert dark.environments["production"].rules
    later = datetime(2026, 12, 1, tzinfo=UTC)
    repeat = convert(PAYLOAD, environment="production", now=later)
    plan = cac.plan(registry, desired_objects(registry, repeat, "production"))
    assert not plan.has_changes, [(c.key, c.diff) for c in plan.to_apply]


def test_encrypted_payloads_need_the_key() -> None:
    key = base64.b64encode(bytes(range(16))).decode()
    encrypted = json.dumps(encrypt_payload(PAYLOAD, key))
    with pytest.raises(ImportProblem, match="encrypted; pass its decryption key"):
        read_payload(encrypted)
    with pytest.raises(ImportProblem, match="cannot decrypt"):
        read_payload(encrypted, base64.b64encode(b"x" * 16).decode())
    decrypted = read_payload(encrypted, key)
    assert decrypted["features"] == PAYLOAD["features"]
    assert decrypted["savedGroups"] == PAYLOAD["savedGroups"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("{nope", "not valid JSON"), ("[1]", "JSON object"), ('{"status": 200}', "no 'features'")],
)
def test_unreadable_payloads_are_clear(text: str, message: str) -> None:
    with pytest.raises(ImportProblem, match=message):
        read_payload(text)


def test_what_cannot_be_carried_over_is_reported() -> None:
    payload = {
        "features": {
            "bad key!": {"defaultValue": True},
            "ranged": {"defaultValue": False, "rules": [{"force": True, "range": [0, 0.5]}]},
            "filtered": {"defaultValue": 0, "rules": [{
                "key": "e", "variations": [0, 1],
                "filters": [{"seed": "s", "ranges": [[0, 0.5]]}]}]},
            "bandit": {"defaultValue": "a", "rules": [{
                "key": "b", "variations": ["a", "b"], "contextualBanditRef": "cb"}]},
            "held-out": {"defaultValue": 1, "rules": [{
                "parentConditions": [{"id": "$holdout:h1", "condition": {"value": "control"}}],
                "force": 2}]},
            "sticky": {"defaultValue": "a", "rules": [{
                "key": "s", "variations": ["a", "b"], "disableStickyBucketing": True}]},
            "lonely": {"defaultValue": "a", "rules": [{"variations": ["a"]}]},
            "odd": {"defaultValue": 1, "rules": [{"force": 2, "condition": ["x"]},
                                                 {"force": 3, "parentConditions": ["x"]}]},
        },
        "experiments": [{"key": "visual", "variations": [{}, {}]}],
    }  # fmt: skip
    result = convert(payload, environment="production", now=NOW)
    text = "\n".join(result.warnings)
    for expected in (
        "feature 'bad key!': skipped",
        "feature 'ranged' rule 1: uses range",
        "feature 'filtered' rule 1: uses filters",
        "feature 'bandit' rule 1: uses contextualBanditRef",
        "depends on '$holdout:h1'",
        "ignored disableStickyBucketing",
        "needs two variations",
        "feature 'odd' rule 1: cannot be imported (a condition is an object)",
        "feature 'odd' rule 2: depends on ''",
        "1 auto (visual editor / URL redirect) experiments",
    ):
        assert expected in text
    kept = {f.key: f for f in result.features}
    assert set(kept) == {"ranged", "filtered", "bandit", "held-out", "sticky", "lonely", "odd"}
    assert kept["ranged"].environments["production"].rules == []
    assert [e.key for e in result.experiments] == ["s"]
