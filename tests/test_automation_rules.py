"""The playbook policy, pinned down by (situation, expected decision) fixture files.

Every rule in ``liftkit.automation.rules.RULES`` has a file
``tests/fixtures/playbook_rules/<rule>.yaml``: a list of situations (playbook, state, time,
experiment, evidence) and the decision the *whole ordered policy* makes in each. Each file holds
cases where its rule decides and edge cases where it stays silent and a later rule (or the
default hold) speaks, so the files pin both what each rule does and where it sits in the order:
swapping two rules that can both speak makes some fixture fail (tested below).

Fixture format (the loader fills the noise so a case shows only what matters):

* ``playbook``: a Playbook body; ``key`` defaults to ``pb``, and ``experiment`` to ``checkout``
  (rollouts get ``feature: checkout`` and ``value: true``).
* ``state``: a State body. ``now``: the time of the cycle.
* ``experiment``: optional Experiment body (``key`` defaults to ``checkout``).
* ``evidence``: optional Evidence fields; omitted fields get a healthy two-arm default, nested
  ``guardrails``/``primary`` become ``GuardrailVerdict``/``PrimaryVerdict`` (guardrail verdicts
  default to an unbreached, not yet passed ``treatment`` row).
* ``expect``: the Decision fields to compare (only those given; ``numbers`` compares the given
  keys, ``weights`` approximately) and optionally ``reason_contains``.
* ``xfail``: a known defect of the policy: the case states the intended decision, and the test
  is a strict xfail so fixing the defect makes it fail until the marker is removed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from liftkit.automation import rules
from liftkit.automation.evidence import Evidence, GuardrailVerdict, PrimaryVerdict
from liftkit.automation.measure import evidence_from
from liftkit.automation.rules import RULES, Decision, Situation, decide
from liftkit.automation.state import State
from liftkit.registry.experiments import Experiment
from liftkit.registry.playbooks import Playbook
from liftkit.stats import ProportionStats

FIXTURES = Path(__file__).parent / "fixtures" / "playbook_rules"

CASE_KEYS = {"name", "playbook", "state", "now", "experiment", "evidence", "expect", "xfail"}
DECISION_FIELDS = {f.name for f in fields(Decision)}
EXPECT_KEYS = DECISION_FIELDS | {"reason_contains"}

EVIDENCE_DEFAULTS: dict[str, Any] = {
    "variations": ("control", "treatment"),
    "units": (5000, 5000),
    "weights": (0.5, 0.5),
    "srm_p_value": 0.5,
    "multiple_share": 0.0,
}
GUARDRAIL_DEFAULTS: dict[str, Any] = {
    "variation": "treatment",
    "effect": None,
    "upper_harm_p": None,
    "ci_low": None,
    "margin": 0.02,
    "breached": False,
    "passed": False,
}
PRIMARY_DEFAULTS: dict[str, Any] = {"winner": None, "control_wins": False}


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    situation: Situation
    expect: dict[str, Any]
    xfail: str | None

    @property
    def id(self) -> str:
        return f"{self.file}:{self.name}"


# -- building situations from the YAML bodies ---------------------------------------------------


def build_playbook(body: dict[str, Any]) -> Playbook:
    body = {"key": "pb", **body}
    if body.get("type") == "rollout":
        body.setdefault("feature", "checkout")
        body.setdefault("value", True)
    else:
        body.setdefault("experiment", "checkout")
    return Playbook.model_validate(body)


def _pair(value: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    means, variances = value
    return tuple(float(m) for m in means), tuple(float(v) for v in variances)


def build_evidence(body: dict[str, Any]) -> Evidence:
    """An ``Evidence`` from a fixture body, nested verdicts included."""
    values = {**EVIDENCE_DEFAULTS, **body}
    for key in ("variations", "units", "weights"):
        values[key] = tuple(values[key])
    values["guardrails"] = tuple(
        GuardrailVerdict(**{**GUARDRAIL_DEFAULTS, **g}) for g in values.get("guardrails", ())
    )
    if values.get("primary") is not None:
        values["primary"] = PrimaryVerdict(**{**PRIMARY_DEFAULTS, **values["primary"]})
    if values.get("posterior") is not None:
        values["posterior"] = _pair(values["posterior"])
    if values.get("period") is not None:
        values["period"] = tuple(list(x) for x in values["period"])
    return Evidence(**values)


def build_case(file: str, body: dict[str, Any]) -> Case:
    unknown = set(body) - CASE_KEYS
    assert not unknown, f"{file}: {body.get('name')!r} has unknown keys {sorted(unknown)}"
    expect = dict(body["expect"])
    unknown = set(expect) - EXPECT_KEYS
    assert not unknown, f"{file}: {body['name']!r} expects unknown fields {sorted(unknown)}"
    now = body["now"]
    assert isinstance(now, datetime) and now.tzinfo is not None, f"{file}: naive or bad `now`"
    experiment = body.get("experiment")
    evidence = body.get("evidence")
    situation = Situation(
        playbook=build_playbook(body.get("playbook") or {}),
        state=State.model_validate(body.get("state") or {}),
        now=now,
        experiment=(
            None
            if experiment is None
            else Experiment.model_validate({"key": "checkout", **experiment})
        ),
        evidence=None if evidence is None else build_evidence(evidence),
    )
    return Case(file, body["name"], situation, expect, body.get("xfail"))


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        bodies = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(bodies, list) and bodies, f"{path.name}: expected a list of cases"
        names = [b["name"] for b in bodies]
        assert len(names) == len(set(names)), f"{path.name}: case names must be unique"
        cases += [build_case(path.stem, b) for b in bodies]
    return cases


CASES = load_cases()


# -- comparing ---------------------------------------------------------------------------------


def mismatches(decision: Decision, case: Case) -> list[str]:
    """What differs between ``decision`` and the case's expectation (empty: it matches)."""
    wrong = []
    for key, want in case.expect.items():
        if key == "reason_contains":
            if want not in decision.reason:
                wrong.append(f"reason {decision.reason!r} lacks {want!r}")
            continue
        got = getattr(decision, key)
        if key == "numbers":
            got = {k: got.get(k) for k in want}
            same = got == want
        elif key == "weights" and want is not None and got is not None:
            same = got == pytest.approx(tuple(want), abs=1e-9)
        else:
            same = got == want
        if not same:
            wrong.append(f"{key}: got {got!r}, want {want!r}")
    return wrong


def check_invariants(decision: Decision, situation: Situation) -> None:
    """Properties every decision must have, whatever the case expects."""
    if decision.action == "hold":
        assert decision.step is None, "holds have no step"
    else:
        assert decision.step, "every action has a step (its idempotency key)"
    if decision.action == "reweight":
        assert situation.evidence is not None and situation.playbook.bandit is not None
        weights = decision.weights
        assert weights is not None
        assert len(weights) == len(situation.evidence.variations)
        assert math.isclose(sum(weights), 1.0, abs_tol=1e-9)
        assert min(weights) >= situation.playbook.bandit.min_share - 1e-12


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_fixture_decision(case: Case) -> None:
    """The ordered policy makes the decision the fixture states."""
    decision = decide(case.situation)
    check_invariants(decision, case.situation)
    wrong = mismatches(decision, case)
    assert not wrong, f"{case.id}: {decision}\n" + "\n".join(wrong)


def test_every_rule_has_a_fixture_file_deciding_by_itself() -> None:
    """No rule goes untested: each has a file, and a (non-xfail) case it decides itself."""
    names = [name for name, _ in RULES]
    files = {p.stem for p in FIXTURES.glob("*.yaml")}
    assert set(names) <= files, f"rules without fixtures: {sorted(set(names) - files)}"
    assert files <= set(names), f"fixtures for no rule: {sorted(files - set(names))}"
    for name in names:
        own = [c for c in CASES if c.file == name and not c.xfail]
        decided_here = [c for c in own if c.expect.get("rule") == name]
        elsewhere = [c for c in own if c.expect.get("rule") not in (None, name)]
        assert decided_here, f"{name}.yaml has no case decided by {name}"
        assert elsewhere, f"{name}.yaml has no edge case where {name} stays silent"
        assert all("rule" in c.expect for c in own), f"{name}.yaml: every case names its rule"


def _failing_cases() -> list[str]:
    return [c.id for c in CASES if not c.xfail and mismatches(decide(c.situation), c)]


def _swapped(first: str, second: str) -> list[tuple[str, rules.Rule]]:
    order = list(RULES)
    names = [name for name, _ in order]
    i, j = names.index(first), names.index(second)
    order[i], order[j] = order[j], order[i]
    return order


def test_a_broken_rule_order_fails_the_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ramping before the guardrails would advance a harmful change: the fixtures notice."""
    assert not _failing_cases()
    monkeypatch.setattr(rules, "RULES", _swapped("guardrails", "ramp"))
    failing = _failing_cases()
    assert "guardrails:breach while ramping rolls back instead of advancing" in failing


# Adjacent rules that can never both speak (their status or time conditions exclude each other), so
# their relative order cannot matter and no fixture can pin it.
EXCLUSIVE = {
    ("disabled", "archive"),  # disabled: not finished; archive: promoted or rolled back
    ("finished", "warranty_end"),
    ("warranty_end", "paused"),
    ("paused", "schedule_start"),
    ("schedule_start", "health"),  # pending vs running
    ("rollout_complete", "ramp"),  # final stage vs not
    ("primary", "max_runtime"),  # before vs from the maximum runtime
}
ADJACENT = [(a, b) for (a, _), (b, _) in itertools.pairwise(RULES)]


@pytest.mark.parametrize(
    ("first", "second"),
    [pair for pair in ADJACENT if pair not in EXCLUSIVE],
    ids=[f"{a}<->{b}" for a, b in ADJACENT if (a, b) not in EXCLUSIVE],
)
def test_every_meaningful_adjacent_swap_is_caught(
    monkeypatch: pytest.MonkeyPatch, first: str, second: str
) -> None:
    """Wherever two neighbouring rules can both speak, the fixtures pin which one goes first."""
    monkeypatch.setattr(rules, "RULES", _swapped(first, second))
    assert _failing_cases(), f"swapping {first} and {second} went unnoticed"


def test_exclusive_pairs_are_adjacent_rules() -> None:
    """The exclusions above stay in step with the policy's order."""
    assert set(ADJACENT) >= EXCLUSIVE


@pytest.mark.parametrize("method", ["sequential", "bayesian"])
@pytest.mark.parametrize(
    ("rates", "action", "winner"),
    [((0.20, 0.23), "promote", "treatment"), ((0.23, 0.20), "rollback", "control")],
)
def test_real_primary_verdicts_drive_the_primary_rule(
    method: str, rates: tuple[float, float], action: str, winner: str
) -> None:
    """The fixtures' hand-written verdicts have the shape ``evidence_from`` really produces."""
    playbook = build_playbook({"decision": {"method": method}, "expected_units": 20_000})
    arms = [ProportionStats(n=10_000.0, sum=10_000.0 * rate) for rate in rates]
    evidence = evidence_from(
        playbook,
        State(),
        ("control", "treatment"),
        (0.5, 0.5),
        [SimpleNamespace(key="purchase", inverse=False, role="primary")],
        [arms],
        (10_000, 10_000),
        0,
    )
    start = datetime(2026, 6, 1, tzinfo=UTC)
    state = State(status="running", started_at=start, stage_started_at=start)
    situation = Situation(playbook, state, datetime(2026, 6, 9, tzinfo=UTC), evidence=evidence)
    decision = decide(situation)
    assert (decision.rule, decision.action, decision.winner) == ("primary", action, winner)
