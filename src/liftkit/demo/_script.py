"""The story's machinery: steps scheduled at "days ago", run in time order on the demo's clock.

``Story`` also holds the helpers each storyline uses to act like the people in it: save an object
as someone, start or stop an experiment the way its page does, simulate traffic through the SDK,
analyse, and run one controller cycle for a playbook.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from liftkit.analysis import Snapshot, run
from liftkit.automation import Controller
from liftkit.automation import state as playbook_state
from liftkit.demo._traffic import Arm, SimulatedTraffic, Visitors
from liftkit.demo._world import DemoClock, everywhere
from liftkit.events import LoadResult
from liftkit.knowledge.base import KnowledgeBase
from liftkit.platform import Platform
from liftkit.registry.experiments import Experiment, ExperimentResult

CHECKOUT_METRICS = {"primary": ["purchase"], "secondary": ["revenue"], "guardrails": ["refunds"]}


@dataclass
class Story:
    platform: Platform
    clock: DemoClock
    users: int
    rng: random.Random = field(default_factory=lambda: random.Random(2026))
    exposures: int = 0
    events: int = 0
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    steps: list[tuple[float, Callable[[], object]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kb = KnowledgeBase(self.platform)
        self.controller = Controller(self.platform)

    # -- the machinery ---------------------------------------------------------------------------

    def on(self, days_ago: float, step: Callable[[], object]) -> None:
        self.steps.append((days_ago, step))

    def run(self) -> None:
        for days_ago, step in sorted(self.steps, key=lambda s: -s[0]):  # stable for ties
            self.clock.at(days_ago)
            step()

    def close(self) -> None:
        self.controller.notifier.close()
        self.controller.lock.release()

    def save(self, name: str, body: dict[str, Any], who: str, message: str) -> None:
        self.platform.registry.save(name, body, who, message=message)

    def experiment(self, key: str) -> Experiment:
        found = self.platform.registry.get("experiments", key)
        assert isinstance(found, Experiment)
        return found

    def start(self, key: str, who: str) -> None:
        """Start a draft experiment now, as the experiment page's Start button does."""
        now = self.clock()
        phase = {"name": "main", "started_at": now.isoformat()}
        body = self.experiment(key).model_dump(mode="json")
        self.save("experiments", {**body, "status": "running", "phases": [phase]}, who, "started")

    def stop(self, key: str, who: str, result: ExperimentResult, release: str, why: str) -> None:
        experiment = self.experiment(key)
        phases = [p.model_dump(mode="json") for p in experiment.phases]
        phases[-1]["ended_at"] = self.clock().isoformat()
        body = experiment.model_dump(mode="json")
        body.update(status="stopped", result=result, released_variation=release, phases=phases)
        self.save("experiments", body, who, why)

    def analyse(self, key: str, who: str) -> Snapshot:
        snapshot = run(self.platform, key, actor=who)
        self.snapshots[key] = snapshot
        return snapshot

    def simulate(
        self, visitors: Visitors, feature: str, arms: dict[str, Arm], days: float,
        *, exposed: int | None = None, count: int | None = None,
    ) -> None:  # fmt: skip
        """Visitors seen over the next ``days`` days, assigned by the payload as it is now."""
        start = self.clock()
        traffic = SimulatedTraffic(start + timedelta(days=days), self.rng, start=start)
        visitors.visit(self.platform, traffic, feature, arms, visitors=count, exposed=exposed)
        self.stored(traffic.store(self.platform.settings))

    def stored(self, loaded: LoadResult) -> None:
        self.exposures += loaded.exposures
        self.events += loaded.events

    def brief(self, body: dict[str, Any], who: str) -> None:
        self.save("briefs", body, who, "brief written")

    def playbook_step(self, key: str) -> str:
        """One controller cycle for one playbook; returns the playbook's status after it."""
        self.controller.step(key)
        return playbook_state.load(self.platform.engine, key).status


def experiment_flag(
    key: str, experiment: str, owner: str, *, project: str = "checkout", **fields: Any
) -> dict[str, Any]:  # fmt: skip
    """An experiment-kind flag whose production rule runs ``experiment``."""
    rule = {"type": "experiment", "experiment": experiment}
    return {"key": key, "kind": "experiment", "project": project, "owner": owner,
            "environments": everywhere(True, rule), **fields}  # fmt: skip
