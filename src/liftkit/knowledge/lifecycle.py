"""A brief's lifecycle: idea → planned → in review → running → analysing → decided → shipped.

Moves are checked here and written through the registry (each one a revision of the brief, so
its history shows who moved it when). The rules:

- **submit** (planned → in review) needs the writing done: hypothesis, template, taxonomy;
- **review** is by someone other than the submitter and the owners; an approval is for the
  brief *as reviewed* (a digest of its content), so editing it afterwards needs a new one;
- **launch** (in review → running) needs a current approval and no failing checklist item;
  it starts the linked draft experiment (a first phase from now), as the person launching;
- **conclude** records the outcome and learnings once the experiment has stopped; **ship**
  marks a won brief shipped; **archive** is always allowed.

Running, analysing and decided also follow the linked experiment on their own (see records).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from liftkit.knowledge import checklist
from liftkit.knowledge.records import effective_stage
from liftkit.platform import Platform
from liftkit.registry.briefs import Brief, Outcome, Review, Stage
from liftkit.registry.errors import InvalidObject
from liftkit.registry.experiments import Experiment, Phase

#: Moves anyone with write access may make directly (the rest have their own function).
_FREE_MOVES: dict[Stage, set[Stage]] = {
    "idea": {"planned"},
    "planned": {"idea"},
    "in_review": {"planned"},
}
_GUARDED = {"in_review", "running", "analysing", "decided", "shipped"}
_UNREVIEWED = ("stage", "reviews", "submitted_by", "conclusion")


class LifecycleError(Exception):
    """A move the brief's state does not allow (the API answers 409)."""


def person(actor: str) -> str:
    """``user:ann@example.com`` → ``ann@example.com`` (owners are written without the prefix)."""
    return actor.split(":", 1)[1] if actor.startswith("user:") else actor


def digest(brief: Brief) -> str:
    """A fingerprint of what a reviewer approves (not the stage, reviews or conclusion)."""
    body = brief.model_dump(mode="json", exclude=set(_UNREVIEWED))
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def approval(brief: Brief) -> Review | None:
    """The approval that still applies to the brief as it is now."""
    current = digest(brief)
    for review in reversed(brief.reviews):
        if review.digest != current:
            return None
        if review.decision == "approve":
            return review
        return None
    return None


def _save(platform: Platform, brief: Brief, actor: str, message: str) -> Brief:
    platform.registry.save("briefs", brief, actor, message=message)
    return brief


def _get(platform: Platform, key: str) -> Brief:
    found = platform.registry.get("briefs", key)
    assert isinstance(found, Brief)
    return found


def _experiment(platform: Platform, brief: Brief) -> Experiment | None:
    if brief.experiment is None:
        return None
    found = platform.registry.find("experiments", brief.experiment)
    if not isinstance(found, Experiment):
        raise LifecycleError(f"experiment: {brief.experiment!r} does not exist")
    return found


def check_direct_write(live: Brief | None, new: Brief) -> Brief:
    """The brief to store for an edit through the plain object routes, without lifecycle skips.

    ``reviews`` and ``submitted_by`` are read-only there (kept from the stored brief: only
    review and submit record them); the stage may be set directly only to idea, planned or
    archived, or left as it is.
    """
    before = live if isinstance(live, Brief) else Brief(key=new.key)
    if new.stage != before.stage and new.stage not in ("idea", "planned", "archived"):
        raise InvalidObject(
            f"stage: {new.stage} is reached through the /api/v1/kb/briefs/{{key}} lifecycle "
            "routes (submit, launch, conclude, ship)",
            [{"loc": ["stage"], "msg": "use the lifecycle routes"}],
        )
    return new.model_copy(update={"reviews": before.reviews, "submitted_by": before.submitted_by})


def stage_of(platform: Platform, brief: Brief) -> Stage:
    return effective_stage(brief, _experiment(platform, brief))


def move(platform: Platform, key: str, to: Stage, actor: str) -> Brief:
    """The simple moves: idea ↔ planned, withdraw from review, archive."""
    brief = _get(platform, key)
    stage = stage_of(platform, brief)
    if to == "archived" or to in _FREE_MOVES.get(stage, set()):
        return _save(platform, brief.model_copy(update={"stage": to}), actor, f"{stage} → {to}")
    raise LifecycleError(
        f"stage: cannot move from {stage} to {to} directly"
        + (" (use submit, review, launch, conclude or ship)" if to in _GUARDED else "")
    )


def submit(platform: Platform, key: str, actor: str, items: list[checklist.Item]) -> Brief:
    brief = _get(platform, key)
    stage = stage_of(platform, brief)
    if stage not in ("idea", "planned"):
        raise LifecycleError(f"stage: a brief in {stage} cannot be submitted for review")
    writing = [i for i in items if i.key in ("hypothesis", "template", "taxonomy")]
    problems = checklist.blocking(writing)
    if problems:
        raise LifecycleError("; ".join(i.detail for i in problems))
    update: dict[str, Any] = {"stage": "in_review", "submitted_by": person(actor)}
    return _save(platform, brief.model_copy(update=update), actor, "submitted for review")


def review(
    platform: Platform, key: str, actor: str, decision: str, comment: str = ""
) -> Brief:  # fmt: skip
    brief = _get(platform, key)
    stage = stage_of(platform, brief)
    if stage != "in_review":
        raise LifecycleError(f"stage: only a brief in review can be reviewed (it is {stage})")
    who = person(actor).lower()
    authors = {brief.submitted_by.lower(), *(o.lower() for o in brief.owners)} - {""}
    if who in authors:
        raise LifecycleError("reviewer: a brief must be reviewed by someone other than its authors")
    entry = Review(
        reviewer=person(actor), at=platform.clock(), decision=decision, comment=comment,
        digest=digest(brief),
    )  # fmt: skip
    update: dict[str, Any] = {"reviews": [*brief.reviews, entry]}
    if decision == "changes":
        update["stage"] = "planned"
    return _save(platform, brief.model_copy(update=update), actor, f"review: {decision}")


def launch(platform: Platform, key: str, actor: str, items: list[checklist.Item]) -> Brief:
    brief = _get(platform, key)
    stage = stage_of(platform, brief)
    if stage != "in_review":
        raise LifecycleError(f"stage: only a reviewed brief can launch (it is {stage})")
    if approval(brief) is None:
        raise LifecycleError("review: needs an approval of the brief as it is now")
    problems = checklist.blocking(items)
    if problems:
        raise LifecycleError("checklist: " + "; ".join(f"{i.label}: {i.detail}" for i in problems))
    experiment = _experiment(platform, brief)
    if experiment is not None and experiment.status == "draft":
        now = platform.clock()
        started = experiment.model_copy(
            update={
                "status": "running",
                "phases": [*experiment.phases, Phase(name="launch", started_at=now,
                           coverage=experiment.coverage, reason=f"brief {key} launched")],
            }
        )  # fmt: skip
        platform.registry.save("experiments", started, actor, message=f"launched from brief {key}")
    elif experiment is not None and experiment.status != "running":
        raise LifecycleError(f"experiment: {experiment.key} is {experiment.status}")
    return _save(platform, brief.model_copy(update={"stage": "running"}), actor, "launched")


def conclude(
    platform: Platform, key: str, actor: str, outcome: Outcome, learnings: str = ""
) -> Brief:  # fmt: skip
    brief = _get(platform, key)
    experiment = _experiment(platform, brief)
    if experiment is not None and experiment.status != "stopped":
        raise LifecycleError(f"experiment: stop {experiment.key} before concluding its brief")
    stage = stage_of(platform, brief)
    if experiment is None and stage not in ("running", "analysing", "decided"):
        raise LifecycleError(f"stage: a brief in {stage} has nothing to conclude")
    conclusion = brief.conclusion.model_copy(
        update={
            "outcome": outcome,
            "learnings": learnings or brief.conclusion.learnings,
            "decided_at": platform.clock(),
            "decided_by": person(actor),
        }
    )
    update = {"conclusion": conclusion, "stage": "decided"}
    return _save(platform, brief.model_copy(update=update), actor, f"concluded: {outcome}")


def ship(platform: Platform, key: str, actor: str) -> Brief:
    brief = _get(platform, key)
    experiment = _experiment(platform, brief)
    outcome = brief.conclusion.outcome or (experiment.result if experiment else None)
    if outcome != "won":
        raise LifecycleError(f"conclusion: only a won experiment ships (this one: {outcome})")
    return _save(platform, brief.model_copy(update={"stage": "shipped"}), actor, "shipped")
