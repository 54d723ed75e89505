"""Importing a GrowthBook SDK payload: features (and their experiments) for one environment.

A team moving from GrowthBook has what its SDKs read, the payload, even when it has nothing else.
Converting it back into registry objects is the reverse of ``payload.compile_payload``, and the
bar is that nobody's value moves: liftkit's compiled payload must evaluate exactly like the
original for every user. So the GrowthBook defaults that decide bucketing are written out
explicitly (rollouts hash with version 1 and seed by feature key, inline experiments with
version 1 and seed by their key), rule-level prerequisites don't gate, and whatever cannot be
carried over faithfully is left out with a warning rather than imported with different meaning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from liftkit.registry._base import Condition, Prerequisite, SavedGroupTarget
from liftkit.registry.config_as_code import Desired
from liftkit.registry.experiments import Experiment, NamespaceRange, Phase, Variation
from liftkit.registry.features import (
    ExperimentRule,
    Feature,
    FeatureEnvironment,
    ForceRule,
    RolloutRule,
    ValueType,
    value_matches,
)
from liftkit.registry.store import Registry
from liftkit.registry.targeting import Namespace, SavedGroup
from liftkit.sdk._crypto import decrypt
from liftkit.sdk._hashing import bucket_ranges
from liftkit.sdk.errors import PayloadError

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
_COMMON = {"id", "condition", "parentConditions"}
_FORCE_KEYS = _COMMON | {"force", "coverage", "hashAttribute", "seed", "hashVersion"}
_EXPERIMENT_KEYS = _COMMON | {
    "variations", "key", "weights", "coverage", "hashAttribute", "fallbackAttribute", "seed",
    "hashVersion", "namespace", "meta", "name", "phase", "bucketVersion", "ranges",
}  # fmt: skip
#: Only read by tools and analytics, never by evaluation: left out without a warning.
_INFORMATIONAL = {"metadata", "description", "tracks"}
_STICKY_ONLY = {"disableStickyBucketing", "minBucketVersion"}

Rule = ForceRule | RolloutRule | ExperimentRule


class ImportProblem(Exception):
    """The payload cannot be imported at all (bad JSON, encrypted without a key, ...)."""


@dataclass
class Imported:
    """What a payload became. ``warnings`` lists everything not carried over exactly."""

    features: list[Feature] = field(default_factory=list)
    experiments: list[Experiment] = field(default_factory=list)
    saved_groups: list[SavedGroup] = field(default_factory=list)
    namespaces: list[Namespace] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_payload(text: str | bytes, decryption_key: str | None = None) -> dict[str, Any]:
    """The payload as a dict, decrypted when GrowthBook encrypted it."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImportProblem(f"the payload is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ImportProblem("a GrowthBook payload is a JSON object with 'features'")
    for name in ("features", "savedGroups", "experiments"):
        encrypted = data.get("encrypted" + name[0].upper() + name[1:])
        if not encrypted:
            continue
        if not decryption_key:
            raise ImportProblem(
                "the payload is encrypted; pass its decryption key (--decryption-key, from the "
                "SDK connection's settings in GrowthBook)"
            )
        try:
            data[name] = json.loads(decrypt(str(encrypted), decryption_key))
        except (PayloadError, ValueError) as exc:
            raise ImportProblem(f"cannot decrypt the payload's {name}: {exc}") from None
    if not isinstance(data.get("features"), dict):
        raise ImportProblem("the payload has no 'features' object")
    return data


def convert(
    payload: Mapping[str, Any], *, environment: str, now: datetime, project: str = "default"
) -> Imported:
    """Registry objects serving, in ``environment``, what ``payload`` serves."""
    converter = _Converter(payload, environment, project, now)
    out = converter.imported
    for key, raw in payload.get("features", {}).items():
        feature = converter.feature(str(key), raw)
        if feature is not None:
            out.features.append(feature)
    out.experiments = list(converter.experiments.values())
    out.saved_groups = list(converter.groups.values())
    out.namespaces = [Namespace(key=n) for n in sorted(converter.namespaces)]
    if payload.get("experiments"):
        out.warnings.append(
            f"{len(payload['experiments'])} auto (visual editor / URL redirect) experiments "
            "are not imported: liftkit has no visual experiments"
        )
    return out


def desired_objects(registry: Registry, imported: Imported, environment: str) -> list[Desired]:
    """The objects to apply, merged with live ones so other environments and notes survive.

    A feature keeps its other environments, name, owner and tags; an experiment keeps its
    hypothesis, metrics and phases (a new phase starts only when its traffic changed), so
    importing the same payload again plans nothing.
    """

    def feature(live: Feature, new: Feature) -> Feature:
        envs = {**live.environments, environment: new.environments[environment]}
        merged: Feature = _merged(live, new, {"value_type", "default_value"}, environments=envs)
        return merged

    group_fields = {"type", "condition", "attribute", "values"}
    steps: list[tuple[str, list[Any], Any]] = [
        ("namespaces", imported.namespaces, lambda live, new: live),
        ("saved-groups", imported.saved_groups, lambda old, new: _merged(old, new, group_fields)),
        ("experiments", imported.experiments, _merged_experiment),
        ("features", imported.features, feature),
    ]
    out = []
    for name, objects, merge in steps:
        for obj in objects:
            live = registry.find(name, obj.key)
            out.append(
                Desired(name, obj if live is None else merge(live, obj), "GrowthBook payload")
            )
    return out


def _merged(live: Any, new: Any, fields: set[str], **extra: Any) -> Any:
    body = {**live.model_dump(), **{f: getattr(new, f) for f in fields}, **extra}
    try:
        return type(live).model_validate(body)
    except ValidationError as exc:
        raise ImportProblem(
            f"{type(live).__name__} {live.key!r} exists and cannot take the imported settings "
            f"({_first_error(exc)}); import into a registry without it, or fix it first"
        ) from None


def _merged_experiment(live: Experiment, new: Experiment) -> Experiment:
    serving = {"variations", "hash_attribute", "fallback_attribute", "hash_version", "seed",
               "namespaces", "status", "bucket_version", "coverage"}  # fmt: skip
    phases = list(live.phases)
    current, wanted = live.current_phase(), new.phases[-1]
    same = current is not None and (current.coverage, current.weights) == (
        wanted.coverage, wanted.weights,
    )  # fmt: skip
    if not same:
        if current is not None and current.ended_at is None:
            phases[-1] = current.model_copy(update={"ended_at": wanted.started_at})
        phases.append(wanted)
    merged: Experiment = _merged(
        live, new, serving, phases=phases, result=None, released_variation=None
    )
    return merged


class _Converter:
    def __init__(
        self, payload: Mapping[str, Any], environment: str, project: str, now: datetime
    ) -> None:
        self.payload_groups: Mapping[str, Any] = payload.get("savedGroups") or {}
        self.environment = environment
        self.project = project
        self.now = now
        self.imported = Imported()
        self.experiments: dict[str, Experiment] = {}
        self.groups: dict[str, SavedGroup] = {}
        self.namespaces: set[str] = set()

    def warn(self, message: str) -> None:
        self.imported.warnings.append(message)

    def feature(self, key: str, raw: Any) -> Feature | None:
        if not _KEY.match(key) or not isinstance(raw, dict):
            self.warn(f"feature {key!r}: skipped (not a valid liftkit key or not an object)")
            return None
        extra = set(raw) - {"defaultValue", "rules"} - _INFORMATIONAL
        if extra:
            self.warn(f"feature {key!r}: ignored {', '.join(sorted(extra))}")
        default = raw.get("defaultValue")
        rules: list[Rule] = []
        gates: list[Prerequisite] = []
        gate_last = False  # a gate after the last rule still turns the feature off
        for index, rule_raw in enumerate(raw.get("rules") or []):
            where = f"feature {key!r} rule {index + 1}"
            if isinstance(rule_raw, dict) and rule_raw.get("id"):
                where += f" ({rule_raw['id']})"
            if not isinstance(rule_raw, dict):
                self.warn(f"{where}: not an object; skipped")
                continue
            if "force" not in rule_raw and "variations" not in rule_raw:
                new_gates = self.gate(rule_raw, where)
                gates, gate_last = gates + new_gates, gate_last or bool(new_gates)
                continue
            rule = self.rule(key, rule_raw, where)
            if rule is not None:
                rule.prerequisites[:0] = gates  # GrowthBook checks gates before later rules
                rules.append(rule)
                gate_last = False
        if gate_last:
            rules.append(ForceRule(value=default, prerequisites=gates))
        _unique_ids(rules)
        value_type = _value_type(default, rules)
        experiments = any(isinstance(r, ExperimentRule) for r in rules)
        try:
            return Feature(
                key=key, project=self.project, value_type=value_type, default_value=default,
                kind="experiment" if experiments else "release",
                environments={self.environment: FeatureEnvironment(enabled=True, rules=rules)},
            )  # fmt: skip
        except ValidationError as exc:
            self.warn(f"feature {key!r}: skipped: {exc.errors()[0]['msg']}")
            return None

    def gate(self, raw: Mapping[str, Any], where: str) -> list[Prerequisite]:
        """A rule with only prerequisites: those that gate switch the whole feature off."""
        parents = self.prerequisites(raw, where)
        if parents is None:
            return []
        if set(raw) - _COMMON or raw.get("condition"):
            self.warn(f"{where}: a rule with neither force nor variations has no effect; skipped")
        return [p for p in parents if p.gate]

    def prerequisites(self, raw: Mapping[str, Any], where: str) -> list[Prerequisite] | None:
        out = []
        for parent in raw.get("parentConditions") or []:
            parent_id = str(parent.get("id", "")) if isinstance(parent, dict) else ""
            if not _KEY.match(parent_id):
                self.warn(f"{where}: depends on {parent_id!r} (not a liftkit key); skipped")
                return None
            condition = parent.get("condition") or {}
            out.append(
                Prerequisite(feature=parent_id, condition=condition, gate=bool(parent.get("gate")))
            )
        return out

    def rule(self, feature_key: str, raw: Mapping[str, Any], where: str) -> Rule | None:
        is_force = "force" in raw
        sticky_only = set(raw) & _STICKY_ONLY
        if sticky_only:
            self.warn(f"{where}: ignored {', '.join(sorted(sticky_only))} (only sticky "
                      "bucketing reads it; liftkit has no such setting)")  # fmt: skip
        known = _FORCE_KEYS if is_force else _EXPERIMENT_KEYS
        unknown = set(raw) - known - _INFORMATIONAL - _STICKY_ONLY
        if unknown:
            self.warn(f"{where}: uses {', '.join(sorted(unknown))}, which liftkit cannot "
                      "express; rule skipped")  # fmt: skip
            return None
        prerequisites = self.prerequisites(raw, where)
        if prerequisites is None:
            return None
        try:
            condition, groups = self.condition(raw.get("condition") or {}, where)
            common: dict[str, Any] = {
                "id": str(raw["id"])[:100] if raw.get("id") else None,
                "condition": condition, "saved_groups": groups, "prerequisites": prerequisites,
            }  # fmt: skip
            if is_force and "coverage" not in raw:
                return ForceRule(value=raw["force"], **common)
            if is_force:
                return RolloutRule(
                    value=raw["force"], coverage=_clamp(raw["coverage"]),
                    hash_attribute=str(raw.get("hashAttribute") or "id"),
                    seed=str(raw["seed"]) if raw.get("seed") else None,
                    hash_version=int(raw.get("hashVersion") or 1), **common,
                )  # fmt: skip
            experiment = self.experiment(feature_key, raw, where)
            if experiment is None:
                return None
            return ExperimentRule(experiment=experiment, values=list(raw["variations"]), **common)
        except (ValidationError, TypeError, ValueError) as exc:
            self.warn(f"{where}: cannot be imported ({_first_error(exc)}); skipped")
            return None

    def experiment(self, feature_key: str, raw: Mapping[str, Any], where: str) -> str | None:
        variations = raw["variations"]
        if not isinstance(variations, list) or len(variations) < 2:
            self.warn(f"{where}: an experiment needs two variations or more; skipped")
            return None
        key = str(raw.get("key") or feature_key)
        coverage = _clamp(1.0 if raw.get("coverage") is None else raw["coverage"])
        weights = raw.get("weights")
        if raw.get("ranges") and [list(r) for r in raw["ranges"]] != [
            list(r) for r in bucket_ranges(len(variations), coverage, weights)
        ]:
            self.warn(f"{where}: explicit bucket ranges liftkit cannot express; skipped")
            return None
        namespaces = []
        if raw.get("namespace"):
            name, start, end = raw["namespace"]
            namespaces.append(NamespaceRange(namespace=name, start=start, end=end))
        experiment = Experiment(
            key=key, name=str(raw.get("name") or ""), project=self.project,
            variations=self.variations(raw.get("meta") or [], len(variations), where),
            hash_attribute=str(raw.get("hashAttribute") or "id"),
            fallback_attribute=raw.get("fallbackAttribute") or None,
            hash_version=int(raw.get("hashVersion") or 1),
            seed=str(raw["seed"]) if raw.get("seed") else None, coverage=coverage,
            namespaces=namespaces, status="running",
            bucket_version=int(raw.get("bucketVersion") or 0),
            phases=[Phase(name="imported from GrowthBook", started_at=self.now,
                          coverage=coverage, weights=weights)],
        )  # fmt: skip
        self.namespaces.update(n.namespace for n in namespaces)
        known = self.experiments.get(experiment.key)
        if known is None or known == experiment:
            self.experiments[experiment.key] = experiment
            return experiment.key
        # The same tracking key with other settings: keep the bucketing (seed), rename the object.
        renamed = experiment.model_copy(
            update={"key": f"{key}--{feature_key}", "seed": experiment.seed or key}
        )
        self.warn(f"{where}: experiment {key!r} is also run elsewhere with other settings; "
                  f"imported as {renamed.key!r} (exposures will carry that key)")  # fmt: skip
        self.experiments[renamed.key] = renamed
        return renamed.key

    def variations(self, meta: list[Any], count: int, where: str) -> list[Variation]:
        out = []
        for index in range(count):
            info = meta[index] if index < len(meta) and isinstance(meta[index], dict) else {}
            if info.get("passthrough"):
                self.warn(f"{where}: variation {index} is a passthrough; imported as a normal "
                          "one, so its users get its value instead of falling through")  # fmt: skip
            out.append(
                Variation(key=str(info.get("key") or index), name=str(info.get("name") or ""))
            )
        if len({v.key for v in out}) != count or not all(_KEY.match(v.key) for v in out):
            self.warn(f"{where}: variation keys are not unique liftkit keys; numbered instead")
            out = [v.model_copy(update={"key": str(i)}) for i, v in enumerate(out)]
        return out

    def condition(self, condition: Any, where: str) -> tuple[Condition, list[SavedGroupTarget]]:
        """Top-level ``$inGroup``/``$notInGroup`` become saved-group targets; others inlined."""
        if not isinstance(condition, dict):
            raise ValueError("a condition is an object")
        rest: Condition = {}
        ids: dict[str, list[str]] = {"all": [], "none": []}
        for attribute, test in condition.items():
            op = next(iter(test), None) if isinstance(test, dict) and len(test) == 1 else None
            group_id = test.get(op) if op in ("$inGroup", "$notInGroup") else None
            if isinstance(group_id, str) and self.list_group(group_id, attribute):
                ids["all" if op == "$inGroup" else "none"].append(group_id)
            else:
                rest[attribute] = self.inline_groups(test, where)
        targets = [SavedGroupTarget(match=m, ids=found) for m, found in ids.items() if found]
        return rest, targets

    def list_group(self, group_id: str, attribute: str) -> bool:
        values = self.payload_groups.get(group_id)
        known = self.groups.get(group_id)
        usable = (
            _KEY.match(group_id) is not None
            and not attribute.startswith("$")
            and isinstance(values, list)
            and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values)
            and (known is None or known.attribute == attribute)
        )
        if usable and known is None:
            self.groups[group_id] = SavedGroup(
                key=group_id, project=self.project, type="list", attribute=attribute,
                values=list(values or []),
            )  # fmt: skip
        return usable

    def inline_groups(self, value: Any, where: str) -> Any:
        """Saved groups liftkit cannot reference here become their values (same meaning)."""
        if isinstance(value, list):
            return [self.inline_groups(v, where) for v in value]
        if not isinstance(value, dict):
            return value
        out = {}
        for op, arg in value.items():
            if op not in ("$inGroup", "$notInGroup"):
                out[op] = self.inline_groups(arg, where)
                continue
            self.warn(f"{where}: saved group {arg!r} inlined as its list of values")
            members = self.payload_groups.get(arg) if isinstance(arg, str) else None
            out["$in" if op == "$inGroup" else "$nin"] = list(members or [])
        return out


def _value_type(default: Any, rules: list[Rule]) -> ValueType:
    """The declared type every served value fits (JSON when they disagree)."""
    values = [default]
    for rule in rules:
        if isinstance(rule, ExperimentRule):
            values.extend(rule.values or [])
        else:
            values.append(rule.value)
    candidates: tuple[ValueType, ...] = ("boolean", "number", "string")
    for candidate in candidates:
        if all(value_matches(candidate, v) for v in values):
            return candidate
    return "json"


def _unique_ids(rules: list[Rule]) -> None:
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.id is not None and rule.id in seen:
            rule.id = f"{rule.id}-{index + 1}"
        if rule.id is not None:
            seen.add(rule.id)


def _clamp(value: Any) -> float:
    return min(max(float(value), 0.0), 1.0)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"])
        return f"{loc}: {error['msg']}" if loc else str(error["msg"])
    return str(exc)
