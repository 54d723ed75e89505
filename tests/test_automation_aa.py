"""No false rollbacks in A/A: the real guardrail policy, run on many simulated A/A rollouts.

The promise a rollout playbook makes is that looking at the guardrails every cycle does not
roll back a harmless change more often than ``decision.alpha``. This simulation checks it end to
end with the production code path: per-arm cumulative sufficient statistics at every look go
through ``measure.evidence_from`` (sequential one-sided guardrail tests, Holm across
guardrails) and the ordered policy ``rules.decide``; the state moves with ``actions.transition``
exactly as the controller would move it (start, ramp 10% → 50% → 100%, ship at the end).

Three checks, all seeded and deterministic:

* A/A: the share of rollouts with any ``rollback`` stays at or under alpha (plus a one-sided
  99% binomial tolerance).
* Power: a planted regression (error rate 5% → 7.5%) is rolled back in at least 80% of the
  rollouts, so the A/A check cannot pass merely because the policy never acts.
* Why sequential: a naive fixed-horizon test peeked at on the same A/A data at every look rolls
  back far more often than alpha.

Traffic is drawn unit by unit (error: Bernoulli; revenue: 20% buy, log-normal amount) with
numpy for all rollouts at once; the per-look policy runs are the real, unvectorised code.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from liftkit import stats
from liftkit.automation.actions import transition
from liftkit.automation.measure import evidence_from
from liftkit.automation.rules import Situation, decide
from liftkit.automation.state import State
from liftkit.registry.experiments import Experiment
from liftkit.registry.playbooks import Playbook
from liftkit.stats import MeanStats, ProportionStats
from stats_oracles import sims

ALPHA = 0.05
EXPECTED_UNITS = 20_000
T0 = datetime(2026, 6, 1, tzinfo=UTC)
LOOK_HOURS = 12
#: Coverage and minimum hours per stage; the last stage lasts until the final look.
STAGES = ((0.1, 24), (0.5, 48), (1.0, 120))
LOOKS = sum(hours for _, hours in STAGES) // LOOK_HOURS  # 16 looks over 8 days
#: Units per look at 100% coverage: ≈ 20,000 units over the whole rollout.
UNITS_PER_LOOK = 1600
ERROR_RATE = 0.05
BUY_RATE, LOG_MEAN, LOG_SD = 0.2, 3.0, 1.0

RUNS_AA = sims(400, 2000)
RUNS_POWER = sims(100, 1000)

VARIATIONS = ("control", "treatment")
WEIGHTS = (0.5, 0.5)
PLAYBOOK = Playbook(
    key="aa",
    type="rollout",
    feature="checkout",
    value=True,
    expected_units=EXPECTED_UNITS,
    decision={"alpha": ALPHA},
    stages=[{"coverage": c, "min_hours": h} for c, h in STAGES],
    guardrails=[{"metric": "error-rate"}, {"metric": "revenue"}],
)
EXPERIMENT = Experiment(key="checkout")


@dataclass(frozen=True)
class Metric:
    """What ``evidence_from`` reads of a planned metric."""

    key: str
    inverse: bool
    role: str = "guardrail"


METRICS = (Metric("error-rate", inverse=True), Metric("revenue", inverse=False))


def _planned_coverage() -> npt.NDArray[np.float64]:
    """Coverage during each look's interval when the policy ramps on time (no early stop)."""
    cover = []
    for coverage, hours in STAGES:
        cover += [coverage] * (hours // LOOK_HOURS)
    return np.array(cover[:LOOKS])


COVERAGE = _planned_coverage()
UNITS_PER_INTERVAL = np.rint(COVERAGE * UNITS_PER_LOOK).astype(np.int64)


@dataclass(frozen=True)
class Traffic:
    """Cumulative per-arm sufficient statistics: arrays of shape (rollouts, looks, arms)."""

    units: npt.NDArray[np.float64]
    errors: npt.NDArray[np.float64]
    revenue: npt.NDArray[np.float64]
    revenue_squares: npt.NDArray[np.float64]


def simulate_traffic(
    seed: int, rollouts: int, error_rates: tuple[float, float] = (ERROR_RATE, ERROR_RATE)
) -> Traffic:
    """Unit-level draws for every rollout (in chunks, vectorised), summed per look and arm."""
    rng = np.random.default_rng(seed)
    total = int(UNITS_PER_INTERVAL.sum())
    starts = np.concatenate([[0], np.cumsum(UNITS_PER_INTERVAL)[:-1]])
    parts: list[list[npt.NDArray[np.float64]]] = [[], [], [], []]
    for first in range(0, rollouts, 100):
        size = min(100, rollouts - first)
        treated = rng.random((size, total)) < WEIGHTS[1]
        error = rng.random((size, total)) < np.where(treated, error_rates[1], error_rates[0])
        bought = rng.random((size, total)) < BUY_RATE
        revenue = np.where(bought, rng.lognormal(LOG_MEAN, LOG_SD, (size, total)), 0.0)
        columns: tuple[npt.ArrayLike, ...] = (1.0, error, revenue, revenue**2)
        for store, values in zip(parts, columns, strict=True):
            arms = [
                np.add.reduceat(np.where(in_arm, values, 0.0), starts, axis=1)
                for in_arm in (~treated, treated)
            ]
            store.append(np.cumsum(np.stack(arms, axis=-1), axis=1))
    units, errors, revenue_sum, squares = (np.concatenate(p) for p in parts)
    return Traffic(units, errors, revenue_sum, squares)


@dataclass(frozen=True)
class Outcome:
    """How one simulated rollout ended: the acting decision's action and look (or hold)."""

    action: str
    look: int
    rule: str


def run_policy(traffic: Traffic, r: int) -> Outcome:
    """Drive rollout ``r`` through the real policy, one controller cycle per look."""
    state = transition(State(), decide(Situation(PLAYBOOK, State(), T0)), PLAYBOOK, T0, 0)
    assert state.status == "running"
    for look in range(LOOKS):
        now = T0 + timedelta(hours=LOOK_HOURS * (look + 1))
        # The traffic was drawn for the on-time ramp; the policy must be where it planned.
        assert PLAYBOOK.stages[state.stage].coverage == COVERAGE[look]
        n = traffic.units[r, look]
        per_metric: list[list[Any] | None] = [
            [ProportionStats(n=n[a], sum=traffic.errors[r, look, a]) for a in range(2)],
            [
                MeanStats(
                    n=n[a],
                    sum=traffic.revenue[r, look, a],
                    sum_squares=traffic.revenue_squares[r, look, a],
                )
                for a in range(2)
            ],
        ]
        evidence = evidence_from(
            PLAYBOOK, state, VARIATIONS, WEIGHTS, METRICS, per_metric, n.astype(int), 0
        )
        decision = decide(Situation(PLAYBOOK, state, now, EXPERIMENT, evidence))
        if decision.action in ("rollback", "pause", "promote"):
            return Outcome(decision.action, look, decision.rule)
        assert decision.action in ("hold", "advance"), decision
        state = transition(state, decision, PLAYBOOK, now, evidence.total_units)
    return Outcome("hold", LOOKS, "default")


@dataclass(frozen=True)
class Simulation:
    traffic: Traffic
    outcomes: list[Outcome]
    seconds: float

    def rate(self, action: str) -> float:
        return sum(o.action == action for o in self.outcomes) / len(self.outcomes)


def simulate(seed: int, rollouts: int, error_rates: tuple[float, float]) -> Simulation:
    started = time.perf_counter()
    traffic = simulate_traffic(seed, rollouts, error_rates)
    outcomes = [run_policy(traffic, r) for r in range(rollouts)]
    return Simulation(traffic, outcomes, time.perf_counter() - started)


def tolerance(rate: float, n: int) -> float:
    """One-sided 99% binomial margin of a simulated rate."""
    return 2.33 * math.sqrt(rate * (1 - rate) / n)


@pytest.fixture(scope="module")
def aa() -> Simulation:
    return simulate(20260601, RUNS_AA, (ERROR_RATE, ERROR_RATE))


def test_no_false_rollbacks_in_aa(aa: Simulation, record_property: Any) -> None:
    """Identical arms: at most alpha of the rollouts may ever be rolled back."""
    rate = aa.rate("rollback")
    record_property("aa_false_rollback_rate", rate)
    print(
        f"\nA/A: {RUNS_AA} rollouts × {LOOKS} looks in {aa.seconds:.1f}s: false rollbacks "
        f"{rate:.2%}, health pauses {aa.rate('pause'):.2%}, shipped {aa.rate('promote'):.2%}"
    )
    assert rate <= ALPHA + tolerance(ALPHA, RUNS_AA), f"false rollback rate {rate:.2%}"
    # Rollbacks come from the guardrails rule only; the others ran to the end and shipped.
    assert {o.rule for o in aa.outcomes if o.action == "rollback"} <= {"guardrails"}
    shipped = [o for o in aa.outcomes if o.action == "promote"]
    assert all(o.rule == "rollout_complete" and o.look == LOOKS - 1 for o in shipped)
    assert len(shipped) >= 0.9 * RUNS_AA


def test_a_planted_regression_is_rolled_back(record_property: Any) -> None:
    """Power: error rate 5% → 7.5% in treatment is caught in at least 80% of rollouts.

    Without this, a policy that never acts would pass the A/A test.
    """
    sim = simulate(20260602, RUNS_POWER, (ERROR_RATE, 1.5 * ERROR_RATE))
    rate = sim.rate("rollback")
    looks = [o.look + 1 for o in sim.outcomes if o.action == "rollback"]
    record_property("regression_rollback_rate", rate)
    print(
        f"\npower: {RUNS_POWER} rollouts in {sim.seconds:.1f}s: rolled back {rate:.2%}, "
        f"median look {np.median(looks) if looks else float('nan'):.0f} of {LOOKS}"
    )
    assert rate >= 0.8, f"regression rolled back in only {rate:.2%} of rollouts"
    assert {o.rule for o in sim.outcomes if o.action == "rollback"} == {"guardrails"}


def naive_peeking_rollbacks(traffic: Traffic) -> npt.NDArray[np.bool_]:
    """Per rollout: would a fixed-horizon one-sided test, checked at every look, roll back?

    The same family as the policy (two guardrails, Holm at each look), but with the ordinary
    Welch / z p-values that are only valid when looked at once.
    """
    arms = [
        (
            ProportionStats(n=traffic.units[..., a], sum=traffic.errors[..., a]),
            MeanStats(
                n=traffic.units[..., a],
                sum=traffic.revenue[..., a],
                sum_squares=traffic.revenue_squares[..., a],
            ),
        )
        for a in range(2)
    ]
    p_values = []
    for m, metric in enumerate(METRICS):
        res = stats.compare_many(
            arms[0][m],
            arms[1][m],
            alternative="greater" if metric.inverse else "less",
            sequential_tuning=None,
            alpha=ALPHA,
        )
        assert res.p_value is not None
        p_values.append(np.where(res.ok, res.p_value, 1.0))
    adjusted = stats.holm_bonferroni(np.stack(p_values, axis=-1))
    return np.asarray((adjusted < ALPHA).any(axis=(1, 2)))


def test_naive_peeking_would_roll_back_too_often(aa: Simulation, record_property: Any) -> None:
    """Why the guardrails are sequential: peeking at a fixed-horizon test inflates alpha."""
    rate = float(naive_peeking_rollbacks(aa.traffic).mean())
    record_property("naive_peeking_rollback_rate", rate)
    print(f"\nnaive peeking on the same A/A data: rolls back {rate:.2%}")
    assert rate > ALPHA + tolerance(ALPHA, RUNS_AA), f"naive peeking rate only {rate:.2%}"
    # Looked at once, at the end, the same fixed-horizon test keeps its level.
    last_look = Traffic(*(getattr(aa.traffic, f.name)[:, -1:] for f in fields(Traffic)))
    final = naive_peeking_rollbacks(last_look).mean()
    assert final <= ALPHA + tolerance(ALPHA, RUNS_AA)
