"""Carrying out decisions through the registry's own operations, like a person would.

Every change here is a ``registry.save`` with the actor ``automation:<playbook>`` (or the person
behind a manual override) and the decision's reason as the message: a revision in the audit
log, a new payload, an SSE push to every SDK. Each action first compares the registry with the
state it wants and writes nothing when they already agree, so repeating an action after a crash
changes nothing twice. ``transition`` is the matching change of the playbook's own state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from liftkit.automation.rules import Decision
from liftkit.automation.state import State
from liftkit.registry.experiments import Experiment, ExperimentResult, Phase, Variation
from liftkit.registry.features import ExperimentRule, Feature, FeatureEnvironment
from liftkit.registry.playbooks import Playbook

if TYPE_CHECKING:
    from liftkit.registry import Registry

#: The experiment's result per outcome that ends it.
RESULTS: dict[str, ExperimentResult] = {
    "won": "won",
    "lost": "lost",
    "guardrail": "lost",
    "killed": "lost",
    "health": "dnf",
    "inconclusive": "inconclusive",
}


def _change(
    registry: Registry, name: str, obj: Any, changes: dict[str, Any], actor: str, reason: str
) -> Any:
    """Save ``obj`` with ``changes`` unless it already has them (idempotent)."""
    updated = type(obj).model_validate({**obj.model_dump(), **changes})
    if updated.model_dump(mode="json") == obj.model_dump(mode="json"):
        return obj
    registry.save(name, updated, actor, message=reason)
    return updated


def experiment_of(registry: Registry, playbook: Playbook) -> Experiment | None:
    found = registry.find("experiments", playbook.experiment_key)
    return found if isinstance(found, Experiment) else None


def apply(
    registry: Registry, playbook: Playbook, decision: Decision, now: datetime, actor: str
) -> None:
    """Make the registry reflect ``decision`` (a no-op where it already does)."""
    action = decision.action
    if action in ("hold", "pause", "notify"):
        return
    if action == "start" and playbook.type == "rollout":
        _ensure_rollout(registry, playbook, now, actor)
    experiment = experiment_of(registry, playbook)
    if experiment is None:
        raise LookupError(f"experiment {playbook.experiment_key!r} does not exist")
    why = f"{playbook.key}: {decision.reason}"
    if action in ("start", "advance"):
        coverage = playbook.stages[decision.stage or 0].coverage
        _set_coverage(registry, experiment, coverage, now, actor, why)
    elif action == "rollback":
        _stop(registry, experiment, decision.outcome, experiment.variations[0].key, now, actor, why)
    elif action == "promote" and playbook.warranty is not None and decision.winner:
        _warranty_phase(registry, playbook, experiment, decision.winner, now, actor, why)
    elif action == "promote":
        _stop(registry, experiment, "won", decision.winner, now, actor, why)
    elif action == "warranty-end":
        if decision.numbers.get("rollback"):
            control = experiment.variations[0].key
            _stop(registry, experiment, "lost", control, now, actor, why)
        else:
            _stop(registry, experiment, "won", decision.winner, now, actor, why)
    elif action == "reweight":
        _new_phase(
            registry,
            experiment,
            f"bandit cycle {decision.numbers.get('cycle')}",
            list(decision.weights or ()),
            now,
            actor,
            why,
        )
    elif action == "archive":
        _archive(registry, playbook, experiment, actor, why)


def _set_coverage(
    registry: Registry, experiment: Experiment, coverage: float, now: datetime, actor: str, why: str
) -> None:
    """Start the experiment, or widen its current phase (more coverage moves nobody)."""
    phases = [p.model_copy() for p in experiment.phases]
    if experiment.status != "running" or not phases or phases[-1].ended_at is not None:
        phases.append(Phase(name="ramp", started_at=now, coverage=coverage, reason=why))
    else:
        phases[-1] = phases[-1].model_copy(update={"coverage": coverage})
    changes = {"status": "running", "result": None, "released_variation": None, "phases": phases}
    _change(registry, "experiments", experiment, changes, actor, why)


def _stop(
    registry: Registry,
    experiment: Experiment,
    outcome: str | None,
    release: str | None,
    now: datetime,
    actor: str,
    why: str,
) -> None:
    result = RESULTS.get(outcome or "", "inconclusive")
    stop_experiment(registry, experiment, result, release, now, actor, why)


def stop_experiment(
    registry: Registry,
    experiment: Experiment,
    result: ExperimentResult,
    release: str | None,
    now: datetime,
    actor: str,
    why: str,
) -> Experiment:
    """End the current phase and stop with ``result``, serving ``release`` (None: nothing).

    The one way an experiment is stopped, by a playbook or by a person in the dashboard (who
    has checked the write role first); ``why`` is the revision's message. Stopping again with
    the same release changes nothing: the phase end and result stay as first recorded.
    """
    if experiment.status == "stopped" and experiment.released_variation == release:
        return experiment
    phases = [p.model_copy() for p in experiment.phases]
    if phases and phases[-1].ended_at is None:
        phases[-1] = phases[-1].model_copy(update={"ended_at": now})
    changes = {
        "status": "stopped",
        "result": result,
        "released_variation": release,
        "phases": phases,
    }
    stopped: Experiment = _change(registry, "experiments", experiment, changes, actor, why)
    return stopped


def _new_phase(
    registry: Registry,
    experiment: Experiment,
    name: str,
    weights: list[float],
    now: datetime,
    actor: str,
    why: str,
    coverage: float | None = None,
) -> None:
    """End the current phase and start one with new weights (named once: idempotent)."""
    if experiment.phases and experiment.phases[-1].name == name:
        return
    phases = [p.model_copy() for p in experiment.phases]
    current = experiment.current_coverage()
    if phases and phases[-1].ended_at is None:
        phases[-1] = phases[-1].model_copy(update={"ended_at": now})
    total = sum(weights) or 1.0
    phases.append(
        Phase(
            name=name,
            started_at=now,
            coverage=current if coverage is None else coverage,
            weights=[w / total for w in weights],
            reason=why,
        )
    )
    _change(registry, "experiments", experiment, {"phases": phases}, actor, why)


def _warranty_phase(
    registry: Registry,
    playbook: Playbook,
    experiment: Experiment,
    winner: str,
    now: datetime,
    actor: str,
    why: str,
) -> None:
    """Ship the winner to everyone but a small holdout that keeps control, to re-validate."""
    assert playbook.warranty is not None
    holdout = playbook.warranty.holdout
    index = experiment.variation_index(winner)
    weights = [0.0] * len(experiment.variations)
    weights[0], weights[index] = holdout, 1.0 - holdout
    _new_phase(registry, experiment, "warranty", weights, now, actor, why, coverage=1.0)


def _archive(
    registry: Registry, playbook: Playbook, experiment: Experiment, actor: str, why: str
) -> None:
    _change(registry, "experiments", experiment, {"archived": True}, actor, why)
    for feature in registry.all("features"):
        assert isinstance(feature, Feature)
        only_this = feature.experiments() == {experiment.key} and all(
            isinstance(r, ExperimentRule)
            for setting in feature.environments.values()
            for r in setting.rules
        )
        if playbook.feature == feature.key or (only_this and feature.kind == "experiment"):
            _change(registry, "features", feature, {"archived": True}, actor, why)


def _ensure_rollout(registry: Registry, playbook: Playbook, now: datetime, actor: str) -> None:
    """Create the experiment that measures a rollout, and put it first in the feature's rules."""
    feature = registry.get("features", playbook.feature or "")
    assert isinstance(feature, Feature)
    key = playbook.experiment_key
    why = f"{playbook.key}: rollout of {feature.key} in {playbook.environment}"
    if registry.find("experiments", key) is None:
        experiment = Experiment(
            key=key,
            name=f"Rollout of {feature.key}",
            project=feature.project,
            owner=playbook.owner or feature.owner,
            hypothesis=f"rolling out {playbook.value!r} harms no guardrail",
            variations=[
                Variation(key="control", payload=feature.default_value),
                Variation(key="rollout", payload=playbook.value),
            ],
        )
        experiment.metrics.guardrails = [g.metric for g in playbook.guardrails]
        registry.save("experiments", experiment, actor, message=why)
    setting = feature.environments.get(playbook.environment, FeatureEnvironment())
    if any(isinstance(r, ExperimentRule) and r.experiment == key for r in setting.rules):
        return
    rule = ExperimentRule(id=f"playbook-{playbook.key}", experiment=key)
    environments = {
        **feature.environments,
        playbook.environment: FeatureEnvironment(enabled=True, rules=[rule, *setting.rules]),
    }
    _change(registry, "features", feature, {"environments": environments}, actor, why)


def transition(
    state: State, decision: Decision, playbook: Playbook, now: datetime, units: int
) -> State:
    """The playbook's state after ``decision`` was carried out (pure, and idempotent)."""
    s = state.model_copy(deep=True)
    action = decision.action
    if action == "start":
        s.status, s.stage, s.started_at = "running", 0, s.started_at or now
        s.stage_started_at, s.stage_units_at_start = now, 0
    elif action == "advance" and decision.stage is not None:
        if s.stage != decision.stage:
            s.stage, s.stage_started_at, s.stage_units_at_start = decision.stage, now, units
    elif action == "pause":
        s.paused_from = s.status if s.status != "paused" else s.paused_from
        s.status, s.paused_reason = "paused", decision.reason
    elif action == "rollback":
        s.status, s.outcome, s.ended_at = "rolled-back", decision.outcome, now
    elif action == "promote":
        s.winner, s.outcome = decision.winner, decision.outcome
        if playbook.warranty is not None and decision.winner:
            s.status = "warranty"
            s.warranty_ends_at = now + timedelta(days=playbook.warranty.days)
        else:
            s.status, s.ended_at = "promoted", now
    elif action == "warranty-end":
        s.warranty_outcome = decision.outcome  # type: ignore[assignment]
        s.ended_at = now
        s.status = "rolled-back" if decision.numbers.get("rollback") else "promoted"
    elif action == "reweight":
        cycle = int(decision.numbers.get("cycle", s.bandit_cycle + 1))
        if cycle > s.bandit_cycle:
            period = decision.numbers.get("period")
            if period:
                s.bandit_periods.append(period)
            s.bandit_cycle, s.bandit_cycle_at = cycle, now
    elif action == "archive":
        s.status = "archived"
    elif action == "notify" and decision.step and decision.step not in s.notified:
        s.notified.append(decision.step)
    return s
