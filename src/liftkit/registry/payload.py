"""Compiling the registry into GrowthBook-format SDK payloads, one per SDK connection.

The payload is what every GrowthBook SDK (and liftkit's) evaluates locally. Compiling is pure:
a ``Snapshot`` of the live objects in, a payload dict out, plus the next moment a rule's schedule
changes it (the server recompiles then). Notes on the mapping:

- A feature that is off in an environment is left out (SDKs then return null, like GrowthBook).
- Saved groups: condition groups are inlined; ID lists become ``$inGroup`` references to the
  payload's ``savedGroups`` section.
- Experiments: one namespace becomes the rule's ``namespace``; several (and holdouts) become
  ``filters``, which every SDK ANDs together. A stopped experiment with a released variation
  serves that variation to its audience (a temporary rollout until the code is cleaned up).
- Attributes of type ``secureString`` have their condition values published as
  ``sha256(salt + value)``; applications hash the attribute the same way before evaluation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from liftkit.registry._base import Condition, Prerequisite, SavedGroupTarget, Schedule
from liftkit.registry.experiments import Experiment
from liftkit.registry.features import (
    ExperimentRule,
    Feature,
    ForceRule,
    RolloutRule,
)
from liftkit.registry.targeting import Attribute, Holdout, SavedGroup


@dataclass(frozen=True)
class Snapshot:
    """The live objects a payload is compiled from, read once and shared by all connections."""

    features: list[Feature]
    experiments: dict[str, Experiment] = field(default_factory=dict)
    saved_groups: dict[str, SavedGroup] = field(default_factory=dict)
    attributes: dict[str, Attribute] = field(default_factory=dict)
    holdouts: list[Holdout] = field(default_factory=list)
    date_updated: datetime | None = None


@dataclass
class Compiled:
    payload: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    #: The next schedule boundary after ``now``: the payload must be compiled again then.
    next_change_at: datetime | None = None


def compile_payload(
    snapshot: Snapshot,
    *,
    environment: str,
    now: datetime,
    project: str | None = None,
    salt: str = "",
    include_names: bool = True,
) -> Compiled:
    """The payload an SDK connection for ``environment`` (and ``project``, None = all) serves."""
    compiler = _Compiler(snapshot, environment, now, salt, include_names)
    features: dict[str, Any] = {}
    for feature in snapshot.features:
        if feature.archived or (project is not None and feature.project != project):
            continue
        setting = feature.environments.get(environment)
        if setting is None or not setting.enabled:
            continue
        rules = [r for r in (compiler.rule(feature, rule) for rule in setting.rules) if r]
        definition: dict[str, Any] = {"defaultValue": feature.default_value}
        if rules:
            definition["rules"] = rules
        features[feature.key] = definition
    payload: dict[str, Any] = {"status": 200, "features": features}
    if compiler.used_groups:
        payload["savedGroups"] = {
            key: compiler.group_values(snapshot.saved_groups[key])
            for key in sorted(compiler.used_groups)
        }
    if snapshot.date_updated is not None:
        payload["dateUpdated"] = snapshot.date_updated.isoformat().replace("+00:00", "Z")
    return Compiled(payload, compiler.warnings, compiler.next_change_at)


def encrypt_payload(payload: dict[str, Any], key: str) -> dict[str, Any]:
    """Encrypt ``features`` and ``savedGroups`` as GrowthBook does (AES-128-CBC, base64)."""
    out = {k: v for k, v in payload.items() if k not in ("features", "savedGroups")}
    out["features"] = {}
    out["encryptedFeatures"] = encrypt(to_json(payload["features"]), key)
    if "savedGroups" in payload:
        out["encryptedSavedGroups"] = encrypt(to_json(payload["savedGroups"]), key)
    return out


def encrypt(plaintext: str, key: str) -> str:
    """``base64(iv).base64(ciphertext)``.

    The IV is derived from the key and the plaintext (an HMAC), not drawn at random, so every
    server process compiles identical bytes, and so the same ETag, for the same payload. It
    reveals only whether two payloads are equal, which the ETag reveals anyway.
    """
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    raw_key = base64.b64decode(key)
    data = plaintext.encode()
    iv = hmac.new(raw_key, data, hashlib.sha256).digest()[:16]
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(raw_key), modes.CBC(iv)).encryptor()
    cipher = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(iv).decode() + "." + base64.b64encode(cipher).decode()


def to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def secure_hash(value: str, salt: str) -> str:
    """How secureString values are published (and how applications must hash attributes)."""
    return hashlib.sha256((salt + value).encode()).hexdigest()


class _Compiler:
    def __init__(
        self, snapshot: Snapshot, environment: str, now: datetime, salt: str, include_names: bool
    ) -> None:
        self.snapshot = snapshot
        self.environment = environment
        self.now = now
        self.salt = salt
        self.include_names = include_names
        self.warnings: list[str] = []
        self.used_groups: set[str] = set()
        self.next_change_at: datetime | None = None
        self.secure = {
            a.key
            for a in snapshot.attributes.values()
            if a.datatype in ("secureString", "secureString[]")
        }

    def rule(self, feature: Feature, rule: ForceRule | RolloutRule | ExperimentRule) -> Any:
        if not rule.enabled or not self._live(rule.schedule):
            return None
        out: dict[str, Any] = {"id": rule.id}
        condition = self.condition(rule.condition, rule.saved_groups, feature.key)
        parents = self.parents(rule.prerequisites)
        if isinstance(rule, ForceRule):
            out["force"] = rule.value
        elif isinstance(rule, RolloutRule):
            out.update(force=rule.value, coverage=rule.coverage, hashVersion=rule.hash_version)
            out.update(hashAttribute=rule.hash_attribute, seed=rule.seed or feature.key)
        else:
            experiment_rule = self.experiment(feature, rule)
            if experiment_rule is None:
                return None
            experiment, extra = experiment_rule
            condition = _and(
                condition,
                self.condition(experiment.condition, experiment.saved_groups, feature.key),
            )
            parents += self.parents(experiment.prerequisites)
            out.update(extra)
        if condition:
            out["condition"] = condition
        if parents:
            out["parentConditions"] = parents
        return out

    def experiment(
        self, feature: Feature, rule: ExperimentRule
    ) -> tuple[Experiment, dict[str, Any]] | None:
        experiment = self.snapshot.experiments.get(rule.experiment)
        where = f"feature {feature.key!r} rule {rule.id!r}"
        if experiment is None:
            self.warnings.append(f"{where}: experiment {rule.experiment!r} does not exist")
            return None
        values = (
            rule.values if rule.values is not None else [v.payload for v in experiment.variations]
        )
        if len(values) != len(experiment.variations):
            self.warnings.append(
                f"{where}: {len(values)} values for {len(experiment.variations)} variations"
            )
            return None
        if experiment.archived or experiment.status == "draft":
            return None
        if experiment.status == "stopped":
            if experiment.released_variation is None:
                return None
            return experiment, {
                "force": values[experiment.variation_index(experiment.released_variation)]
            }
        out: dict[str, Any] = {
            "key": experiment.key,
            "variations": values,
            "weights": experiment.weights(),
            "coverage": experiment.current_coverage(),
            "hashAttribute": experiment.hash_attribute,
            "hashVersion": experiment.hash_version,
            "seed": experiment.seed or experiment.key,
            "meta": [{"key": v.key, "name": v.name or v.key} for v in experiment.variations],
            "phase": str(max(0, len(experiment.phases) - 1)),
        }
        if experiment.fallback_attribute:
            out["fallbackAttribute"] = experiment.fallback_attribute
        if self.include_names and experiment.name:
            out["name"] = experiment.name
        if experiment.bucket_version:
            out["bucketVersion"] = experiment.bucket_version
        filters = [
            {"seed": f"holdout:{h.key}", "attribute": h.hash_attribute, "hashVersion": 2,
             "ranges": [[h.share, 1.0]]}
            for h in self.snapshot.holdouts
            if h.status == "running" and h.project == experiment.project
            and (not h.experiments or experiment.key in h.experiments)
        ]  # fmt: skip
        if len(experiment.namespaces) == 1 and not filters:
            ns = experiment.namespaces[0]
            out["namespace"] = [ns.namespace, ns.start, ns.end]
        else:
            filters += [
                {"seed": f"__{ns.namespace}", "attribute": experiment.hash_attribute,
                 "hashVersion": 1, "ranges": [[ns.start, ns.end]]}
                for ns in experiment.namespaces
            ]  # fmt: skip
        if filters:
            out["filters"] = filters
        return experiment, out

    def condition(
        self, condition: Condition, groups: list[SavedGroupTarget], where: str
    ) -> Condition:
        parts = [self._secure(condition)] if condition else []
        for target in groups:
            members: list[Condition] = []
            for key in target.ids:
                group = self.snapshot.saved_groups.get(key)
                if group is None:
                    self.warnings.append(f"feature {where!r}: saved group {key!r} does not exist")
                    return {"__liftkit_missing_group__": {"$exists": True}}  # fail closed
                if group.type == "condition":
                    members.append(self._secure(group.condition))
                else:
                    self.used_groups.add(key)
                    members.append({str(group.attribute): {"$inGroup": key}})
            operator = {"all": "$and", "any": "$or", "none": "$nor"}[target.match]
            parts.append({operator: members})
        result: Condition = {}
        for part in parts:
            result = _and(result, part)
        return result

    def parents(self, prerequisites: list[Prerequisite]) -> list[dict[str, Any]]:
        return [
            {"id": p.feature, "condition": p.condition, **({"gate": True} if p.gate else {})}
            for p in prerequisites
        ]

    def group_values(self, group: SavedGroup) -> list[Any]:
        if group.attribute in self.secure:
            return [secure_hash(str(v), self.salt) for v in group.values]
        return list(group.values)

    def _live(self, schedule: Schedule | None) -> bool:
        if schedule is None:
            return True
        for moment in (schedule.start_at, schedule.end_at):
            if moment is not None and moment > self.now:
                self.next_change_at = min(moment, self.next_change_at or moment)
        return schedule.is_live(self.now)

    def _secure(self, condition: Condition) -> Condition:
        if not self.secure:
            return condition
        return {k: self._secure_value(k, v) for k, v in condition.items()}

    def _secure_value(self, key: str, value: Any) -> Any:
        if key in ("$and", "$or", "$nor"):
            return [self._secure(c) for c in value] if isinstance(value, list) else value
        if key == "$not":
            return self._secure(value) if isinstance(value, dict) else value
        if key not in self.secure:
            return value
        return _hash_strings(value, self.salt)


def _hash_strings(value: Any, salt: str) -> Any:
    if isinstance(value, str):
        return secure_hash(value, salt)
    if isinstance(value, list):
        return [_hash_strings(v, salt) for v in value]
    if isinstance(value, dict):
        return {
            op: _hash_strings(v, salt) if op in ("$eq", "$ne", "$in", "$nin", "$all") else v
            for op, v in value.items()
        }
    return value


def _and(a: Condition, b: Condition) -> Condition:
    if not a:
        return b
    if not b:
        return a
    return {"$and": [a, b]}
