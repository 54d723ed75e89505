"""The policy: an ordered list of small rule functions with one signature.

Each rule looks at a ``Situation`` (the playbook, its state, the experiment as the registry has
it, this cycle's evidence and the time) and returns a ``Decision`` with its reason, or None to
let the next rule speak. The first decision wins; when no rule speaks the playbook holds. Rules
are pure, so the fixture files in ``tests/fixtures/playbook_rules/`` pin each one down with
(situation, expected decision) pairs, and the A/A simulation drives them directly.

Order matters and reads like the runbook a careful person follows: finished or paused playbooks
only archive or wait; then the schedule; then anything that makes the data untrustworthy
(health) or the change harmful (guardrails) beats any good news; then the decision on the
primary metric; then the runtime limits; and only then the ramp and the bandit's reweighting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from liftkit import stats
from liftkit.automation.evidence import Evidence
from liftkit.automation.state import FINISHED, State
from liftkit.registry.experiments import Experiment
from liftkit.registry.playbooks import Playbook

Action = Literal[
    "hold",
    "start",
    "advance",
    "pause",
    "rollback",
    "promote",
    "notify",
    "reweight",
    "warranty-end",
    "archive",
]


@dataclass(frozen=True)
class Situation:
    playbook: Playbook
    state: State
    now: datetime
    experiment: Experiment | None = None
    evidence: Evidence | None = None


@dataclass(frozen=True)
class Decision:
    """What to do and why. ``step`` names an action once (its idempotency key); holds have none."""

    action: Action
    reason: str
    rule: str = ""
    step: str | None = None
    stage: int | None = None
    winner: str | None = None
    outcome: str | None = None
    weights: tuple[float, ...] | None = None
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def acts(self) -> bool:
        return self.action != "hold"


Rule = Callable[[Situation], Decision | None]
RULES: list[tuple[str, Rule]] = []


def rule(fn: Rule) -> Rule:
    """Register ``fn`` as the next rule of the policy."""
    RULES.append((fn.__name__, fn))
    return fn


def decide(situation: Situation) -> Decision:
    """The first rule's decision (with the rule's name), or hold."""
    for name, fn in RULES:
        found = fn(situation)
        if found is not None:
            return replace(found, rule=name)
    return Decision("hold", "nothing to do yet", rule="default")


# -- helpers -----------------------------------------------------------------------------------


def _days(since: datetime | None, now: datetime) -> float:
    return 0.0 if since is None else (now - since).total_seconds() / 86400


def _on_outcome(
    s: Situation, setting: str, outcome: str, reason: str, winner: str | None = None
) -> Decision | None:
    """The decision an outcome's configured action makes (promote, rollback, pause, notify).

    An outcome that only notifies does so once, then stays silent. The step name carries the
    state's epoch, which a resume raises, so a playbook paused by a
    health check, resumed, and failing again is paused again.
    """
    action: Action = setting  # type: ignore[assignment]
    step = f"{action}:{outcome}" + (f"#{s.state.epoch}" if s.state.epoch else "")
    if action == "notify" and step in s.state.notified:
        return None  # people were told; let later rules (runtime limits) speak
    return Decision(action, reason, step=step, winner=winner, outcome=outcome)


def _running(s: Situation) -> bool:
    return s.state.status == "running"


def _measured(s: Situation) -> Evidence | None:
    return s.evidence if s.evidence is not None and s.evidence.error is None else None


# -- the rules, in order -----------------------------------------------------------------------


@rule
def disabled(s: Situation) -> Decision | None:
    if not s.playbook.enabled and s.state.status not in FINISHED:
        return Decision("hold", "the playbook is disabled")
    return None


@rule
def archive(s: Situation) -> Decision | None:
    """After promotion or rollback, archive once the wait is over and the code is gone."""
    policy = s.playbook.archive
    if s.state.status not in ("promoted", "rolled-back") or policy is None:
        return None
    waited = _days(s.state.ended_at, s.now)
    if waited < policy.after_days:
        return Decision("hold", f"archiving in {policy.after_days - waited:.1f} days")
    if policy.require_code_removed and not s.state.code_removed:
        return Decision(
            "hold", "waiting for confirmation that the flag is gone from code before archiving"
        )
    return Decision(
        "archive", "the flag is gone from code: remove it from the payload", step="archive"
    )


@rule
def finished(s: Situation) -> Decision | None:
    if s.state.status in FINISHED:
        return Decision("hold", f"finished: {s.state.status}")
    return None


@rule
def warranty_end(s: Situation) -> Decision | None:
    """At the end of the warranty, triage the holdout comparison: positive, none or negative."""
    if s.state.status != "warranty":
        return None
    ends = s.state.warranty_ends_at
    if ends is None or s.now < ends:
        return Decision("hold", "warranty period running")
    ev = _measured(s)
    primary = ev.primary if ev else None
    winner = s.state.winner
    triage = "none"
    if primary is not None and primary.winner is not None:
        triage = "negative" if primary.control_wins else "positive"
    warranty = s.playbook.warranty
    rollback = triage == "negative" and warranty is not None and warranty.on_negative == "rollback"
    return Decision(
        "warranty-end",
        f"warranty over: the re-validation against the holdout is {triage}"
        + ("; rolling back" if rollback else f"; {winner} stays shipped"),
        step="warranty-end",
        winner=winner,
        outcome=triage,
        numbers={"rollback": rollback},
    )


@rule
def paused(s: Situation) -> Decision | None:
    if s.state.status == "paused":
        return Decision("hold", f"paused: {s.state.paused_reason}")
    return None


@rule
def schedule_start(s: Situation) -> Decision | None:
    if s.state.status != "pending":
        return None
    start = s.playbook.start_at
    if start is not None and s.now < start:
        return Decision("hold", f"starts at {start.isoformat()}")
    first = s.playbook.stages[0].coverage
    return Decision("start", f"starting at {first:.0%} coverage", step="start", stage=0)


@rule
def health(s: Situation) -> Decision | None:
    ev = _measured(s)
    if not _running(s) or ev is None:
        return None
    policy = s.playbook.health
    problems = []
    if policy.srm and ev.srm_p_value is not None and ev.srm_p_value < policy.srm_p_value:
        problems.append(f"sample ratio mismatch (p = {ev.srm_p_value:.2g}, units {list(ev.units)})")
    if ev.multiple_share > policy.max_multiple_exposure_share:
        problems.append(f"{ev.multiple_share:.1%} of units saw several variations")
    if not problems:
        return None
    return _on_outcome(s, s.playbook.actions.health, "health", "halted: " + "; ".join(problems))


@rule
def guardrails(s: Situation) -> Decision | None:
    ev = _measured(s)
    if not _running(s) or ev is None:
        return None
    breached = [g for g in ev.guardrails if g.breached]
    if not breached:
        return None
    what = "; ".join(
        f"{g.metric} {g.effect:+.1%} in {g.variation} (p = {g.upper_harm_p:.2g})"
        for g in breached
        if g.effect is not None and g.upper_harm_p is not None
    )
    return _on_outcome(s, s.playbook.actions.guardrail, "guardrail", f"guardrail breached: {what}")


def _final_stage(s: Situation) -> bool:
    return s.state.stage >= len(s.playbook.stages) - 1


def _guardrails_pass(s: Situation, ev: Evidence) -> bool:
    """Every guardrail measured and shown non-inferior (an unmeasured one has not passed)."""
    measured = {g.metric for g in ev.guardrails}
    wanted = {g.metric for g in s.playbook.guardrails}
    return wanted <= measured and all(g.passed for g in ev.guardrails)


@rule
def stop_date(s: Situation) -> Decision | None:
    stop = s.playbook.stop_at
    if not _running(s) or stop is None or s.now < stop:
        return None
    return _conclude(s, "the scheduled stop date has come", final=True)


@rule
def primary(s: Situation) -> Decision | None:
    """After the minimum runtime at full ramp, act on a clear result of the primary metric."""
    if not _running(s) or s.playbook.type == "rollout" or not _final_stage(s):
        return None
    days = _days(s.state.started_at, s.now)
    if days < s.playbook.min_runtime or days >= s.playbook.max_runtime_days:
        return None  # too early, or past the maximum runtime (its own rule concludes)
    return _conclude(s, "", final=False)


@rule
def max_runtime(s: Situation) -> Decision | None:
    if not _running(s) or _days(s.state.started_at, s.now) < s.playbook.max_runtime_days:
        return None
    return _conclude(
        s, f"the maximum runtime ({s.playbook.max_runtime_days:g} days) is over", final=True
    )


def _conclude(s: Situation, why: str, *, final: bool) -> Decision | None:
    """Promote a winner, roll back a loser, or (when ``final``) act on an inconclusive end."""
    ev = _measured(s)
    actions = s.playbook.actions
    p = ev.primary if ev else None
    prefix = f"{why}: " if why else ""
    if ev is not None and p is not None and p.winner is not None:
        if p.control_wins:
            return _on_outcome(
                s,
                actions.lose,
                "lost",
                f"{prefix}every variation lost on {p.metric}",
                winner=p.winner,
            )
        if not s.playbook.require_non_inferior or _guardrails_pass(s, ev):
            effect = p.effects.get(p.winner)
            shown = f" ({effect:+.1%})" if effect is not None else ""
            return _on_outcome(
                s,
                actions.win,
                "won",
                f"{prefix}{p.winner} won on {p.metric}{shown}",
                winner=p.winner,
            )
        if not final:
            return Decision("hold", f"{p.winner} is winning; waiting for guardrails to pass")
    if not final:
        return None
    winner = _treatment(s)
    if (
        s.playbook.type == "rollout"
        and ev is not None
        and not any(g.breached for g in ev.guardrails)
    ) and (not s.playbook.require_non_inferior or _guardrails_pass(s, ev)):
        return _on_outcome(s, actions.win, "won", f"{prefix}no guardrail failed", winner=winner)
    return _on_outcome(
        s,
        actions.inconclusive,
        "inconclusive",
        f"{prefix}no clear result",
        winner=winner if actions.inconclusive == "promote" else None,
    )


def _treatment(s: Situation) -> str | None:
    if s.experiment is None or len(s.experiment.variations) < 2:
        return None
    return s.experiment.variations[1].key


@rule
def rollout_complete(s: Situation) -> Decision | None:
    """A rollout that has held its last stage long enough ships when no guardrail failed."""
    if not _running(s) or s.playbook.type != "rollout" or not _final_stage(s):
        return None
    if not _stage_done(s)[0]:
        return None
    ev = _measured(s)
    if ev is None:
        return Decision("hold", "last stage done, waiting for a measurement")
    if s.playbook.require_non_inferior and not _guardrails_pass(s, ev):
        return Decision("hold", "last stage done; waiting for every guardrail to pass")
    return _on_outcome(
        s,
        s.playbook.actions.win,
        "won",
        "last stage held with no guardrail failing",
        winner=_treatment(s),
    )


def _stage_done(s: Situation) -> tuple[bool, str]:
    stage = s.playbook.stages[s.state.stage]
    hours = _days(s.state.stage_started_at, s.now) * 24
    if hours < stage.min_hours:
        return False, f"stage {s.state.stage + 1} needs {stage.min_hours - hours:.1f} more hours"
    if stage.min_units:
        ev = _measured(s)
        seen = (ev.total_units if ev else 0) - s.state.stage_units_at_start
        if seen < stage.min_units:
            return False, f"stage {s.state.stage + 1} has {seen} of {stage.min_units} units"
    return True, ""


@rule
def ramp(s: Situation) -> Decision | None:
    if not _running(s) or _final_stage(s):
        return None
    done, why = _stage_done(s)
    if not done:
        return Decision("hold", why)
    nxt = s.state.stage + 1
    coverage = s.playbook.stages[nxt].coverage
    return Decision(
        "advance", f"stage {nxt + 1}: coverage {coverage:.0%}", step=f"stage-{nxt}", stage=nxt
    )


@rule
def reweight(s: Situation) -> Decision | None:
    bandit = s.playbook.bandit
    if not _running(s) or s.playbook.type != "bandit" or bandit is None:
        return None
    since = s.state.bandit_cycle_at or s.state.started_at
    if since is not None and s.now - since < timedelta(hours=bandit.cycle_hours):
        return None
    ev = _measured(s)
    if ev is None or ev.posterior is None:
        return None
    cycle = s.state.bandit_cycle + 1
    means, variances = ev.posterior
    # Seeded by the cycle, so a repeated cycle computes the same weights.
    weights = stats.thompson_weights(
        means, variances, min_share=bandit.min_share, inverse=ev.primary_inverse, seed=cycle
    )
    shown = ", ".join(f"{v} {w:.0%}" for v, w in zip(ev.variations, weights, strict=True))
    return Decision(
        "reweight",
        f"bandit cycle {cycle}: {shown}",
        step=f"bandit-{cycle}",
        weights=tuple(float(w) for w in weights),
        numbers={"cycle": cycle},
    )
