"""Playbooks: declarative automation attached to an experiment or a feature rollout.

A playbook says how a change should go live and what to do with what the data shows: coverage
stages with minimum durations and samples, guardrail metrics, the rule that decides the primary
metric, the health checks that halt everything, and an action per outcome. The controller
(``liftkit.automation``) reads it every cycle and acts through the registry like a person would.
The definition is a registry object (revisioned, audited, config-as-code); the controller's
runtime state and its timeline of decisions live beside it (``automation.state``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, HttpUrl, model_validator

from liftkit.registry._base import Fraction, JsonValue, Key, Model, ProjectObject

PlaybookType = Literal["experiment", "rollout", "bandit"]


class Stage(Model):
    """One coverage step: the share of traffic in the test, held at least this long and big."""

    coverage: float = Field(gt=0.0, le=1.0)
    min_hours: float = Field(24.0, ge=0)
    #: Units (all variations together) the stage must have seen before the next one.
    min_units: int = Field(0, ge=0)


class Guardrail(Model):
    """A metric that must not get worse.

    Tested one-sided and sequentially at every cycle: *breached* when the treatment is
    significantly worse than control (Holm-corrected across guardrails), *passed* when it is
    shown to be no worse than ``margin`` (relative) — non-inferior.
    """

    metric: Key
    margin: float = Field(0.02, ge=0)


class DecisionRule(Model):
    """How the primary metric decides a winner.

    ``sequential``: an anytime-valid confidence sequence excludes zero at ``alpha``.
    ``bayesian``: chance to win ≥ ``chance_to_win`` and expected relative loss ≤ ``max_risk``.
    ``require_non_inferior`` (default: yes for experiments, no for rollouts): promote only once
    every guardrail has passed, not merely not failed.
    """

    method: Literal["sequential", "bayesian"] = "sequential"
    alpha: float = Field(0.05, gt=0, le=0.5)
    chance_to_win: float = Field(0.95, gt=0.5, lt=1.0)
    max_risk: float = Field(0.0025, ge=0)
    require_non_inferior: bool | None = None


class HealthPolicy(Model):
    """Checks that halt the rollout: data you cannot trust is not acted on."""

    srm: bool = True
    srm_p_value: float = Field(0.001, gt=0, lt=1)
    max_multiple_exposure_share: float = Field(0.01, ge=0, le=1)


class Actions(Model):
    """What to do per outcome. ``notify`` only tells people (webhooks and the timeline)."""

    win: Literal["promote", "notify"] = "promote"
    lose: Literal["rollback", "notify"] = "rollback"
    guardrail: Literal["rollback", "pause", "notify"] = "rollback"
    health: Literal["pause", "rollback", "notify"] = "pause"
    #: At the maximum runtime with no decision (experiments), or when a rollout's last stage
    #: has not shown its guardrails non-inferior though required.
    inconclusive: Literal["rollback", "promote", "notify"] = "rollback"


class Archive(Model):
    """Remove the experiment (and a flag that existed only for it) from the payload."""

    after_days: float = Field(14.0, ge=0)
    #: Wait until someone confirms the code is gone (``liftkit playbooks code-removed``).
    require_code_removed: bool = True


class Bandit(Model):
    """Thompson sampling over the primary metric; weights move only at cycle boundaries."""

    cycle_hours: float = Field(24.0, gt=0)
    min_share: float = Field(0.05, ge=0, le=0.5)


class Warranty(Model):
    """After a winner ships, a small holdout keeps the old experience to re-validate the win."""

    days: float = Field(30.0, gt=0)
    owner: str = Field(min_length=1)
    holdout: Fraction = 0.05
    #: What a *negative* re-validation does: tell the owner, or also roll the change back.
    on_negative: Literal["notify", "rollback"] = "notify"


class Webhook(Model):
    """Where notifications go. ``secret`` signs bodies (HMAC-SHA256); ``${ENV}`` is expanded."""

    url: HttpUrl
    secret: str = ""
    format: Literal["liftkit", "slack"] = "liftkit"


class Playbook(ProjectObject):
    """The policy for one experiment, bandit or feature rollout.

    ``rollout`` playbooks name a ``feature``, an ``environment`` and the ``value`` being rolled
    out; the controller creates the experiment that measures it (key: ``experiment``, default
    the playbook's key) with the current default as control, and ramps its coverage.
    """

    type: PlaybookType = "experiment"
    experiment: Key | None = None
    feature: Key | None = None
    environment: Key = "production"
    value: JsonValue = None
    enabled: bool = True
    #: Record what would be done, change nothing.
    dry_run: bool = False
    start_at: datetime | None = None
    stop_at: datetime | None = None
    stages: list[Stage] = Field(
        default_factory=lambda: [Stage(coverage=1.0, min_hours=0)], min_length=1
    )
    guardrails: list[Guardrail] = Field(default_factory=list)
    decision: DecisionRule = Field(default_factory=DecisionRule)
    #: Default 7 days for experiments and bandits, none for rollouts.
    min_runtime_days: float | None = Field(None, ge=0)
    max_runtime_days: float = Field(42.0, gt=0)
    #: Expected total units at the end; tunes the sequential tests (a wrong guess costs
    #: interval width, never validity).
    expected_units: int = Field(10_000, ge=10)
    health: HealthPolicy = Field(default_factory=HealthPolicy)
    actions: Actions = Field(default_factory=Actions)
    archive: Archive | None = None
    bandit: Bandit | None = None
    warranty: Warranty | None = None
    notify: list[Webhook] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Playbook:
        coverages = [s.coverage for s in self.stages]
        if coverages != sorted(coverages):
            raise ValueError("stages: coverage must not go down from one stage to the next")
        if self.type == "rollout":
            if self.feature is None:
                raise ValueError("feature: a rollout playbook names the feature it rolls out")
            if self.value is None:
                raise ValueError("value: a rollout playbook needs the value it rolls out")
        elif self.experiment is None:
            raise ValueError(f"experiment: a {self.type} playbook names its experiment")
        if self.type == "bandit" and self.bandit is None:
            self.bandit = Bandit()
        if self.start_at and self.stop_at and self.stop_at <= self.start_at:
            raise ValueError("stop_at: must be after start_at")
        names = [g.metric for g in self.guardrails]
        if len(names) != len(set(names)):
            raise ValueError("guardrails: each metric once")
        return self

    @property
    def experiment_key(self) -> str:
        return self.experiment or self.key

    @property
    def min_runtime(self) -> float:
        """Minimum runtime in days."""
        if self.min_runtime_days is not None:
            return self.min_runtime_days
        return 0.0 if self.type == "rollout" else 7.0

    @property
    def require_non_inferior(self) -> bool:
        if self.decision.require_non_inferior is not None:
            return self.decision.require_non_inferior
        return self.type != "rollout"
