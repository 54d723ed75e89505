"""What the knowledge base knows about one experiment: its brief, the experiment, its results.

Everything else in ``liftkit.knowledge`` (search, duplicates, meta-analysis, calendar, digest)
reads :class:`Record` objects, so the rules that join a brief to its experiment and its latest
snapshot live here once:

- the **stage** follows the linked experiment once it runs (running → analysing when it stops →
  decided when it has a result → shipped when a winning treatment is released); before that, and
  for briefs without an experiment, it is the stage the brief was moved to;
- the **outcome** is the brief's conclusion, else the experiment's result;
- **effects** are relative effects with their *fixed-horizon* standard errors, recomputed from the
  snapshot's sufficient statistics. Meta-analysis needs sampling errors that mean the same thing in
  every experiment; a sequential or Bayesian interval would not.

Experiments that have no brief get a minimal one built from the experiment, so the history from
before the knowledge base still counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scipy import stats as scipy_stats

from liftkit import stats
from liftkit.analysis import store as snapshot_store
from liftkit.analysis.snapshot import Snapshot
from liftkit.platform import Platform
from liftkit.registry.briefs import Brief, Outcome, Stage
from liftkit.registry.experiments import Experiment

_STAT_KINDS = {
    name: getattr(stats, name)
    for name in ("MeanStats", "ProportionStats", "RatioStats", "CupedMeanStats", "CupedRatioStats")
}


@dataclass(frozen=True)
class Effect:
    """One treatment's relative effect on one metric, with its fixed-horizon standard error."""

    metric: str
    role: str
    variation: str
    effect: float
    se: float
    baseline: float | None
    units: int
    significance: str | None
    inverse: bool


@dataclass(frozen=True)
class Record:
    brief: Brief
    experiment: Experiment | None
    stage: Stage
    outcome: Outcome | None
    started_at: datetime | None
    ended_at: datetime | None
    decided_at: datetime | None
    shipped_variation: str | None
    effects: tuple[Effect, ...] = ()
    #: The experiment's newest snapshot (baselines and A/A health are read from it).
    snapshot: Snapshot | None = None
    #: True when the brief was made up from an experiment that has none.
    synthetic: bool = False

    @property
    def key(self) -> str:
        return self.brief.key

    @property
    def metrics(self) -> list[str]:
        """Every metric the brief or the experiment names, primary first."""
        out: list[str] = []
        for source in (self.brief.metrics, self.experiment.metrics if self.experiment else None):
            if source is None:
                continue
            for key in (*source.primary, *source.secondary, *source.guardrails):
                if key not in out:
                    out.append(key)
        return out

    @property
    def primary_metric(self) -> str | None:
        if self.brief.metrics.primary:
            return self.brief.metrics.primary[0]
        if self.experiment is not None and self.experiment.metrics.primary:
            return self.experiment.metrics.primary[0]
        return None

    @property
    def quarter(self) -> str | None:
        when = self.decided_at
        return None if when is None else f"{when.year}-Q{(when.month - 1) // 3 + 1}"

    def primary_effect(self) -> Effect | None:
        """The primary metric's effect for the shipped variation, else the best treatment."""
        metric = self.primary_metric
        found = [e for e in self.effects if e.metric == metric]
        if not found:
            return None
        if self.shipped_variation is not None:
            for e in found:
                if e.variation == self.shipped_variation:
                    return e
        return max(found, key=lambda e: -e.effect if e.inverse else e.effect)


def effective_stage(brief: Brief, experiment: Experiment | None) -> Stage:
    if brief.stage in ("archived", "shipped") or experiment is None:
        return brief.stage
    if experiment.status == "running":
        return "running"
    if experiment.status == "stopped":
        if _shipped(experiment, brief.conclusion.outcome) is not None:
            return "shipped"
        if experiment.result is not None or brief.conclusion.outcome is not None:
            return "decided"
        return "analysing"
    return brief.stage


def _shipped(experiment: Experiment, concluded: Outcome | None = None) -> str | None:
    """The released treatment of a won experiment (won by its result or its brief's conclusion)."""
    control = experiment.variations[0].key
    released = experiment.released_variation
    won = (concluded or experiment.result) == "won"
    if won and released is not None and released != control:
        return released
    return None


def effects_of(snapshot: Snapshot) -> tuple[Effect, ...]:
    """Relative effects and fixed-horizon standard errors of every treatment × metric."""
    by_stat = {(r["metric"], r["variation"]): r for r in snapshot.statistics}
    control = snapshot.variations[0] if snapshot.variations else None
    z = float(scipy_stats.norm.ppf(1 - snapshot.alpha / 2))
    out = []
    for metric in snapshot.results:
        base = next((v for v in metric.variations if v.variation == control), None)
        for v in metric.variations:
            if v.variation == control:
                continue
            effect, se = _recompute(
                by_stat.get((metric.metric, control)), by_stat.get((metric.metric, v.variation))
            )
            fixed_horizon = not snapshot.sequential and snapshot.engine == "frequentist"
            has_ci = v.effect is not None and v.ci_low is not None and v.ci_high is not None
            if effect is None and fixed_horizon and has_ci:
                effect, se = v.effect, (v.ci_high - v.ci_low) / (2 * z)  # type: ignore[operator]
            if effect is None or se is None or not (math.isfinite(effect) and se > 0):
                continue
            out.append(
                Effect(
                    metric=metric.metric,
                    role=metric.role,
                    variation=v.variation,
                    effect=effect,
                    se=se,
                    baseline=base.value if base is not None else None,
                    units=(base.units if base is not None else 0) + v.units,
                    significance=v.significance,
                    inverse=metric.inverse,
                )
            )
    return tuple(out)


def _recompute(
    control: dict[str, Any] | None, treatment: dict[str, Any] | None
) -> tuple[float | None, float | None]:
    if control is None or treatment is None or control.get("kind") not in _STAT_KINDS:
        return None, None
    if treatment.get("kind") != control["kind"]:
        return None, None
    kind = _STAT_KINDS[control["kind"]]

    def build(row: dict[str, Any]) -> Any:
        fields = {k: v for k, v in row.items() if k not in ("metric", "variation", "kind")}
        return kind(**fields)

    result = stats.compare(build(control), build(treatment), difference="relative")
    if not result.ok:
        return None, None
    return result.effect, result.se


def record_of(
    brief: Brief, experiment: Experiment | None, snapshot: Snapshot | None, *, synthetic: bool
) -> Record:
    started = ended = None
    if experiment is not None and experiment.phases:
        started = experiment.phases[0].started_at
        if experiment.status == "stopped":
            ended = experiment.phases[-1].ended_at
    outcome = brief.conclusion.outcome or (experiment.result if experiment else None)
    decided = brief.conclusion.decided_at or (ended if outcome is not None else None)
    return Record(
        brief=brief,
        experiment=experiment,
        stage=effective_stage(brief, experiment),
        outcome=outcome,
        started_at=started,
        ended_at=ended,
        decided_at=decided,
        shipped_variation=(
            _shipped(experiment, brief.conclusion.outcome) if experiment is not None else None
        ),
        effects=effects_of(snapshot) if snapshot is not None else (),
        snapshot=snapshot,
        synthetic=synthetic,
    )


def brief_from_experiment(experiment: Experiment) -> Brief:
    """A minimal brief for an experiment written before the knowledge base had one."""
    return Brief(
        key=experiment.key,
        name=experiment.name or experiment.key,
        description=experiment.hypothesis,
        project=experiment.project,
        owner=experiment.owner,
        tags=list(experiment.tags),
        metrics=experiment.metrics,
        experiment=experiment.key,
        stage="planned",
    )


def load(platform: Platform, *, project: str | None = None) -> list[Record]:
    """Every brief (and every experiment without one) as a record, ordered by key."""
    registry = platform.registry
    experiments = {e.key: e for e in registry.all("experiments") if isinstance(e, Experiment)}
    briefs = [b for b in registry.all("briefs") if isinstance(b, Brief)]
    covered = {b.experiment for b in briefs if b.experiment}
    pairs: list[tuple[Brief, bool]] = [(b, False) for b in briefs]
    pairs += [
        (brief_from_experiment(e), True) for key, e in experiments.items() if key not in covered
    ]
    taken = {b.key for b, synthetic in pairs if not synthetic}
    records = []
    for brief, synthetic in pairs:
        if synthetic and brief.key in taken:
            continue  # a brief already uses this key for something else
        if project is not None and brief.project != project:
            continue
        experiment = experiments.get(brief.experiment) if brief.experiment else None
        snapshot = None
        if experiment is not None:
            snapshot = snapshot_store.latest(platform.engine, experiment.key)
        records.append(record_of(brief, experiment, snapshot, synthetic=synthetic))
    return sorted(records, key=lambda r: r.key)
