"""Engine behaviour beyond the specification vectors: bad payloads, encryption, the compiled
fast path, exposures, sticky bucketing across payload changes, redirects."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from liftkit.sdk._engine import CompiledPayload
from liftkit.sdk._experiments import Experiment, assign_plain, run
from liftkit.sdk._jsvalues import compare, number_to_string, to_number
from liftkit.sdk._types import ExperimentResult, UserContext
from liftkit.sdk.errors import DecryptionError, MissingDependencyError, PayloadError
from liftkit.sdk.sticky import InMemoryStickyBucketService, load_docs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from payload import make_payload, make_users


def test_payload_must_be_an_object() -> None:
    with pytest.raises(PayloadError, match="JSON object"):
        CompiledPayload.from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="not valid JSON"):
        CompiledPayload.from_json("{nope")
    with pytest.raises(PayloadError, match="'features' must be a JSON dict"):
        CompiledPayload.from_dict({"features": []})


def test_a_malformed_rule_is_skipped_and_reported_the_rest_still_works() -> None:
    payload = CompiledPayload.from_dict(
        {
            "features": {
                "f": {"defaultValue": 1, "rules": [{"force": 2, "range": "bad"}, {"force": 3}]},
                "g": "not a definition",
            }
        }
    )
    assert payload.evaluate("f", UserContext()).value == 3
    assert payload.evaluate("g", UserContext()).value is None
    assert len(payload.warnings) == 2
    assert any("rule 0" in w for w in payload.warnings)


def _encrypt(plain: str, key: bytes) -> str:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(data) + enc.finalize()
    return base64.b64encode(iv).decode() + "." + base64.b64encode(ct).decode()


def test_encrypted_payload_round_trip_and_clear_errors() -> None:
    key = os.urandom(16)
    key_b64 = base64.b64encode(key).decode()
    features = {"secret": {"defaultValue": "visible"}}
    data = {"encryptedFeatures": _encrypt(json.dumps(features), key)}
    payload = CompiledPayload.from_dict(data, decryption_key=key_b64)
    assert payload.evaluate("secret", UserContext()).value == "visible"
    with pytest.raises(PayloadError, match="pass decryption_key"):
        CompiledPayload.from_dict(data)
    wrong = base64.b64encode(os.urandom(16)).decode()
    with pytest.raises(DecryptionError):
        CompiledPayload.from_dict(data, decryption_key=wrong)


def test_missing_cryptography_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "cryptography" or name.startswith("cryptography."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cryptography", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match=r"liftkit\[crypto\]"):
        CompiledPayload.from_dict({"encryptedFeatures": "aaaa.bbbb"}, decryption_key="a2V5")


def test_conditions_are_compiled_once_not_per_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = CompiledPayload.from_dict(
        {
            "features": {
                "f": {
                    "defaultValue": False,
                    "rules": [{"condition": {"email": {"$regex": "@acme\\.com$"}}, "force": True}],
                }
            }
        }
    )

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("re.compile called during evaluation")

    monkeypatch.setattr(re, "compile", forbidden)
    assert payload.evaluate("f", UserContext({"email": "a@acme.com"})).value is True
    assert payload.evaluate("f", UserContext({"email": "a@other.com"})).value is False


def test_fast_path_agrees_with_the_full_algorithm() -> None:
    payload = CompiledPayload.from_dict(make_payload())
    experiments = [
        rule.experiment
        for feature in payload.features.values()
        for rule in feature.rules
        if isinstance(rule.experiment, Experiment)
    ]
    assert experiments and all(e.plain for e in experiments)
    users = [*make_users(300), {"id": 12345}, {"id": ""}, {"id": None}, {}]
    for attrs in users:
        user = UserContext(attrs)
        for exp in experiments:
            full = run(exp, user, "f")
            fast = assign_plain(exp, user, "f")
            if fast is None:
                assert not full.in_experiment
            else:
                assert fast == full


def test_exposures_fire_for_experiments_including_prerequisite_parents() -> None:
    payload = CompiledPayload.from_dict(
        {
            "features": {
                "parent": {"defaultValue": 0, "rules": [{"key": "p-exp", "variations": [1, 1]}]},
                "child": {
                    "defaultValue": "off",
                    "rules": [
                        {
                            "parentConditions": [{"id": "parent", "condition": {"value": 1}}],
                            "force": "on",
                        }
                    ],
                },
            }
        }
    )
    seen: list[tuple[str, ExperimentResult]] = []
    user = UserContext({"id": "u1"}, on_exposure=lambda exp, res: seen.append((exp["key"], res)))
    assert payload.evaluate("child", user).value == "on"
    assert [key for key, _ in seen] == ["p-exp"]
    assert seen[0][1].in_experiment


def test_cyclic_prerequisites_are_detected() -> None:
    rule = {"parentConditions": [{"id": "b", "condition": {"value": True}}], "force": 1}
    payload = CompiledPayload.from_dict(
        {
            "features": {
                "a": {"defaultValue": 0, "rules": [rule]},
                "b": {"defaultValue": 0, "rules": [{**rule, "parentConditions": [{"id": "a"}]}]},
            }
        }
    )
    result = payload.evaluate("a", UserContext())
    assert result.source == "cyclicPrerequisite"
    assert result.value is None


def test_sticky_bucket_keeps_a_user_through_a_weight_change() -> None:
    service = InMemoryStickyBucketService()

    def payload(weights: list[float]) -> CompiledPayload:
        rule = {
            "key": "exp",
            "variations": ["a", "b"],
            "weights": weights,
            "meta": [{"key": "a"}, {"key": "b"}],
        }
        return CompiledPayload.from_dict({"features": {"f": {"rules": [rule]}}})

    before = payload([0.0, 1.0])
    user = UserContext(
        {"id": "u7"},
        sticky_docs=load_docs(service, {"id": "u7"}),
        on_sticky_change=service.save_assignments,
    )
    assert before.evaluate("f", user).value == "b"
    after = payload([1.0, 0.0])  # everyone new goes to "a"
    fresh = UserContext({"id": "u7"}, sticky_docs=load_docs(service, {"id": "u7"}))
    result = after.evaluate("f", fresh)
    assert result.value == "b"
    assert result.experiment_result is not None and result.experiment_result.sticky_bucket_used
    assert after.evaluate("f", UserContext({"id": "u7"})).value == "a"  # without the service


def test_redirect_experiment_for_a_request() -> None:
    payload = CompiledPayload.from_dict(
        {
            "experiments": [
                {
                    "key": "new-home",
                    "urlPatterns": [{"type": "simple", "include": True, "pattern": "/home"}],
                    "variations": [{}, {"urlRedirect": "https://example.com/home2"}],
                    "weights": [0, 1],
                    "persistQueryString": True,
                }
            ]
        }
    )
    redirect = payload.redirect(UserContext({"id": "1"}, url="https://example.com/home?utm=x"))
    assert redirect is not None
    assert redirect.url_with_params == "https://example.com/home2?utm=x"
    assert payload.redirect(UserContext({"id": "1"}, url="https://example.com/other")) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1"), (1.0, "1"), (-0.0, "0"), (1.5, "1.5"), (1e21, "1e+21"), (1e-7, "1e-7"),
     (123456789012.0, "123456789012"), (0.000001, "0.000001")],
)  # fmt: skip
def test_numbers_print_like_javascript(value: float, text: str) -> None:
    assert number_to_string(value) == text


def test_javascript_coercions() -> None:
    assert to_number(" 12 ") == 12
    assert to_number("") == 0
    assert to_number(None) == 0
    assert to_number("0x1f") == 31
    assert to_number("abc") != to_number("abc")  # NaN
    assert compare("8", 5) == 1
    assert compare("abc", 5) is None
    assert compare([10], "9") == -1  # both become strings: "10" < "9"


def test_evaluation_never_raises_on_odd_attribute_types() -> None:
    payload = CompiledPayload.from_dict(make_payload())
    rng = random.Random(3)
    odd: list[Any] = [None, True, 0, -1.5, float("nan"), "", "x", [], [1, "a"], {"k": 1}, "é€😀"]
    for _ in range(200):
        attrs = {k: rng.choice(odd) for k in ("id", "country", "plan", "age", "appVersion")}
        for key in payload.features:
            result = payload.evaluate(key, UserContext(attrs))
            assert result.source in ("defaultValue", "force", "experiment")
