"""The controller: every cycle, measure each active playbook, decide, act, tell people.

A cycle, per playbook: finish any step a crash interrupted; measure the experiment (skipped when
no new events arrived and the last measurement is recent: the incremental case); let the policy
decide; record the decision in the timeline before acting and mark it done after; enqueue
webhooks. ``Controller.start`` runs cycles on a thread inside ``liftkit serve`` (woken early when
new events are loaded); ``liftkit controller`` runs the same loop alone. A ``LeaderLock``
makes sure only one process acts at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from liftkit.automation import actions, measure, state
from liftkit.automation.evidence import Evidence
from liftkit.automation.lock import LeaderLock
from liftkit.automation.notify import Notifier
from liftkit.automation.rules import Decision, Situation, decide
from liftkit.registry.errors import RegistryError
from liftkit.registry.playbooks import Playbook

if TYPE_CHECKING:
    from liftkit.platform import Platform

log = logging.getLogger("liftkit.automation")
ACTOR_PREFIX = "automation:"
#: A measurement is reused while no new events arrived, but never for longer than this (events
#: stamped ahead of the server's clock are counted once their time has come).
REUSE_SECONDS = 30.0
#: Manual overrides (``Controller.override``).
COMMANDS = ("pause", "resume", "stage", "kill", "code-removed")


class OverrideError(ValueError):
    """A manual override that cannot be applied in the playbook's current state."""


def actor_of(playbook: str) -> str:
    return f"{ACTOR_PREFIX}{playbook}"


def _decision_json(decision: Decision) -> dict[str, Any]:
    out = asdict(decision)
    out["weights"] = list(decision.weights) if decision.weights is not None else None
    return out


def _decision_from(body: dict[str, Any]) -> Decision:
    weights = body.get("weights")
    return Decision(**{**body, "weights": tuple(weights) if weights is not None else None})


class Controller:
    def __init__(
        self,
        platform: Platform,
        *,
        notifier: Notifier | None = None,
        lock: LeaderLock | None = None,
        interval: float | None = None,
        watermark: Callable[[], object] | None = None,
    ) -> None:
        self.platform = platform
        self.registry = platform.registry
        self.engine = platform.engine
        self.notifier = notifier or Notifier(platform.engine)
        self.lock = lock or LeaderLock(platform.engine)
        self.interval = interval or platform.settings.controller_interval_seconds
        #: Changes whenever new events reached the store (None: always measure again).
        self.watermark = watermark
        self._seen: dict[str, tuple[object, float, Evidence, bool]] = {}
        self._mutex = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.cycles = 0
        self.last_error: str | None = None

    # -- one cycle -----------------------------------------------------------------------------

    def cycle(self) -> dict[str, Decision]:
        """One decision for every playbook that is not archived."""
        decisions = {}
        for playbook in self.registry.all("playbooks"):
            assert isinstance(playbook, Playbook)
            try:
                decisions[playbook.key] = self.step(playbook.key)
            except Exception as error:  # one broken playbook must not stop the others
                log.exception("automation: playbook %s failed", playbook.key)
                self.last_error = f"{playbook.key}: {type(error).__name__}: {error}"
        self.cycles += 1
        return decisions

    def step(self, key: str) -> Decision:
        """Measure, decide and act for one playbook."""
        with self._mutex:
            playbook = self.registry.get("playbooks", key)
            assert isinstance(playbook, Playbook)
            now = self.platform.clock()
            current = state.load(self.engine, key)
            for entry in state.undone(self.engine, key):
                current = self._finish(playbook, current, entry, now)
            if current.status == "archived":
                return Decision("hold", "archived", rule="finished")
            experiment = actions.experiment_of(self.registry, playbook)
            evidence = None
            if current.status in ("running", "warranty") and experiment is not None:
                evidence = self._evidence(playbook, current, experiment, now)
            decision = decide(Situation(playbook, current, now, experiment, evidence))
            self._execute(playbook, current, decision, evidence, now)
            return decision

    def _evidence(
        self, playbook: Playbook, current: state.State, experiment: Any, now: datetime
    ) -> Evidence:
        """This cycle's evidence; the last one again while nothing can have changed it.

        A measurement is reused only when no events were loaded since it *and* since the one
        before it: the window ends at the second the query runs, so events stamped in that
        second (or a little ahead, from a fast client clock) are counted by the measurement
        after the one a load triggered. And never for longer than ``REUSE_SECONDS``.
        """
        mark = self.watermark() if self.watermark is not None else None
        version = (mark, experiment.model_dump_json())
        seen = self._seen.get(playbook.key)
        clock = time.monotonic()
        if mark is not None and seen is not None:
            same, at, evidence, settled = seen
            if same == version and settled and clock - at < REUSE_SECONDS:
                return evidence
        evidence = measure.gather(self.platform, playbook, current, experiment, now)
        settled = seen is not None and seen[0] == version
        self._seen[playbook.key] = (version, clock, evidence, settled)
        return evidence

    def _execute(
        self,
        playbook: Playbook,
        current: state.State,
        decision: Decision,
        evidence: Evidence | None,
        now: datetime,
    ) -> None:
        key = playbook.key
        units = evidence.total_units if evidence and evidence.error is None else current.last_units
        numbers = {"evidence": evidence.numbers() if evidence else None}
        step = decision.step
        if not decision.acts or step is None:
            previous = state.last(self.engine, key)
            if previous is None or (previous.reason, previous.action) != (
                decision.reason,
                decision.action,
            ):
                state.record(
                    self.engine,
                    key,
                    at=now,
                    rule=decision.rule,
                    action=decision.action,
                    status="noted",
                    reason=decision.reason,
                    actor=actor_of(key),
                    numbers=numbers,
                )
            current = current.model_copy(update={"last_cycle_at": now, "last_units": units})
            state.save(self.engine, key, current, now)
            return
        if decision.action == "reweight" and evidence is not None:
            decision = replace(decision, numbers={**decision.numbers, "period": evidence.period})
        if playbook.dry_run:
            state.record(
                self.engine,
                key,
                at=now,
                rule=decision.rule,
                action=decision.action,
                status="dry-run",
                reason=f"(dry run) {decision.reason}",
                actor=actor_of(key),
                numbers=numbers,
                step=f"dry-run:{step}",
            )
            return
        entry = state.step(self.engine, key, step)
        if entry is None:
            entry = state.record(
                self.engine,
                key,
                at=now,
                rule=decision.rule,
                action=decision.action,
                status="decided",
                reason=decision.reason,
                actor=actor_of(key),
                numbers={**numbers, "decision": _decision_json(decision), "units": units},
                step=step,
            )
        if entry is None or entry.status != "decided":
            return  # done before (an outcome that only notifies, say): nothing to repeat
        self._finish(playbook, current, entry, now)

    def _finish(
        self, playbook: Playbook, current: state.State, entry: state.Entry, now: datetime
    ) -> state.State:
        """Carry out a decided step, move the state on and mark the step done, in that order."""
        body = (entry.numbers or {}).get("decision")
        if body is None:
            state.set_status(self.engine, entry.id, "failed")
            return current
        decision = _decision_from(body)
        actor = actor_of(playbook.key)
        try:
            actions.apply(self.registry, playbook, decision, now, actor)
        except (RegistryError, LookupError, ValueError) as error:
            state.finish(self.engine, playbook.key, current, entry.id, now, status="failed")
            state.record(
                self.engine,
                playbook.key,
                at=now,
                rule=decision.rule,
                action="hold",
                status="failed",
                reason=f"could not {decision.action}: {error}",
                actor=actor,
            )
            return current
        units = int((entry.numbers or {}).get("units") or current.last_units)
        after = actions.transition(current, decision, playbook, now, units)
        state.finish(self.engine, playbook.key, after, entry.id, now)
        if decision.action in ("pause", "notify"):
            self.registry.record(
                actor, f"playbook.{decision.action}", decision.reason, playbook=playbook.key
            )
        self._notify(playbook, decision, entry.step or entry.action, now)
        return after

    def _notify(self, playbook: Playbook, decision: Decision, step: str, now: datetime) -> None:
        if not playbook.notify:
            return
        event_id = f"{playbook.key}:{step}"
        event = {
            "id": event_id,
            "type": f"playbook.{decision.action}",
            "playbook": playbook.key,
            "experiment": playbook.experiment_key,
            "action": decision.action,
            "outcome": decision.outcome,
            "reason": decision.reason,
            "at": now.isoformat(),
            "dry_run": playbook.dry_run,
            "numbers": {"stage": decision.stage, "winner": decision.winner},
            "url": f"{self.platform.settings.base_url}/api/v1/playbooks/{playbook.key}/timeline",
        }
        self.notifier.enqueue(playbook.key, event_id, playbook.notify, event)

    # -- manual overrides ----------------------------------------------------------------------

    def override(
        self, key: str, command: str, actor: str, *, stage: int | None = None, reason: str = ""
    ) -> state.State:
        """Pause, resume, force a stage, kill (roll back now) or confirm the code is gone."""
        if command not in COMMANDS:
            raise OverrideError(f"command: one of {', '.join(COMMANDS)}")
        with self._mutex:
            playbook = self.registry.get("playbooks", key)
            assert isinstance(playbook, Playbook)
            now = self.platform.clock()
            current = state.load(self.engine, key)
            why = reason or f"{command} by {actor}"
            after = current.model_copy(deep=True)
            decision: Decision | None = None
            if command == "pause":
                if current.status in state.FINISHED:
                    raise OverrideError(f"the playbook is {current.status}; nothing to pause")
                decision = Decision("pause", why)
            elif command == "resume":
                if current.status != "paused":
                    raise OverrideError(f"the playbook is {current.status}, not paused")
                after.status = current.paused_from or "running"
                after.paused_reason, after.epoch = "", current.epoch + 1
            elif command == "stage":
                if stage is None or not 0 <= stage < len(playbook.stages):
                    raise OverrideError(f"stage: between 0 and {len(playbook.stages) - 1}")
                if current.status not in ("running", "paused"):
                    raise OverrideError(f"the playbook is {current.status}; start it first")
                decision = Decision("advance", why, stage=stage)
            elif command == "kill":
                if current.status == "archived":
                    raise OverrideError("the playbook is archived")
                decision = Decision("rollback", why, outcome="killed")
            else:
                after.code_removed = True
            if decision is not None:
                actions.apply(self.registry, playbook, decision, now, actor)
                after = actions.transition(current, decision, playbook, now, current.last_units)
                if command == "stage":
                    after.stage_started_at, after.epoch = now, current.epoch + 1
            state.save(self.engine, key, after, now)
            state.record(
                self.engine,
                key,
                at=now,
                rule="override",
                action=command,
                status="done",
                reason=why,
                actor=actor,
                numbers={"stage": stage},
            )
            self.registry.record(actor, f"playbook.{command}", why, playbook=key, stage=stage)
            if decision is not None:
                self._notify(playbook, decision, f"override-{command}-{now.timestamp():.0f}", now)
            return after

    # -- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="liftkit-controller", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run the next cycle now (new events arrived)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.lock.release()
        self.notifier.close()

    def run_once(self) -> dict[str, Decision] | None:
        """One cycle if this process is (or becomes) the leader, then due webhooks."""
        if not self.lock.acquire():
            return None
        decisions = self.cycle()
        try:
            self.notifier.deliver_due()
        except Exception:
            log.exception("automation: delivering webhooks failed")
        return decisions

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception as error:
                log.exception("automation: cycle failed")
                self.last_error = f"{type(error).__name__}: {error}"
            # Woken early by new events, but never more often than every 0.2 s.
            self._wake.wait(max(0.0, self.interval - (time.monotonic() - started)))
            self._wake.clear()
            self._stop.wait(0.2)
