"""Measuring a playbook's experiment: the analysis engine's query, reduced to ``Evidence``.

The experiment is planned as the playbook sees it: its guardrails added to the experiment's
metrics, and the analysis engine set by the playbook's decision rule. The measurement uses the
same SQL, data source and statistics as ``liftkit analyze``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from liftkit import stats
from liftkit.analysis.plan import PlanError
from liftkit.analysis.runner import measure, plan_experiment
from liftkit.automation.evidence import (
    Evidence,
    guardrail_verdicts,
    measure_error,
    primary_verdict,
    stratified_posterior,
)
from liftkit.automation.state import State
from liftkit.registry.experiments import Experiment
from liftkit.registry.playbooks import Playbook
from liftkit.stats.bandits import arm_posteriors
from liftkit.warehouse import WarehouseError

if TYPE_CHECKING:
    from liftkit.platform import Platform


def as_planned(playbook: Playbook, experiment: Experiment) -> Experiment:
    """The experiment with the playbook's guardrails and decision rule."""
    guardrails = [*experiment.metrics.guardrails]
    guardrails += [g.metric for g in playbook.guardrails if g.metric not in guardrails]
    bayesian = playbook.decision.method == "bayesian"
    return experiment.model_copy(
        update={
            "metrics": experiment.metrics.model_copy(update={"guardrails": guardrails}),
            "analysis": experiment.analysis.model_copy(
                update={
                    "engine": "bayesian" if bayesian else "frequentist",
                    "sequential": not bayesian,
                    "alpha": playbook.decision.alpha,
                }
            ),
        }
    )


def gather(
    platform: Platform, playbook: Playbook, state: State, experiment: Experiment, now: datetime
) -> Evidence:
    """This cycle's evidence, or an ``Evidence`` whose ``error`` says why there is none."""
    if not experiment.phases:
        return measure_error(f"experiment {experiment.key!r} has not started")
    try:
        plan = plan_experiment(platform, as_planned(playbook, experiment), now=now)
        measured = measure(platform, plan)
    except (PlanError, WarehouseError) as error:
        return measure_error(str(error))
    per_metric, units, multiple = measured.stats()
    return evidence_from(
        playbook, state, plan.variations, plan.weights, plan.metrics, per_metric, units, multiple
    )


def evidence_from(
    playbook: Playbook,
    state: State,
    variations: tuple[str, ...],
    weights: tuple[float, ...],
    metrics: Any,
    per_metric: list[list[Any] | None],
    units: Any,
    multiple: int,
) -> Evidence:
    """Evidence from per-arm sufficient statistics (pure; the A/A simulation calls it too)."""
    counts = tuple(int(u) for u in units)
    total = sum(counts)
    srm_p = None
    live = [i for i, w in enumerate(weights) if w > 0]
    if total > 0 and len(live) > 1:
        srm_p = stats.srm_check([counts[i] for i in live], [weights[i] for i in live]).p_value
    rows = [(m.key, m.inverse, per_metric[k]) for k, m in enumerate(metrics)]
    verdict = None
    posterior = period = None
    inverse = False
    primary = next((k for k, m in enumerate(metrics) if m.role == "primary"), None)
    if primary is not None and per_metric[primary] is not None and len(variations) > 1:
        arms = per_metric[primary]
        assert arms is not None
        inverse = metrics[primary].inverse
        verdict = primary_verdict(playbook, variations, metrics[primary].key, inverse, arms)
        if playbook.type == "bandit":
            means, variances = arm_posteriors(arms)
            period = (
                [float(c) for c in counts],
                [float(m) for m in means],
                [float(v) for v in variances],
            )
            posterior = stratified_posterior([*state.bandit_periods, period])
    return Evidence(
        variations=tuple(variations),
        units=counts,
        weights=tuple(weights),
        srm_p_value=srm_p,
        multiple_share=multiple / (total + multiple) if total + multiple else 0.0,
        guardrails=guardrail_verdicts(playbook, variations, rows),
        primary=verdict,
        posterior=posterior,
        primary_inverse=inverse,
        period=period,
    )
