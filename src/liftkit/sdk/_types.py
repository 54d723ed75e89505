"""The data shapes the evaluation engine hands out, declared once.

Field names are snake_case; ``to_dict`` renders the GrowthBook (camelCase) form so results can be
compared with the SDK specification and sent over the wire unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from liftkit.sdk._jsvalues import truthy

Source = Literal[
    "unknownFeature",
    "defaultValue",
    "force",
    "experiment",
    "override",
    "prerequisite",
    "cyclicPrerequisite",
]


class ExperimentResult(NamedTuple):
    """Which variation a user got in one experiment, and how that was decided.

    Immutable. A NamedTuple rather than a frozen dataclass because one is built per experiment
    per evaluation, and a frozen dataclass's constructor costs several times more.
    """

    key: str
    """The variation's key (``meta[i].key``, or the index as a string)."""
    variation_id: int
    value: Any
    in_experiment: bool
    hash_used: bool
    hash_attribute: str
    hash_value: Any
    """The attribute's value as the user supplied it (string or number)."""
    feature_id: str | None = None
    bucket: float | None = None
    name: str | None = None
    passthrough: bool | None = None
    sticky_bucket_used: bool = False
    leaf_id: Any = None
    variation_weights: tuple[float, ...] | None = None
    bandit_version: Any = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "featureId": self.feature_id,
            "hashAttribute": self.hash_attribute,
            "hashUsed": self.hash_used,
            "hashValue": self.hash_value,
            "inExperiment": self.in_experiment,
            "key": self.key,
            "stickyBucketUsed": self.sticky_bucket_used,
            "value": self.value,
            "variationId": self.variation_id,
        }
        if self.bucket is not None:
            out["bucket"] = self.bucket
        if self.name is not None:
            out["name"] = self.name
        if self.passthrough is not None:
            out["passthrough"] = self.passthrough
        if self.leaf_id is not None:
            out["leafId"] = self.leaf_id
        if self.variation_weights is not None:
            out["variationWeights"] = list(self.variation_weights)
        if self.bandit_version is not None:
            out["banditVersion"] = self.bandit_version
        return out


class EvalResult(NamedTuple):
    """The outcome of evaluating one feature for one user (immutable; see ExperimentResult)."""

    key: str
    value: Any
    source: Source
    rule_id: str = ""
    experiment: Mapping[str, Any] | None = None
    """The experiment as evaluated, in GrowthBook's camelCase form (``key``, ``variations`` …)."""
    experiment_result: ExperimentResult | None = None

    @property
    def on(self) -> bool:
        """JavaScript truthiness, as every GrowthBook SDK uses: null, false, 0 and "" are off."""
        return truthy(self.value)

    @property
    def off(self) -> bool:
        return not self.on

    @property
    def experiment_key(self) -> str | None:
        return None if self.experiment is None else str(self.experiment.get("key", ""))

    @property
    def variation_id(self) -> int | None:
        r = self.experiment_result
        return None if r is None else r.variation_id

    @property
    def in_experiment(self) -> bool:
        r = self.experiment_result
        return r is not None and r.in_experiment

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "on": self.on,
            "off": self.off,
            "source": self.source,
            "ruleId": self.rule_id,
        }
        if self.experiment is not None:
            out["experiment"] = dict(self.experiment)
        if self.experiment_result is not None:
            out["experimentResult"] = self.experiment_result.to_dict()
        return out


ExposureCallback = Callable[[Mapping[str, Any], ExperimentResult], None]
"""Called with (experiment, result) each time a user is bucketed into an experiment."""


@dataclass(slots=True)
class UserContext:
    """Everything about one user (or request) that evaluation reads.

    Built once per request by ``Client.for_user``; the engine treats it as read-only except for
    ``sticky_docs`` (which it updates when sticky bucketing assigns a variation) and the
    per-context caches.
    """

    attributes: Mapping[str, Any] = field(default_factory=dict)
    url: str = ""
    forced_variations: Mapping[str, int] = field(default_factory=dict)
    forced_features: Mapping[str, Any] = field(default_factory=dict)
    qa_mode: bool = False
    enabled: bool = True
    sticky_docs: MutableMapping[str, dict[str, Any]] | None = None
    """Sticky bucket documents keyed ``"attribute||value"``; None disables sticky bucketing."""
    on_sticky_change: Callable[[dict[str, Any]], None] | None = None
    """Called with a document when sticky bucketing changes it (to persist it)."""
    on_exposure: ExposureCallback | None = None

    @property
    def plain(self) -> bool:
        """True when nothing request-specific (URL, forcing, sticky buckets, QA) applies."""
        return not (
            self.url
            or self.forced_variations
            or self.sticky_docs is not None
            or self.qa_mode
            or not self.enabled
        )
