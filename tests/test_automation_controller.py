"""The controller in-process on each registry backend, over a real DuckDB event store.

A ``World`` holds a platform with a clock the test moves, and writes simulated exposures and
events into the store; the controller measures them with the analysis engine's SQL. Each test
walks a playbook through its life and checks the registry (what SDKs are served), the timeline
and the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from automation_support import ACTOR, World
from liftkit.automation import Controller, OverrideError, actions
from liftkit.automation import state as st
from liftkit.automation.lock import LeaderLock
from liftkit.automation.notify import Notifier, verify
from liftkit.registry.payload import compile_payload

GUARDED = {
    "key": "ramp",
    "experiment": "checkout",
    "stages": [
        {"coverage": 0.1, "min_hours": 1},
        {"coverage": 0.5, "min_hours": 1, "min_units": 300},
        {"coverage": 1.0, "min_hours": 1},
    ],
    "guardrails": [{"metric": "error-rate"}],
    "min_runtime_days": 0.1,
    "expected_units": 4000,
}


@pytest.fixture
def world(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[World]:
    playbook = getattr(request, "param", GUARDED)
    w = World.build(tmp_path, database_url, playbook)
    yield w
    w.close()


def served(w: World, user: str = "u1") -> Any:
    """What the production payload's rule for ``checkout`` does (force value or experiment)."""
    payload = compile_payload(
        w.platform.registry.snapshot(), environment="production", now=w.clock.now
    ).payload
    rules = payload["features"].get("checkout", {}).get("rules", [])
    return rules[0] if rules else None


def steps(w: World, key: str = "ramp") -> list[tuple[str, str]]:
    return [(e.action, e.status) for e in reversed(st.timeline(w.platform.engine, key)) if e.step]


def test_ramps_then_rolls_back_on_a_guardrail_breach(world: World) -> None:
    ctl = world.controller
    assert ctl.step("ramp").action == "start"
    assert world.experiment().status == "running"
    assert served(world)["coverage"] == pytest.approx(0.1)
    assert ctl.step("ramp").reason.startswith("stage 1 needs")  # minimum duration
    world.clock.advance(hours=1.5)
    world.traffic(200)
    assert ctl.step("ramp").action == "advance"
    assert served(world)["coverage"] == pytest.approx(0.5)
    world.clock.advance(hours=1.5)
    world.traffic(100)
    held = ctl.step("ramp")  # an hour passed but only 100 of 300 new units
    assert held.action == "hold" and "100 of 300 units" in held.reason
    world.traffic(2500, errors=(0.05, 0.15))
    decision = ctl.step("ramp")
    assert (decision.action, decision.rule, decision.outcome) == (
        "rollback",
        "guardrails",
        "guardrail",
    )
    experiment = world.experiment()
    assert (experiment.status, experiment.result, experiment.released_variation) == (
        "stopped", "lost", "control",
    )  # fmt: skip
    assert served(world) == {"id": "production-1", "force": 0}
    audit = world.platform.registry.audit(collection_name="experiments", key="checkout", limit=1)
    assert audit[0].actor == "automation:ramp" and "guardrail breached" in audit[0].message
    assert steps(world) == [("start", "done"), ("advance", "done"), ("rollback", "done")]
    rollback = st.step(world.platform.engine, "ramp", "rollback:guardrail")
    assert rollback is not None and rollback.numbers is not None
    (verdict,) = rollback.numbers["evidence"]["guardrails"]
    assert verdict["breached"] and verdict["effect"] > 0.5  # the numbers behind the decision
    assert ctl.step("ramp").action == "hold"  # finished: nothing repeats


class Crash(BaseException):
    """A process dying mid-step (not an Exception: nothing may catch it)."""


@pytest.mark.parametrize("where", ["before-apply", "after-apply"])
def test_a_crash_between_decision_and_action_repeats_nothing(
    world: World, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctl = world.controller
    ctl.step("ramp")
    world.clock.advance(hours=1.5)
    world.traffic(200)
    target = (actions, "apply") if where == "before-apply" else (st, "finish")
    original = getattr(*target)
    monkeypatch.setattr(*target, lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        ctl.step("ramp")
    monkeypatch.setattr(*target, original)
    assert [s for s in steps(world) if s[0] == "advance"] == [("advance", "decided")]
    world.clock.advance(minutes=1)
    ctl.step("ramp")  # finishes the decided step first, then decides anew (hold)
    assert steps(world) == [("start", "done"), ("advance", "done")]
    revisions = world.platform.registry.revisions("experiments", "checkout")
    widened = [
        r
        for r in revisions
        if r.body and r.body["phases"][-1:] and r.body["phases"][-1]["coverage"] == 0.5
    ]
    assert len(widened) == 1
    assert st.load(world.platform.engine, "ramp").stage == 1


def test_manual_overrides(world: World) -> None:
    ctl = world.controller
    ctl.step("ramp")
    ctl.override("ramp", "pause", ACTOR, reason="launch freeze")
    world.clock.advance(hours=2)
    world.traffic(400)
    assert ctl.step("ramp").reason == "paused: launch freeze"
    assert served(world)["coverage"] == pytest.approx(0.1)
    with pytest.raises(OverrideError, match="not paused"):
        ctl.override("ramp", "resume", ACTOR)  # fine the first time...
        ctl.override("ramp", "resume", ACTOR)  # ...not the second
    ctl.override("ramp", "stage", ACTOR, stage=2)
    assert served(world)["coverage"] == pytest.approx(1.0)
    with pytest.raises(OverrideError, match="stage: between 0 and 2"):
        ctl.override("ramp", "stage", ACTOR, stage=7)
    ctl.override("ramp", "kill", ACTOR, reason="pager went off")
    assert served(world)["force"] == 0
    assert st.load(world.platform.engine, "ramp").status == "rolled-back"
    audit = world.platform.registry.audit(collection_name="experiments", key="checkout", limit=1)
    assert audit[0].actor == ACTOR and audit[0].message.endswith("pager went off")
    overrides = [e.action for e in st.timeline(world.platform.engine, "ramp") if e.actor == ACTOR]
    assert overrides == ["kill", "stage", "resume", "pause"]


@pytest.mark.parametrize("world", [{**GUARDED, "dry_run": True}], indirect=True)
def test_dry_run_records_what_it_would_do_and_changes_nothing(world: World) -> None:
    for _ in range(3):
        assert world.controller.step("ramp").action == "start"
    assert world.experiment().status == "draft" and served(world) is None
    entries = st.timeline(world.platform.engine, "ramp")
    assert [(e.status, e.reason) for e in entries] == [
        ("dry-run", "(dry run) starting at 10% coverage")
    ]


PROMOTE = {
    "key": "ramp",
    "experiment": "checkout",
    "stages": [{"coverage": 1.0, "min_hours": 0}],
    "min_runtime_days": 0.5,
    "expected_units": 4000,
    "warranty": {"days": 7, "owner": "dana", "holdout": 0.1},
    "archive": {"after_days": 2},
}


@pytest.mark.parametrize("world", [PROMOTE], indirect=True)
def test_promotes_a_winner_through_a_warranty_then_archives(world: World) -> None:
    ctl = world.controller
    ctl.step("ramp")
    world.clock.advance(hours=6)
    world.traffic(3000, rates=(0.10, 0.25), hours=5)
    assert ctl.step("ramp").reason.startswith("nothing")  # minimum runtime (12 h) not reached
    world.clock.advance(hours=7)
    decision = ctl.step("ramp")
    assert (decision.action, decision.winner) == ("promote", "treatment")
    experiment = world.experiment()
    assert experiment.status == "running" and experiment.phases[-1].name == "warranty"
    assert experiment.weights() == pytest.approx([0.1, 0.9])
    state = st.load(world.platform.engine, "ramp")
    assert state.status == "warranty" and state.warranty_ends_at is not None
    world.clock.advance(days=7.1)
    world.traffic(8000, rates=(0.10, 0.25), shares=(0.1, 0.9), hours=24 * 7)
    end = ctl.step("ramp")
    assert (end.action, end.outcome) == ("warranty-end", "positive")
    experiment = world.experiment()
    assert (experiment.status, experiment.result, experiment.released_variation) == (
        "stopped", "won", "treatment",
    )  # fmt: skip
    assert served(world)["force"] == 1
    world.clock.advance(days=3)
    assert "gone from code" in ctl.step("ramp").reason
    ctl.override("ramp", "code-removed", ACTOR)
    assert ctl.step("ramp").action == "archive"
    assert world.experiment().archived
    assert world.platform.registry.get("features", "checkout").archived  # type: ignore[attr-defined]
    assert served(world) is None


BANDIT = {
    "key": "ramp",
    "type": "bandit",
    "experiment": "checkout",
    "bandit": {"cycle_hours": 6, "min_share": 0.1},
    "min_runtime_days": 30,
    "expected_units": 20000,
}


def test_a_bandit_moves_weights_at_cycle_boundaries(tmp_path: Path, database_url: str) -> None:
    w = World.build(tmp_path, database_url, BANDIT, variations=3)
    try:
        ctl = w.controller
        ctl.step("ramp")
        w.clock.advance(hours=3)
        w.traffic(1500, rates=(0.1, 0.1, 0.3), errors=(0, 0, 0), hours=2)
        assert ctl.step("ramp").action == "hold"  # not a cycle boundary yet
        w.clock.advance(hours=3.5)
        decision = ctl.step("ramp")
        assert decision.action == "reweight" and decision.weights is not None
        weights = w.experiment().weights()
        assert weights == pytest.approx(list(decision.weights))
        assert weights[2] > 0.6 and min(weights) >= 0.1 - 1e-9
        assert [p.name for p in w.experiment().phases] == ["ramp", "bandit cycle 1"]
        state = st.load(w.platform.engine, "ramp")
        assert state.bandit_cycle == 1 and len(state.bandit_periods) == 1
        assert sum(state.bandit_periods[0][0]) == 1500  # the closed phase's units, per arm
    finally:
        w.close()


ROLLOUT = {
    "key": "new-price",
    "type": "rollout",
    "feature": "checkout",
    "value": 42,
    "stages": [{"coverage": 0.2, "min_hours": 1}, {"coverage": 1.0, "min_hours": 1}],
    "guardrails": [{"metric": "error-rate"}],
}


@pytest.mark.parametrize("world", [ROLLOUT], indirect=True)
def test_a_rollout_creates_its_experiment_and_ships(world: World) -> None:
    ctl = world.controller
    ctl.step("new-price")
    experiment = world.platform.registry.get("experiments", "new-price")
    assert [v.payload for v in experiment.variations] == [0, 42]  # type: ignore[attr-defined]
    feature = world.platform.registry.get("features", "checkout")
    rules = feature.environments["production"].rules  # type: ignore[attr-defined]
    assert rules[0].experiment == "new-price" and rules[0].id == "playbook-new-price"
    for _ in range(2):
        world.clock.advance(hours=1.5)
        world.traffic(400, experiment="new-price")
        ctl.step("new-price")
    assert st.load(world.platform.engine, "new-price").status == "promoted"
    assert served(world) == {"id": "playbook-new-price", "force": 42}


def test_webhooks_are_signed_and_sent(tmp_path: Path, database_url: str) -> None:
    playbook = {**GUARDED, "notify": [{"url": "https://hooks.example.com/x", "secret": "s3"}]}
    w = World.build(tmp_path, database_url, playbook)
    received: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    ctl = Controller(
        w.platform, notifier=Notifier(w.platform.engine, transport=httpx.MockTransport(handler))
    )
    try:
        ctl.run_once()
        ctl.notifier.deliver_due()
        (request,) = received
        headers = request.headers
        assert verify(
            "s3", headers["X-Liftkit-Timestamp"], request.content, headers["X-Liftkit-Signature"]
        )
        assert b'"action":"start"' in request.content
    finally:
        ctl.stop()
        w.close()


def test_only_the_leader_acts(world: World) -> None:
    other = Controller(world.platform, lock=LeaderLock(world.platform.engine, lease_seconds=60))
    try:
        assert world.controller.run_once() is not None
        assert other.run_once() is None
        assert steps(world) == [("start", "done")]
    finally:
        other.stop()
