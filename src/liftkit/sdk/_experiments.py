"""Running one experiment for one user: the GrowthBook assignment algorithm, step by step.

An experiment (from a feature's experiment rule, or a URL-targeted auto experiment) is compiled
once into an :class:`Experiment`; :func:`run` then decides the user's variation. The numbered
steps follow the GrowthBook SDK specification, whose order matters (for example a query-string
override wins over an inactive experiment, and a sticky bucket skips targeting).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from liftkit.sdk._conditions import compile_condition
from liftkit.sdk._hashing import (
    BucketRange,
    Hasher,
    bucket_ranges,
    choose_variation,
    in_namespace,
    query_string_override,
)
from liftkit.sdk._jsvalues import json_equal, to_string, truthy
from liftkit.sdk._targeting import (
    EvaluateParent,
    compile_filters,
    compile_parents,
    filtered_out,
    hash_attribute,
)
from liftkit.sdk._types import ExperimentResult, UserContext
from liftkit.sdk._urls import is_url_targeted

# Keys copied from a rule into the experiment GrowthBook SDKs report back (truthy ones only,
# except coverage, which is copied whenever present).
_EXPERIMENT_KEYS = (
    "weights",
    "hashAttribute",
    "fallbackAttribute",
    "disableStickyBucketing",
    "namespace",
    "meta",
    "ranges",
    "name",
    "phase",
    "seed",
    "hashVersion",
    "filters",
    "condition",
)


class Experiment:
    """An experiment compiled for evaluation; immutable after construction."""

    __slots__ = (
        "active",
        "as_dict",
        "bandit",
        "bandit_dict",
        "bucket_version",
        "condition",
        "coverage",
        "disable_sticky",
        "fallback_attribute",
        "filters",
        "force",
        "has_force",
        "hash_attribute",
        "hash_version",
        "hasher",
        "key",
        "meta",
        "min_bucket_version",
        "namespace",
        "parents",
        "plain",
        "ranges",
        "seed",
        "status",
        "url_patterns",
        "url_regex",
        "variations",
    )

    def __init__(
        self,
        raw: Mapping[str, Any],
        saved_groups: Mapping[str, Any],
        *,
        key: str | None = None,
        weights: Sequence[float] | None = None,
        bandit: Mapping[str, Any] | None = None,
    ) -> None:
        self.key = str(key if key is not None else raw.get("key", ""))
        self.variations: tuple[Any, ...] = tuple(raw.get("variations") or ())
        n = len(self.variations)
        self.hash_attribute = str(raw.get("hashAttribute") or "id")
        self.fallback_attribute = raw.get("fallbackAttribute") or None
        self.hash_version = int(raw.get("hashVersion") or 1)
        self.seed = str(raw.get("seed") or self.key)
        self.hasher = Hasher(self.seed, self.hash_version)
        w = weights if weights is not None else raw.get("weights")
        self.coverage = raw.get("coverage")
        explicit = raw.get("ranges")
        self.ranges: tuple[BucketRange, ...] = (
            tuple((float(r[0]), float(r[1])) for r in explicit)
            if explicit
            else tuple(bucket_ranges(n, 1.0 if self.coverage is None else self.coverage, w))
        )
        self.meta: tuple[Mapping[str, Any], ...] = tuple(
            m if isinstance(m, dict) else {} for m in raw.get("meta") or ()
        )
        self.namespace = raw.get("namespace") or None
        self.filters = compile_filters(raw.get("filters"))
        self.condition = (
            compile_condition(raw["condition"], saved_groups) if raw.get("condition") else None
        )
        self.parents = compile_parents(raw.get("parentConditions"), saved_groups)
        self.has_force = "force" in raw
        self.force = raw.get("force")
        self.active = raw.get("active", True) is not False
        self.status = raw.get("status")
        self.bucket_version = int(raw.get("bucketVersion") or 0)
        self.min_bucket_version = int(raw.get("minBucketVersion") or 0)
        self.disable_sticky = bool(raw.get("disableStickyBucketing"))
        self.url_patterns = raw.get("urlPatterns") or None
        self.url_regex = raw.get("url") or None
        self.bandit = bandit
        # Most experiments use none of the rarer steps; ``assign_plain`` skips them.
        self.plain = not (
            len(self.variations) < 2
            or self.url_patterns
            or self.url_regex
            or self.filters is not None
            or self.namespace
            or self.parents
            or self.has_force
            or self.status is not None
            or not self.active
            or self.disable_sticky
        )
        out: dict[str, Any] = {"variations": list(self.variations), "key": self.key}
        if "coverage" in raw:
            out["coverage"] = raw["coverage"]
        for name in _EXPERIMENT_KEYS:
            if raw.get(name):
                out[name] = raw[name]
        if weights is not None:
            out["weights"] = list(weights)
        for name in ("bucketVersion", "minBucketVersion"):
            if raw.get(name) is not None:
                out[name] = raw[name]
        self.as_dict: Mapping[str, Any] = MappingProxyType(out)
        self.bandit_dict = (
            MappingProxyType({**out, "contextualBandit": dict(bandit)}) if bandit else self.as_dict
        )

    def dict_for(self, result: ExperimentResult) -> Mapping[str, Any]:
        """The experiment as reported with a result (bandit details only when hashed)."""
        return self.bandit_dict if result.hash_used else self.as_dict

    def result(
        self,
        index: int,
        hash_used: bool,
        feature_id: str | None,
        attribute: str,
        value: Any,
        bucket: float | None = None,
        sticky_used: bool = False,
    ) -> ExperimentResult:
        in_experiment = 0 <= index < len(self.variations)
        if not in_experiment:
            index = 0
        meta = self.meta[index] if index < len(self.meta) else _NO_META
        bandit = self.bandit if hash_used else None
        weights = bandit.get("variationWeights") if bandit else None
        return ExperimentResult(
            str(meta.get("key") or index),
            index,
            self.variations[index] if self.variations else None,
            in_experiment,
            hash_used,
            attribute,
            value,
            feature_id,
            bucket,
            meta.get("name") or None,
            meta.get("passthrough") or None,
            sticky_used,
            bandit.get("leafId") if bandit else None,
            tuple(weights) if weights is not None else None,
            bandit.get("banditVersion") if bandit else None,
        )


_NO_META: Mapping[str, Any] = MappingProxyType({})


def _sticky_key(experiment_key: str, bucket_version: int) -> str:
    return f"{experiment_key}__{bucket_version}"


def _sticky_assignments(
    exp: Experiment, attributes: Mapping[str, Any], docs: Mapping[str, Any]
) -> dict[str, Any]:
    assignments: dict[str, Any] = {}
    if exp.fallback_attribute:
        fallback_value = attributes.get(exp.fallback_attribute)
        if truthy(fallback_value):
            doc = docs.get(f"{exp.fallback_attribute}||{to_string(fallback_value)}")
            if doc:
                assignments.update(doc.get("assignments") or {})
    value = attributes.get(exp.hash_attribute)
    doc = docs.get(f"{exp.hash_attribute}||{to_string(value if truthy(value) else '')}")
    if doc:
        assignments.update(doc.get("assignments") or {})
    return assignments


def _sticky_variation(
    exp: Experiment, attributes: Mapping[str, Any], docs: Mapping[str, Any]
) -> tuple[int, bool]:
    """(variation index or -1, whether the user holds a blocked bucket version)."""
    assignments = _sticky_assignments(exp, attributes, docs)
    for version in range(exp.min_bucket_version):
        if _sticky_key(exp.key, version) in assignments:
            return -1, True
    variation_key = assignments.get(_sticky_key(exp.key, exp.bucket_version))
    if variation_key is None:
        return -1, False
    for i, meta in enumerate(exp.meta):
        if meta.get("key") == variation_key:
            return i, False
    return -1, False


def _save_sticky(exp: Experiment, result: ExperimentResult, user: UserContext) -> None:
    docs = user.sticky_docs
    assert docs is not None
    name, value = result.hash_attribute, to_string(result.hash_value)
    doc_key = f"{name}||{value}"
    existing = (docs.get(doc_key) or {}).get("assignments") or {}
    assignments = {**existing, _sticky_key(exp.key, exp.bucket_version): result.key}
    if json_equal(existing, assignments):
        return
    doc = {"attributeName": name, "attributeValue": value, "assignments": assignments}
    docs[doc_key] = doc
    if user.on_sticky_change is not None:
        user.on_sticky_change(doc)


def _excluded(
    exp: Experiment,
    user: UserContext,
    feature_id: str | None,
    sticky: bool,
    sticky_used: bool = False,
) -> ExperimentResult:
    attr, value = hash_attribute(
        user.attributes, exp.hash_attribute, exp.fallback_attribute if sticky else None
    )
    return exp.result(-1, False, feature_id, attr, value, None, sticky_used)


def assign_plain(exp: Experiment, user: UserContext, feature_id: str) -> ExperimentResult | None:
    """``run`` for a plain experiment and a plain user; None when the user is not included.

    The caller checks ``exp.plain`` and that the user has no URL, forced variations, sticky
    buckets or QA mode. Every step skipped here is a no-op under those conditions, so the
    decision is the one ``run`` makes (the conformance and differential tests check both).
    """
    attributes = user.attributes
    value = attributes.get(exp.hash_attribute)
    if value.__class__ is str:
        if not value:
            return None
        text = value
    elif not truthy(value):
        return None
    else:
        text = to_string(value)
    if exp.condition is not None and not exp.condition(attributes):
        return None
    n = exp.hasher(text)
    if n is None:
        return None
    index = 0
    for lo, hi in exp.ranges:
        if lo <= n < hi:
            break
        index += 1
    else:
        return None
    result = exp.result(index, True, feature_id, exp.hash_attribute, value, n)
    if user.on_exposure is not None:
        user.on_exposure(exp.dict_for(result), result)
    return result


def run(
    exp: Experiment,
    user: UserContext,
    feature_id: str | None,
    evaluate_parent: EvaluateParent | None = None,
) -> ExperimentResult:
    """Assign the user a variation of ``exp`` (or exclude them) and report the exposure.

    ``evaluate_parent`` is needed only when the experiment has prerequisites.
    """
    attributes = user.attributes
    sticky = user.sticky_docs is not None and not exp.disable_sticky
    # 1-2. Too few variations, or the SDK is disabled.
    if len(exp.variations) < 2 or not user.enabled:
        return _excluded(exp, user, feature_id, sticky)
    # 2.6. URL targeting.
    if exp.url_patterns and not is_url_targeted(user.url, exp.url_patterns):
        return _excluded(exp, user, feature_id, sticky)
    # 3-4. Forced by the query string or by the context.
    forced = query_string_override(exp.key, user.url, len(exp.variations)) if user.url else None
    if forced is None and exp.key in user.forced_variations:
        forced = user.forced_variations[exp.key]
    attr, hash_val = hash_attribute(
        attributes, exp.hash_attribute, exp.fallback_attribute if sticky else None
    )
    if forced is not None:
        return exp.result(forced, False, feature_id, attr, hash_val)
    # 5. Drafts and inactive experiments.
    if exp.status == "draft" or not exp.active:
        return exp.result(-1, False, feature_id, attr, hash_val)
    # 6. The hash attribute must have a value.
    if not truthy(hash_val):
        return exp.result(-1, False, feature_id, attr, hash_val)
    assigned, blocked = -1, False
    if sticky:
        assert user.sticky_docs is not None
        assigned, blocked = _sticky_variation(exp, attributes, user.sticky_docs)
    found_sticky = assigned >= 0
    if not found_sticky:
        # 7. Filters (or the legacy namespace).
        if exp.filters is not None:
            if filtered_out(exp.filters, attributes):
                return exp.result(-1, False, feature_id, attr, hash_val)
        elif exp.namespace and not in_namespace(to_string(hash_val), exp.namespace):
            return exp.result(-1, False, feature_id, attr, hash_val)
        # 8. Targeting condition and prerequisites.
        if exp.condition is not None and not exp.condition(attributes):
            return exp.result(-1, False, feature_id, attr, hash_val)
        for parent_id, check, _gate in exp.parents:
            value, cyclic = evaluate_parent(parent_id) if evaluate_parent else (None, True)
            if cyclic or not check({"value": value}):
                return exp.result(-1, False, feature_id, attr, hash_val)
    # 8.2. Legacy URL regex.
    if exp.url_regex and not _url_regex_matches(str(exp.url_regex), user.url):
        return exp.result(-1, False, feature_id, attr, hash_val)
    # 9. Hash and choose a variation.
    n = exp.hasher(hash_val if isinstance(hash_val, str) else to_string(hash_val))
    if n is None:
        return exp.result(-1, False, feature_id, attr, hash_val)
    if not found_sticky:
        assigned = choose_variation(n, exp.ranges)
    if blocked or assigned < 0:
        return exp.result(-1, False, feature_id, attr, hash_val, None, blocked)
    # 11-12.5. Forced in the experiment, QA mode, stopped.
    if exp.has_force:
        force = exp.force if isinstance(exp.force, int) else -1
        return exp.result(force, False, feature_id, attr, hash_val)
    if user.qa_mode or exp.status == "stopped":
        return exp.result(-1, False, feature_id, attr, hash_val)
    # 13. In the experiment.
    result = exp.result(assigned, True, feature_id, attr, hash_val, n, found_sticky)
    if sticky:
        _save_sticky(exp, result, user)
    if user.on_exposure is not None:
        user.on_exposure(exp.dict_for(result), result)
    return result


def _url_regex_matches(pattern: str, url: str) -> bool:
    try:
        return re.search(pattern, url) is not None
    except re.error:
        return False
