"""The evaluation engine: a GrowthBook-format payload compiled once, evaluated per user.

Compilation (``CompiledPayload.from_dict``) parses every condition, precomputes bucket ranges and
the experiment descriptions results carry, and resolves saved groups and contextual bandits.
Evaluation then walks each feature's rules in order: prerequisites, filters, then a forced value
(with optional condition and percentage rollout) or an experiment; the first rule that applies
decides the value, otherwise the feature's default does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from liftkit.sdk._conditions import Condition, compile_condition
from liftkit.sdk._crypto import decrypt
from liftkit.sdk._experiments import Experiment, assign_plain, run
from liftkit.sdk._hashing import BucketRange, Hasher, equal_weights
from liftkit.sdk._jsvalues import to_string, truthy
from liftkit.sdk._targeting import (
    EvaluateParent,
    Filter,
    ParentCheck,
    compile_filters,
    compile_parents,
    filtered_out,
    hash_attribute,
)
from liftkit.sdk._types import EvalResult, ExperimentResult, UserContext
from liftkit.sdk._urls import merge_query_strings
from liftkit.sdk.errors import PayloadError

logger = logging.getLogger("liftkit.sdk")

FALLBACK_LEAF = -1
"""The leaf id reported when no contextual-bandit leaf matched (marginal weights are used)."""


@dataclass(frozen=True, slots=True)
class Redirect:
    """A URL-redirect experiment's decision for one request."""

    url: str
    """Where the variation sends the user."""
    url_with_params: str
    """``url`` with the current request's query parameters kept, when the test asks for it."""
    experiment: Mapping[str, Any]
    result: ExperimentResult


class _Bandit:
    """A contextual bandit rule: the first matching leaf picks the variation weights."""

    __slots__ = ("fallback", "leaves")

    def __init__(self, leaves: list[tuple[Condition, Experiment]], fallback: Experiment) -> None:
        self.leaves = leaves
        self.fallback = fallback

    def select(self, attributes: Mapping[str, Any]) -> Experiment:
        for condition, experiment in self.leaves:
            if condition(attributes):
                return experiment
        return self.fallback


class _Rule:
    __slots__ = (
        "condition", "coverage", "disable_sticky", "experiment", "fallback_attribute",
        "filters", "force", "forced_result", "hash_attribute", "hasher", "id", "is_force",
        "parents", "range", "tracks",
    )  # fmt: skip

    def __init__(self, raw: Mapping[str, Any], feature_key: str, payload: CompiledPayload) -> None:
        groups = payload.saved_groups
        self.id = str(raw.get("id") or "")
        self.parents: tuple[ParentCheck, ...] = compile_parents(raw.get("parentConditions"), groups)
        self.filters: tuple[Filter, ...] | None = compile_filters(raw.get("filters"))
        self.is_force = "force" in raw
        self.force = raw.get("force")
        self.condition = (
            compile_condition(raw["condition"], groups) if raw.get("condition") else None
        )
        rng = raw.get("range")
        self.range: BucketRange | None = (float(rng[0]), float(rng[1])) if rng else None
        self.coverage = raw.get("coverage")
        self.hasher = Hasher(str(raw.get("seed") or feature_key), int(raw.get("hashVersion") or 1))
        self.hash_attribute = str(raw.get("hashAttribute") or "id")
        self.fallback_attribute = raw.get("fallbackAttribute") or None
        # Results are immutable, so a forced value's result is built once and shared.
        self.forced_result = EvalResult(feature_key, self.force, "force", self.id)
        self.disable_sticky = bool(raw.get("disableStickyBucketing"))
        self.tracks = raw.get("tracks") if isinstance(raw.get("tracks"), list) else None
        self.experiment: Experiment | _Bandit | None = None
        if not self.is_force:
            self.experiment = _compile_experiment_rule(raw, feature_key, payload)

    def in_rollout(self, user: UserContext) -> bool:
        """Whether the user falls inside the rule's range or coverage (a percentage rollout)."""
        if self.range is None and self.coverage == 0:
            return False
        value = user.attributes.get(self.hash_attribute)
        if value.__class__ is not str or not value:
            sticky = user.sticky_docs is not None and not self.disable_sticky
            fallback = self.fallback_attribute if sticky else None
            _, value = hash_attribute(user.attributes, self.hash_attribute, fallback)
            if not truthy(value):
                return False
            value = to_string(value)
        n = self.hasher(value)
        if n is None:
            return False
        if self.range is not None:
            return self.range[0] <= n < self.range[1]
        return bool(n <= float(self.coverage or 0))


def _compile_experiment_rule(
    raw: Mapping[str, Any], feature_key: str, payload: CompiledPayload
) -> Experiment | _Bandit | None:
    key = str(raw.get("key") or feature_key)
    groups = payload.saved_groups
    ref = raw.get("contextualBanditRef")
    if not ref or "contextualVariations" not in raw:
        return Experiment(raw, groups, key=key) if raw.get("variations") else None
    spec = {**raw, "variations": raw.get("contextualVariations") or []}
    definition = payload.contextual_bandits.get(str(ref))
    if not isinstance(definition, dict):
        return Experiment(spec, groups, key=key)  # a dangling reference: marginal weights only
    marginal = list(raw.get("weights") or equal_weights(len(spec["variations"])))
    version = (
        {"banditVersion": definition["banditVersion"]} if "banditVersion" in definition else {}
    )

    def variant(leaf_id: Any, weights: list[float]) -> Experiment:
        bandit = {"leafId": leaf_id, "variationWeights": weights, **version}
        return Experiment(spec, groups, key=key, weights=weights, bandit=bandit)

    leaves = [
        (
            compile_condition(ctx.get("condition") or {}, groups),
            variant(ctx.get("leafId"), list(ctx.get("weights") or marginal)),
        )
        for ctx in definition.get("contexts") or ()
        if isinstance(ctx, dict)
    ]
    return _Bandit(leaves, variant(FALLBACK_LEAF, marginal))


class _Feature:
    __slots__ = ("default_result", "rules")

    def __init__(self, key: str, default: Any, rules: tuple[_Rule, ...]) -> None:
        self.default_result = EvalResult(key, default, "defaultValue")
        self.rules = rules


class CompiledPayload:
    """An SDK payload with every condition compiled once; immutable and thread-safe."""

    def __init__(self, data: Mapping[str, Any], *, decryption_key: str | None = None) -> None:
        if not isinstance(data, Mapping):
            raise PayloadError(f"an SDK payload is a JSON object, not {type(data).__name__}")
        features = _section(data, "features", dict, decryption_key)
        self.saved_groups: Mapping[str, Any] = _section(data, "savedGroups", dict, decryption_key)
        self.contextual_bandits: Mapping[str, Any] = _section(
            data, "contextualBandits", dict, decryption_key
        )
        self.date_updated: str | None = data.get("dateUpdated")
        self.warnings: list[str] = []
        """Parts of the payload that could not be compiled and are ignored."""
        self.features: dict[str, _Feature] = {}
        for key, raw in features.items():
            self.features[str(key)] = self._compile_feature(str(key), raw)
        self.auto_experiments: list[tuple[Experiment, bool]] = []
        for raw in _section(data, "experiments", list, decryption_key):
            try:
                self.auto_experiments.append(
                    (Experiment(raw, self.saved_groups), bool(raw.get("persistQueryString")))
                )
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
                self.warnings.append(f"experiment {raw!r:.60}: {exc}")
        self.sticky_attributes = frozenset(self._sticky_attribute_names())

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, decryption_key: str | None = None
    ) -> CompiledPayload:
        return cls(data, decryption_key=decryption_key)

    @classmethod
    def from_json(cls, text: str | bytes, *, decryption_key: str | None = None) -> CompiledPayload:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"the payload is not valid JSON: {exc}") from None
        return cls(data, decryption_key=decryption_key)

    def _compile_feature(self, key: str, raw: Any) -> _Feature:
        if not isinstance(raw, dict):
            self.warnings.append(f"feature {key!r}: a definition is an object; ignored")
            return _Feature(key, None, ())
        rules: list[_Rule] = []
        for i, rule in enumerate(raw.get("rules") or ()):
            try:
                rules.append(_Rule(rule, key, self))
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
                self.warnings.append(f"feature {key!r} rule {i}: {exc}; rule ignored")
        return _Feature(key, raw.get("defaultValue"), tuple(rules))

    def _sticky_attribute_names(self) -> set[str]:
        names: set[str] = set()
        experiments = [exp for exp, _ in self.auto_experiments]
        for feature in self.features.values():
            for rule in feature.rules:
                if isinstance(rule.experiment, Experiment):
                    experiments.append(rule.experiment)
                elif isinstance(rule.experiment, _Bandit):
                    experiments.append(rule.experiment.fallback)
                if rule.is_force and rule.fallback_attribute and not rule.disable_sticky:
                    names.update((rule.hash_attribute, rule.fallback_attribute))
        for exp in experiments:
            if not exp.disable_sticky:
                names.add(exp.hash_attribute)
                if exp.fallback_attribute:
                    names.add(exp.fallback_attribute)
        return names

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, key: str, user: UserContext) -> EvalResult:
        """Evaluate one feature for one user. Never raises."""
        return self._evaluate(key, user, ())

    def evaluate_all(self, user: UserContext) -> dict[str, EvalResult]:
        return {key: self._evaluate(key, user, ()) for key in self.features}

    def _evaluate(self, key: str, user: UserContext, stack: tuple[str, ...]) -> EvalResult:
        if stack and key in stack:
            return EvalResult(key, None, "cyclicPrerequisite")
        forced = user.forced_features
        if forced and key in forced:
            return EvalResult(key, forced[key], "override")
        feature = self.features.get(key)
        if feature is None:
            return EvalResult(key, None, "unknownFeature")
        attributes = user.attributes
        for rule in feature.rules:
            if rule.parents:
                verdict = self._prerequisites(key, rule.parents, user, (*stack, key))
                if verdict is not None:
                    if isinstance(verdict, EvalResult):
                        return verdict
                    continue
            if rule.filters is not None and filtered_out(rule.filters, attributes):
                continue
            if rule.is_force:
                if rule.condition is not None and not rule.condition(attributes):
                    continue
                if (rule.range is not None or rule.coverage is not None) and not rule.in_rollout(
                    user
                ):
                    continue
                if rule.tracks and user.on_exposure is not None:
                    _replay_tracks(rule.tracks, user)
                return rule.forced_result
            target = rule.experiment
            if target is None:
                continue
            exp = target.select(attributes) if target.__class__ is _Bandit else target
            assert isinstance(exp, Experiment)
            if exp.plain and user.plain:
                result = assign_plain(exp, user, key)
                if result is None:
                    continue
            else:
                parents = self._parent_evaluator(user, (*stack, key)) if exp.parents else None
                result = run(exp, user, key, parents)
            if result.in_experiment and not result.passthrough:
                return EvalResult(
                    key, result.value, "experiment", rule.id, exp.dict_for(result), result
                )
        return feature.default_result

    def _prerequisites(
        self, key: str, parents: tuple[ParentCheck, ...], user: UserContext, stack: tuple[str, ...]
    ) -> EvalResult | bool | None:
        """None when every prerequisite passes; a result to return; or True to skip the rule."""
        for parent_id, check, gate in parents:
            parent = self._evaluate(parent_id, user, stack)
            if parent.source == "cyclicPrerequisite":
                return EvalResult(key, None, "cyclicPrerequisite")
            if not check({"value": parent.value}):
                return EvalResult(key, None, "prerequisite") if gate else True
        return None

    def _parent_evaluator(self, user: UserContext, stack: tuple[str, ...]) -> EvaluateParent:
        def evaluate_parent(parent_id: str) -> tuple[Any, bool]:
            parent = self._evaluate(parent_id, user, stack)
            return parent.value, parent.source == "cyclicPrerequisite"

        return evaluate_parent

    def run_auto_experiments(
        self, user: UserContext
    ) -> list[tuple[Mapping[str, Any], ExperimentResult]]:
        """Run the payload's URL-targeted experiments for a request."""
        out = []
        for exp, _ in self.auto_experiments:
            result = run(exp, user, None, self._parent_evaluator(user, ()))
            out.append((exp.dict_for(result), result))
        return out

    def redirect(self, user: UserContext) -> Redirect | None:
        """The first URL-redirect experiment that sends this request elsewhere, if any."""
        for exp, persist_query in self.auto_experiments:
            result = run(exp, user, None, self._parent_evaluator(user, ()))
            value = result.value
            if result.in_experiment and isinstance(value, dict) and value.get("urlRedirect"):
                url = str(value["urlRedirect"])
                with_params = merge_query_strings(user.url, url) if persist_query else url
                return Redirect(url, with_params, exp.dict_for(result), result)
        return None


def _section(data: Mapping[str, Any], name: str, kind: type, key: str | None) -> Any:
    """A top-level section, decrypting ``encrypted<Name>`` when the payload is encrypted."""
    encrypted = data.get("encrypted" + name[0].upper() + name[1:])
    value: Any = data.get(name)
    if encrypted:
        if not key:
            raise PayloadError(f"the payload's {name} are encrypted; pass decryption_key")
        try:
            value = json.loads(decrypt(str(encrypted), key))
        except ValueError as exc:
            raise PayloadError(f"the decrypted {name} are not valid JSON: {exc}") from None
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise PayloadError(f"the payload's {name!r} must be a JSON {kind.__name__}")
    return value


def _replay_tracks(tracks: list[Any], user: UserContext) -> None:
    """Report exposures a remote evaluation decided (rules carrying ``tracks``)."""
    assert user.on_exposure is not None
    for track in tracks:
        exp, res = (
            (track.get("experiment"), track.get("result"))
            if isinstance(track, dict)
            else (None, None)
        )
        if not isinstance(exp, dict) or not isinstance(res, dict):
            continue
        user.on_exposure(exp, experiment_result_from_dict(res))


def experiment_result_from_dict(raw: Mapping[str, Any]) -> ExperimentResult:
    weights = raw.get("variationWeights")
    return ExperimentResult(
        key=str(raw.get("key", "")),
        variation_id=int(raw.get("variationId", 0)),
        value=raw.get("value"),
        in_experiment=bool(raw.get("inExperiment")),
        hash_used=bool(raw.get("hashUsed")),
        hash_attribute=str(raw.get("hashAttribute", "id")),
        hash_value=raw.get("hashValue", ""),
        feature_id=raw.get("featureId"),
        bucket=raw.get("bucket"),
        name=raw.get("name"),
        passthrough=raw.get("passthrough"),
        sticky_bucket_used=bool(raw.get("stickyBucketUsed")),
        leaf_id=raw.get("leafId"),
        variation_weights=tuple(weights) if isinstance(weights, list) else None,
        bandit_version=raw.get("banditVersion"),
    )
