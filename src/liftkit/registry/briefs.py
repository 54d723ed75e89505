"""Knowledge-base records: experiment briefs, the organisation's templates and its settings.

A ``Brief`` is the written side of an experiment, from the first idea to the learnings after it
ends: the structured hypothesis, where it runs and for whom, the metrics and success criteria,
the scores and sizing that rank it among ideas, the reviews that let it launch, and the
conclusion. Briefs are registry objects, so every edit is a revision (the brief's version
history) and every change is in the audit log. ``liftkit.knowledge`` reads them together with
experiments and result snapshots; these models only declare the shapes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, HttpUrl, model_validator

from liftkit.registry._base import Condition, Fraction, Key, Model, ProjectObject, RegistryObject
from liftkit.registry.experiments import ExperimentMetrics, ExperimentResult
from liftkit.registry.playbooks import Webhook

#: Where a brief is in its life. ``running`` … ``decided`` follow the linked experiment.
Stage = Literal[
    "idea", "planned", "in_review", "running", "analysing", "decided", "shipped", "archived"
]  # fmt: skip
STAGES: tuple[Stage, ...] = (
    "idea", "planned", "in_review", "running", "analysing", "decided", "shipped", "archived"
)  # fmt: skip
Outcome = ExperimentResult
LinkKind = Literal["doc", "design", "screenshot", "ticket", "dashboard", "other"]
ScoringFramework = Literal["ice", "pie", "rice"]


class Hypothesis(Model):
    """ "We think [change] for [audience] will [result] because [reason]"."""

    change: str = ""
    audience: str = ""
    result: str = ""
    reason: str = ""

    @property
    def complete(self) -> bool:
        return all(p.strip() for p in (self.change, self.audience, self.result, self.reason))

    @property
    def text(self) -> str:
        return (
            f"We think {self.change.strip() or '…'} for {self.audience.strip() or '…'} "
            f"will {self.result.strip() or '…'} because {self.reason.strip() or '…'}"
        )


class Criteria(Model):
    """What counts as success, fixed before launch. ``mde`` is relative (0.02 = +2%)."""

    mde: float | None = Field(None, gt=0, le=10)
    alpha: float = Field(0.05, gt=0, le=0.5)
    power: float = Field(0.8, gt=0, lt=1)
    min_days: int = Field(7, ge=1, le=365)


class Link(Model):
    url: HttpUrl
    title: str = ""
    kind: LinkKind = "other"


class Scores(Model):
    """Prioritisation inputs; which ones matter depends on the scoring framework.

    ICE: impact, confidence, ease. PIE: potential, importance, ease (all 1–10). RICE: reach
    (people per quarter), impact (0.25–3), confidence (0–1), effort (person-weeks).
    """

    impact: float | None = Field(None, ge=0, le=10)
    confidence: float | None = Field(None, ge=0, le=10)
    ease: float | None = Field(None, ge=0, le=10)
    potential: float | None = Field(None, ge=0, le=10)
    importance: float | None = Field(None, ge=0, le=10)
    reach: float | None = Field(None, ge=0)
    effort: float | None = Field(None, gt=0)


class Sizing(Model):
    """Opportunity sizing: reach × baseline × lift × value → projected impact.

    Anything left out is filled from data: ``reach_per_month`` from measured traffic ×
    ``audience_share``, ``baseline`` from past results on the primary metric.
    """

    reach_per_month: float | None = Field(None, ge=0)
    audience_share: Fraction = 1.0
    baseline: float | None = Field(None, ge=0, le=1)
    expected_lift: float | None = Field(None, gt=-1, le=10)
    value_per_conversion: float = Field(0.0, ge=0)


class Review(Model):
    """A reviewer's verdict on the brief as it was (``digest`` of its reviewed content)."""

    reviewer: str = Field(min_length=1)
    at: datetime
    decision: Literal["approve", "changes"]
    comment: str = ""
    digest: str = ""


class Conclusion(Model):
    outcome: Outcome | None = None
    learnings: str = ""
    decided_at: datetime | None = None
    decided_by: str = ""


class Brief(ProjectObject):
    """An experiment's brief (``name`` is its title). ``experiment`` links the registry object."""

    hypothesis: Hypothesis = Field(default_factory=Hypothesis)
    change_type: str = ""
    surface: str = ""
    funnel_stage: str = ""
    #: Who sees it, in words; ``targeting`` is the same as a condition when no experiment is
    #: linked yet (used to tell whether two audiences can overlap).
    audience: str = ""
    targeting: Condition = Field(default_factory=dict)
    owners: list[str] = Field(default_factory=list)
    team: str = ""
    links: list[Link] = Field(default_factory=list)
    metrics: ExperimentMetrics = Field(default_factory=ExperimentMetrics)
    criteria: Criteria = Field(default_factory=Criteria)
    experiment: Key | None = None
    planned_start: date | None = None
    planned_end: date | None = None
    template: Key | None = None
    #: Answers to the template's own questions, by question key.
    answers: dict[str, str] = Field(default_factory=dict)
    scores: Scores = Field(default_factory=Scores)
    sizing: Sizing = Field(default_factory=Sizing)
    #: Why this should run although a similar past experiment failed.
    justification: str = ""
    stage: Stage = "idea"
    submitted_by: str = ""
    reviews: list[Review] = Field(default_factory=list)
    conclusion: Conclusion = Field(default_factory=Conclusion)

    @model_validator(mode="after")
    def _consistent(self) -> Brief:
        if not self.owner and self.owners:
            self.owner = self.owners[0]
        elif self.owner and not self.owners:
            self.owners = [self.owner]
        if self.planned_start and self.planned_end and self.planned_end < self.planned_start:
            raise ValueError("planned_end: must not be before planned_start")
        return self


class Question(Model):
    key: Key
    label: str = Field(min_length=1)
    help: str = ""
    required: bool = True


#: Brief fields a template can require (dotted paths into ``Brief``).
REQUIRABLE = (
    "hypothesis", "change_type", "surface", "funnel_stage", "audience", "owners", "team",
    "tags", "links", "metrics.primary", "metrics.guardrails", "criteria.mde",
    "sizing.expected_lift", "planned_start", "planned_end",
)  # fmt: skip


class BriefTemplate(RegistryObject):
    """The organisation's brief template. Required in the listed ``projects``."""

    required_fields: list[Literal[REQUIRABLE]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["hypothesis", "metrics.primary"]
    )
    questions: list[Question] = Field(default_factory=list)
    projects: list[Key] = Field(default_factory=list)


class Taxonomy(Model):
    """Allowed values; an empty list allows anything."""

    tags: list[str] = Field(default_factory=list)
    change_types: list[str] = Field(default_factory=list)
    surfaces: list[str] = Field(default_factory=list)
    funnel_stages: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)


class KnowledgeSettings(RegistryObject):
    """The knowledge base's organisation-wide settings (the object with key ``default``)."""

    taxonomy: Taxonomy = Field(default_factory=Taxonomy)
    scoring: ScoringFramework = "ice"
    #: Similarity (0–1) from which a past experiment counts as a near-duplicate.
    duplicate_threshold: float = Field(0.28, gt=0, le=1)
    #: Extra synonym groups for duplicate detection (the first word stands for the group).
    synonyms: list[list[str]] = Field(default_factory=list)
    #: How recent an A/A test on the same assignment attribute must be.
    aa_max_age_days: int = Field(90, ge=1)
    #: Days after an experiment stops by which a decision is expected.
    decision_days: int = Field(7, ge=0)
    #: Reminders go this many days before an experiment or a warranty ends.
    remind_days_before: int = Field(3, ge=0)
    notify: list[Webhook] = Field(default_factory=list)
    digest_recipients: list[str] = Field(default_factory=list)
