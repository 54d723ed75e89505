"""Meta-analysis of the experiment history: win rates, effect sizes, and honest shipped impact.

Pure functions over :class:`~liftkit.knowledge.records.Record` objects that answer what no single
experiment can: how often ideas of a kind win, how large real effects on a metric are, and how
much shipping winners actually moved it.

- **Win rates** count decided experiments per group (tag, funnel stage, change type, team,
  quarter). ``dnf`` experiments are listed but left out of the rate: they say nothing about the
  idea. The 95% interval is Wilson's score interval (Wilson 1927; Brown, Cai & DasGupta 2001),
  which keeps its coverage for the small groups typical here, unlike the Wald interval.
- **Effect distributions** pool every treatment's relative effect on a metric, in the metric's
  *good* direction (negated for lower-is-better metrics) so that "positive" always means "better".
  A random-effects meta-analysis (DerSimonian & Laird 1986, via :func:`liftkit.stats.learn_prior`)
  turns them into a prior N(μ, τ²) for the next experiment; the default minimum detectable effect
  is the root-mean-square true effect under that prior, sqrt(μ² + τ²): the size of a typical real
  effect, so a test powered for it can find the effects that actually occur.
- **Shrinkage** corrects the winner's curse: experiments are shipped *because* their estimate was
  large, so the estimates of shipped winners overstate their true effects (selection bias; van
  Zwet & Cator 2021; Kohavi, Tang & Xu 2020). True effects are modelled as N(0, τ²) around
  zero ("most changes do nothing much"); τ² comes from *all* decided experiments' effects on the
  metric, and each estimate is replaced by its posterior mean y·τ²/(τ² + se²) (empirical Bayes,
  Efron & Morris 1975). The posterior mean *is* E[θ | y], so selecting experiments on y leaves
  it unbiased (as far as the prior is right), whereas the raw y is biased upwards.
- **Cumulative impact** compounds the shipped winners' effects in date order, raw and shrunk, and
  the **leaderboard** ranks shipped winners and their owners by shrunk effect.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from liftkit.knowledge.records import Effect, Record
from liftkit.stats import GaussianPrior, learn_prior

GroupBy = Literal["tag", "funnel_stage", "change_type", "team", "quarter"]
GROUPINGS: tuple[GroupBy, ...] = ("tag", "funnel_stage", "change_type", "team", "quarter")
#: The group of records that have no value for the grouping.
NONE = "(none)"
_Z95 = 1.959963984540054  # Φ⁻¹(0.975)
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Rate:
    """Outcome counts of one group; ``decided`` excludes ``dnf``, so does the rate."""

    group: str
    won: int
    lost: int
    inconclusive: int
    dnf: int
    decided: int
    win_rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Observation:
    """One treatment's effect on a metric, in the metric's good direction."""

    experiment: str
    variation: str
    effect: float
    se: float


@dataclass(frozen=True)
class MetricHistory:
    """Every past effect on one metric and what they say about the next experiment."""

    metric: str
    inverse: bool
    n: int
    effects: tuple[Observation, ...]
    mean: float
    median: float
    p10: float
    p90: float
    share_positive: float
    share_significant: float
    prior: GaussianPrior
    default_mde: float | None
    #: ``(low edge, high edge, count)`` of equal-width bins over the effects.
    histogram: tuple[tuple[float, float, int], ...]


@dataclass(frozen=True)
class Impact:
    """A shipped winner's effect (good direction), shrunk, and the running compounded totals."""

    experiment: str
    variation: str
    decided_at: datetime | None
    effect: float
    shrunk: float
    se: float
    cumulative_raw: float
    cumulative_shrunk: float


@dataclass(frozen=True)
class ImpactSeries:
    """One metric's shipped winners in date order; ``tau2`` is the shrinkage's prior variance."""

    metric: str
    inverse: bool
    tau2: float
    impacts: tuple[Impact, ...]
    total_raw: float
    total_shrunk: float


@dataclass(frozen=True)
class LeaderboardEntry:
    """A shipped winner and its primary-metric effect (good direction), raw and shrunk."""

    experiment: str
    name: str
    team: str
    owners: tuple[str, ...]
    metric: str
    variation: str
    decided_at: datetime | None
    effect: float
    shrunk: float
    se: float


@dataclass(frozen=True)
class Contributor:
    """An owner's record; ``impact`` sums the shrunk primary effects of their shipped winners."""

    owner: str
    experiments: int
    wins: int
    learnings: int
    impact: float


@dataclass(frozen=True)
class Leaderboard:
    """The top shipped winners and the top contributors."""

    experiments: list[LeaderboardEntry]
    contributors: list[Contributor]


def wilson_interval(successes: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (good coverage at small n)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError("need 0 <= successes <= n and n > 0")
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rates(records: Iterable[Record], by: GroupBy) -> list[Rate]:
    """Outcome counts and win rate per group, most decided first; tag groups overlap."""
    if by not in GROUPINGS:
        raise ValueError(f"by: expected one of {', '.join(GROUPINGS)}")
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        if record.outcome is None:
            continue
        for group in _groups(record, by):
            counts[group][record.outcome] += 1
    rates = []
    for group, c in counts.items():
        decided = c["won"] + c["lost"] + c["inconclusive"]
        low = high = rate = None
        if decided:
            rate = c["won"] / decided
            low, high = wilson_interval(c["won"], decided)
        rates.append(
            Rate(group, c["won"], c["lost"], c["inconclusive"], c["dnf"], decided, rate, low, high)
        )
    return sorted(rates, key=lambda r: (-r.decided, r.group))


def _groups(record: Record, by: GroupBy) -> list[str]:
    brief = record.brief
    if by == "tag":
        values = list(brief.tags)
    elif by == "quarter":
        values = [record.quarter or ""]
    else:
        values = [getattr(brief, by)]
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    return cleaned or [NONE]


def _good(effect: Effect) -> float:
    return -effect.effect if effect.inverse else effect.effect


def _usable(effect: Effect) -> bool:
    # Records built from snapshots always pass; a malformed one must not sink the whole history.
    return math.isfinite(effect.effect) and math.isfinite(effect.se) and effect.se > 0


def _observations(records: Iterable[Record]) -> dict[str, list[tuple[Record, Effect]]]:
    """Every usable treatment effect of every record with an outcome, by metric."""
    out: dict[str, list[tuple[Record, Effect]]] = defaultdict(list)
    for record in (r for r in records if r.outcome is not None):
        for effect in filter(_usable, record.effects):
            out[effect.metric].append((record, effect))
    return out


def effect_distribution(records: Iterable[Record]) -> list[MetricHistory]:
    """The distribution of past effects per metric, most observed metric first."""
    out = []
    for metric, pairs in _observations(records).items():
        y = np.array([_good(e) for _, e in pairs])
        se = np.array([e.se for _, e in pairs])
        prior = learn_prior(y, se)
        mde = math.sqrt(prior.mean**2 + prior.variance) if prior.proper else None
        significant = sum(e.significance in ("win", "lose") for _, e in pairs)
        out.append(
            MetricHistory(
                metric=metric,
                inverse=pairs[0][1].inverse,
                n=len(pairs),
                effects=tuple(
                    Observation(r.key, e.variation, float(g), e.se)
                    for (r, e), g in zip(pairs, y, strict=True)
                ),
                mean=float(np.mean(y)),
                median=float(np.median(y)),
                p10=float(np.percentile(y, 10)),
                p90=float(np.percentile(y, 90)),
                share_positive=float(np.mean(y > 0)),
                share_significant=significant / len(pairs),
                prior=prior,
                default_mde=mde,
                histogram=_histogram(y),
            )
        )
    return sorted(out, key=lambda h: (-h.n, h.metric))


def _histogram(y: Array) -> tuple[tuple[float, float, int], ...]:
    if float(y.min()) == float(y.max()):  # numpy would invent a ±0.5 range: absurd for lifts
        return ((float(y[0]), float(y[0]), int(y.size)),)
    counts, edges = np.histogram(y, bins=10)
    return tuple((float(edges[i]), float(edges[i + 1]), int(counts[i])) for i in range(counts.size))


def shrink(effects: npt.ArrayLike, ses: npt.ArrayLike) -> tuple[Array, float]:
    """Empirical-Bayes posterior means of true effects under N(0, τ²); returns (shrunk, τ²).

    τ² is DerSimonian & Laird's method-of-moments estimator with the mean fixed at zero: with
    w = 1/se², Q = Σw·y² has expectation k + τ²·Σw, so τ² = max(0, Σw(y² − se²) / Σw). It is
    unbiased before truncation at 0, closed-form, needs no normality for its moments, and is the
    estimator :func:`liftkit.stats.learn_prior` uses with μ estimated. The mean is fixed at zero
    because the question is how much of a winner's estimate is real, "no effect" is the
    conservative anchor, and a free mean would partly be learned from the very winners being
    corrected; a nonzero average effect is absorbed into τ² (E y² = μ² + τ² + se²).

    With fewer than three effects τ² is still estimated (one effect gives max(0, y² − se²), a
    James–Stein-like rule), but it is very noisy: callers should pool a metric's whole history.
    """
    y = np.asarray(effects, dtype=np.float64).ravel()
    se = np.asarray(ses, dtype=np.float64).ravel()
    if y.shape != se.shape:
        raise ValueError("effects and ses must have the same length")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(se)) and np.all(se > 0)):
        raise ValueError("effects must be finite and standard errors finite and positive")
    if y.size == 0:
        return y, 0.0
    w = 1.0 / se**2
    tau2 = max(0.0, float(np.sum(w * (y**2 - se**2)) / np.sum(w)))
    shrunk: Array = y * (tau2 / (tau2 + se**2))
    return shrunk, tau2


def _tau2s(records: Iterable[Record]) -> dict[str, float]:
    """τ² per metric from every decided experiment's effects, winners or not."""
    return {
        metric: shrink([_good(e) for _, e in pairs], [e.se for _, e in pairs])[1]
        for metric, pairs in _observations(records).items()
    }


def _shipped(records: list[Record]) -> tuple[list[tuple[Record, Effect, float]], dict[str, float]]:
    """Shipped winners' effects (shipped variation) with their shrunk value, oldest first.

    τ² (also returned) comes from every decided experiment: their spread shows the inflation.
    """
    tau2s = _tau2s(records)
    winners = [r for r in records if r.outcome == "won" and r.shipped_variation is not None]
    winners.sort(key=lambda r: (r.decided_at is None, r.decided_at or datetime.min, r.key))
    found = [
        (r, e, _good(e) * tau2s[e.metric] / (tau2s[e.metric] + e.se**2))
        for r in winners
        for e in r.effects
        if e.variation == r.shipped_variation and _usable(e)
    ]
    return found, tau2s


def cumulative_impact(records: Iterable[Record]) -> list[ImpactSeries]:
    """Compounded effect of the shipped winners per metric, raw and shrunk.

    Effects compound on the metric's own scale, Π(1 + x) − 1, and are then reported in the good
    direction: two −10% latency changes compound to −19%, shown as +19%.
    """
    found, tau2s = _shipped(list(records))
    by_metric: dict[str, list[tuple[Record, Effect, float]]] = defaultdict(list)
    for item in found:
        by_metric[item[1].metric].append(item)
    out = []
    for metric, items in by_metric.items():
        sign = -1.0 if items[0][1].inverse else 1.0
        raw_level = shrunk_level = 1.0
        impacts = []
        for record, effect, shrunk in items:
            y = _good(effect)
            raw_level *= 1.0 + sign * y
            shrunk_level *= 1.0 + sign * shrunk
            impacts.append(
                Impact(
                    experiment=record.key,
                    variation=effect.variation,
                    decided_at=record.decided_at,
                    effect=y,
                    shrunk=shrunk,
                    se=effect.se,
                    cumulative_raw=sign * (raw_level - 1.0),
                    cumulative_shrunk=sign * (shrunk_level - 1.0),
                )
            )
        last = impacts[-1]
        totals = (last.cumulative_raw, last.cumulative_shrunk)
        out.append(ImpactSeries(metric, sign < 0, tau2s[metric], tuple(impacts), *totals))
    return sorted(out, key=lambda s: (-len(s.impacts), s.metric))


def leaderboard(records: Iterable[Record], *, limit: int = 10) -> Leaderboard:
    """Top shipped winners and contributors, by shrunk rather than raw effect.

    Ranking by raw effect rewards the luckiest (noisiest) estimates; the shrunk effect discounts
    a large estimate by how noisy it is. A contributor's impact adds effects on their
    experiments' primary metrics, which may differ: it is a score, not a business quantity.
    """
    if limit < 0:
        raise ValueError("limit must be >= 0")
    records = list(records)
    entries = []
    for record, effect, shrunk in _shipped(records)[0]:
        if effect.metric != record.primary_metric:
            continue
        brief = record.brief
        entries.append(
            LeaderboardEntry(
                experiment=record.key,
                name=brief.name,
                team=brief.team,
                owners=tuple(brief.owners),
                metric=effect.metric,
                variation=effect.variation,
                decided_at=record.decided_at,
                effect=_good(effect),
                shrunk=shrunk,
                se=effect.se,
            )
        )
    impact_of = {e.experiment: e.shrunk for e in entries}
    experiments: Counter[str] = Counter()
    wins: Counter[str] = Counter()
    learnings: Counter[str] = Counter()
    impact: dict[str, float] = defaultdict(float)
    for record in records:
        learned = bool(record.brief.conclusion.learnings.strip())
        if record.outcome is None and not learned:
            continue
        for owner in dict.fromkeys(o.strip() for o in record.brief.owners if o.strip()):
            experiments[owner] += record.outcome is not None
            wins[owner] += record.outcome == "won"
            learnings[owner] += learned
            impact[owner] += impact_of.get(record.key, 0.0)
    contributors = [
        Contributor(owner, experiments[owner], wins[owner], learnings[owner], impact[owner])
        for owner in impact
    ]
    entries.sort(key=lambda e: (-e.shrunk, -e.effect, e.experiment))
    contributors.sort(key=lambda c: (-c.impact, -c.wins, -c.experiments, c.owner))
    return Leaderboard(experiments=entries[:limit], contributors=contributors[:limit])
