"""Experiments: variations, traffic, namespaces, phases, and how they ended."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from liftkit.registry._base import (
    Fraction,
    JsonValue,
    Key,
    Model,
    ProjectObject,
    Targeting,
)

ExperimentStatus = Literal["draft", "running", "stopped"]
ExperimentResult = Literal["won", "lost", "inconclusive", "dnf"]


class Variation(Model):
    """One arm. ``payload`` is the value served when a feature rule doesn't set its own."""

    key: Key
    name: str = ""
    weight: Fraction | None = None
    payload: JsonValue = None


class NamespaceRange(Model):
    """The slice ``[start, end)`` of a namespace this experiment occupies.

    Experiments whose slices of one namespace don't overlap never share a user.
    """

    namespace: Key
    start: Fraction = 0.0
    end: Fraction = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> NamespaceRange:
        if self.start >= self.end:
            raise ValueError("start: must be below end")
        return self


class Phase(Model):
    """A period with fixed weights; a new phase restarts analysis.

    Widening ``coverage`` with the same weights moves nobody between arms (it only adds users to
    every arm), so playbooks ramp coverage within a phase; new weights need a new phase.
    """

    name: str = ""
    started_at: datetime
    ended_at: datetime | None = None
    coverage: Fraction = 1.0
    weights: list[Fraction] | None = None
    reason: str = ""


class ExperimentMetrics(Model):
    """Metric keys by role; guardrails are tested for non-inferiority."""

    primary: list[Key] = Field(default_factory=list)
    secondary: list[Key] = Field(default_factory=list)
    guardrails: list[Key] = Field(default_factory=list)
    activation: Key | None = None


class AnalysisSettings(Model):
    """How results are computed; the defaults suit most tests.

    ``target_mde`` is the smallest relative effect worth detecting on the primary metric: with
    ``planned_days`` it decides when an inconclusive test should stop rather than keep running.
    """

    datasource: Key = "events"
    #: The identifier type units are counted by (default: from the hash attribute).
    identifier_type: str | None = None
    engine: Literal["frequentist", "bayesian"] = "frequentist"
    #: Anytime-valid confidence sequences, safe to look at every day.
    sequential: bool = False
    alpha: float = Field(0.05, gt=0, le=0.5)
    correction: Literal["none", "holm", "bh"] = "none"
    cuped: bool = True
    segment: Key | None = None
    #: Exposure attributes (or columns of a data source's exposure SQL) to break results down by.
    dimensions: list[str] = Field(default_factory=list)
    top_n: int = Field(5, ge=1, le=50)
    target_mde: float = Field(0.05, gt=0)
    planned_days: int = Field(28, ge=1)
    #: Guardrails fail when their effect is worse than this (relative), with confidence.
    guardrail_margin: float = Field(0.02, gt=0)


class Experiment(ProjectObject, Targeting):
    """An A/B or multivariate test. ``key`` is the tracking key sent with every exposure."""

    hypothesis: str = ""
    variations: list[Variation] = Field(
        default_factory=lambda: [Variation(key="control"), Variation(key="treatment")],
        min_length=2,
    )
    hash_attribute: str = "id"
    fallback_attribute: str | None = None
    hash_version: Literal[1, 2] = 2
    seed: str | None = None
    coverage: Fraction = 1.0
    namespaces: list[NamespaceRange] = Field(default_factory=list)
    phases: list[Phase] = Field(default_factory=list)
    status: ExperimentStatus = "draft"
    result: ExperimentResult | None = None
    released_variation: Key | None = None
    metrics: ExperimentMetrics = Field(default_factory=ExperimentMetrics)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    #: Raising this re-buckets users who were sticky-bucketed into an earlier version.
    bucket_version: int = Field(0, ge=0)
    archived: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        keys = [v.key for v in self.variations]
        if len(keys) != len(set(keys)):
            raise ValueError("variations: keys must be unique")
        given = [v.weight for v in self.variations if v.weight is not None]
        if given and len(given) != len(keys):
            raise ValueError("variations: give a weight to every variation or to none")
        if given and abs(sum(given) - 1.0) > 1e-6:
            raise ValueError("variations: weights must add up to 1")
        for index, phase in enumerate(self.phases):
            if phase.weights is not None and len(phase.weights) != len(keys):
                raise ValueError(f"phases.{index}.weights: one weight per variation")
        if self.released_variation is not None and self.released_variation not in keys:
            raise ValueError(f"released_variation: {self.released_variation!r} is not a variation")
        if self.result is not None and self.status != "stopped":
            raise ValueError("result: only a stopped experiment has a result")
        names = [n.namespace for n in self.namespaces]
        if len(names) != len(set(names)):
            raise ValueError("namespaces: one range per namespace")
        return self

    def weights(self) -> list[float]:
        """Traffic split of the current phase (equal when nothing is set)."""
        phase = self.current_phase()
        if phase is not None and phase.weights is not None:
            return list(phase.weights)
        if self.variations[0].weight is not None:
            return [float(v.weight or 0.0) for v in self.variations]
        return [1.0 / len(self.variations)] * len(self.variations)

    def current_coverage(self) -> float:
        phase = self.current_phase()
        return phase.coverage if phase is not None else self.coverage

    def current_phase(self) -> Phase | None:
        return self.phases[-1] if self.phases else None

    def variation_index(self, key: str) -> int:
        return [v.key for v in self.variations].index(key)
