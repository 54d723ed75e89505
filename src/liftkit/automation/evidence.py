"""What the data says, in the terms a playbook's rules decide on (pure: statistics in, verdicts).

Every test here is safe to repeat at every controller cycle: guardrails and the frequentist
primary decision use anytime-valid confidence sequences tuned to the playbook's expected units,
so looking every ten seconds does not inflate the error rates the playbook promises.

* A guardrail is **breached** when the one-sided sequential test finds the treatment worse than
  control (H0: no harm), Holm-corrected across guardrails × treatments, and **passed** when the
  one-sided bound shows it no worse than the margin (non-inferiority).
* The primary metric **wins** for a treatment whose sequential interval (Holm across
  treatments) excludes zero on the good side, or (Bayesian) whose chance to win and expected
  loss clear the thresholds; control wins when every treatment loses that way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from liftkit import stats
from liftkit.registry.playbooks import Playbook


@dataclass(frozen=True)
class GuardrailVerdict:
    metric: str
    variation: str
    effect: float | None
    upper_harm_p: float | None
    ci_low: float | None
    margin: float
    breached: bool
    passed: bool


@dataclass(frozen=True)
class PrimaryVerdict:
    metric: str
    #: The winning treatment, ``control``'s key when control beat every treatment, else None.
    winner: str | None
    #: Every treatment significantly worse than control.
    control_wins: bool
    effects: dict[str, float | None] = field(default_factory=dict)
    p_values: dict[str, float | None] = field(default_factory=dict)
    chance_to_win: dict[str, float | None] = field(default_factory=dict)
    risk: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """One cycle's measurement of an experiment, reduced to what the rules need."""

    variations: tuple[str, ...]
    units: tuple[int, ...]
    weights: tuple[float, ...]
    srm_p_value: float | None
    multiple_share: float
    guardrails: tuple[GuardrailVerdict, ...] = ()
    primary: PrimaryVerdict | None = None
    #: Per-arm posterior mean and variance of the primary metric (bandits).
    posterior: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    primary_inverse: bool = False
    #: This phase's per-arm (units, mean, variance of the mean): a bandit period when it closes.
    period: tuple[list[float], list[float], list[float]] | None = None
    #: Why nothing could be measured (no metrics, no data source, no phase yet).
    error: str | None = None

    @property
    def total_units(self) -> int:
        return sum(self.units)

    def numbers(self) -> dict[str, Any]:
        """The figures behind a decision, as JSON for the timeline."""
        out = asdict(self)
        out["total_units"] = self.total_units
        return out


def measure_error(message: str) -> Evidence:
    return Evidence((), (), (), None, 0.0, error=message)


def _opt(x: Any) -> float | None:
    value = float(x)
    return value if np.isfinite(value) else None


def guardrail_verdicts(
    playbook: Playbook,
    variations: Sequence[str],
    metrics: Sequence[tuple[str, bool, list[Any] | None]],
) -> tuple[GuardrailVerdict, ...]:
    """Verdicts for the playbook's guardrails. ``metrics``: (key, inverse, per-arm stats)."""
    by_key = {key: (inverse, arms) for key, inverse, arms in metrics}
    rows: list[tuple[Any, bool, list[Any]]] = []
    for g in playbook.guardrails:
        inverse, arms = by_key.get(g.metric, (False, None))
        if arms is not None:
            rows.append((g, inverse, arms))
    k = len(variations) - 1
    if not rows or k < 1:
        return ()
    alpha = playbook.decision.alpha
    tuning = float(playbook.expected_units)
    control = [[arms[0]] * k for _, _, arms in rows]
    treat = [list(arms[1:]) for _, _, arms in rows]
    # Harm is "less" for higher-is-better metrics; one call per direction keeps Holm over the
    # whole family by correcting the combined raw p-values afterwards.
    raw = np.ones((len(rows), k))
    effects = np.full((len(rows), k), np.nan)
    oks = np.zeros((len(rows), k), dtype=bool)
    for i, (_, inverse, _) in enumerate(rows):
        res = stats.compare_many(
            control[i],
            treat[i],
            alternative="greater" if inverse else "less",
            sequential_tuning=tuning,
            alpha=alpha,
        )
        assert res.p_value is not None
        raw[i] = np.where(res.ok, res.p_value, 1.0)
        effects[i] = res.effect
        oks[i] = res.ok
    adjusted = stats.holm_bonferroni(raw.ravel()).reshape(raw.shape)
    out = []
    for i, (guard, inverse, _) in enumerate(rows):
        ni = stats.non_inferiority_many(
            control[i],
            treat[i],
            margin=guard.margin,
            alpha=alpha,
            sequential_tuning=tuning,
            higher_is_better=not inverse,
        )
        bound = ni.comparison.ci_high if inverse else ni.comparison.ci_low
        for j in range(k):
            out.append(
                GuardrailVerdict(
                    metric=guard.metric,
                    variation=variations[j + 1],
                    effect=_opt(effects[i, j]) if oks[i, j] else None,
                    upper_harm_p=float(adjusted[i, j]) if oks[i, j] else None,
                    ci_low=_opt(bound[j]) if oks[i, j] else None,
                    margin=guard.margin,
                    breached=bool(oks[i, j] and adjusted[i, j] < alpha),
                    passed=bool(ni.non_inferior[j]),
                )
            )
    return tuple(out)


def primary_verdict(
    playbook: Playbook, variations: Sequence[str], key: str, inverse: bool, arms: list[Any]
) -> PrimaryVerdict:
    """Whether a treatment (or control) has won on the primary metric."""
    k = len(variations) - 1
    rule = playbook.decision
    control, treat = [arms[0]] * k, list(arms[1:])
    names = list(variations[1:])
    if rule.method == "sequential":
        res = stats.compare_many(
            control,
            treat,
            alpha=rule.alpha,
            sequential_tuning=float(playbook.expected_units),
            correction="holm" if k > 1 else None,
        )
        assert res.p_value is not None
        sign = -1.0 if inverse else 1.0
        good = res.ok & (res.p_value < rule.alpha) & (sign * res.effect > 0)
        bad = res.ok & (res.p_value < rule.alpha) & (sign * res.effect < 0)
        score = np.where(good, sign * res.effect, -np.inf)
        p_values = {
            n: _opt(p) if ok else None for n, p, ok in zip(names, res.p_value, res.ok, strict=True)
        }
        ctw: dict[str, float | None] = {}
        risk: dict[str, float | None] = {}
    else:
        res = stats.compare_many(control, treat, engine="bayesian", inverse=inverse)
        assert res.chance_to_win is not None and res.risk_treatment is not None
        assert res.risk_control is not None
        good = res.ok & (res.chance_to_win >= rule.chance_to_win)
        good &= res.risk_treatment <= rule.max_risk
        bad = res.ok & (res.chance_to_win <= 1 - rule.chance_to_win)
        bad &= res.risk_control <= rule.max_risk
        score = np.where(good, res.chance_to_win, -np.inf)
        p_values = {}
        ctw = {
            n: _opt(c) if ok else None
            for n, c, ok in zip(names, res.chance_to_win, res.ok, strict=True)
        }
        risk = {
            n: _opt(r) if ok else None
            for n, r, ok in zip(names, res.risk_treatment, res.ok, strict=True)
        }
    winner = names[int(np.argmax(score))] if bool(good.any()) else None
    control_wins = bool(bad.all()) and k > 0
    return PrimaryVerdict(
        metric=key,
        winner=winner if winner else (variations[0] if control_wins else None),
        control_wins=control_wins,
        effects={
            n: _opt(e) if ok else None for n, e, ok in zip(names, res.effect, res.ok, strict=True)
        },
        p_values=p_values,
        chance_to_win=ctw,
        risk=risk,
    )


def stratified_posterior(
    periods: Sequence[tuple[Sequence[float], Sequence[float], Sequence[float]]],
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Arm means and variances pooled over periods with different traffic weights.

    ``periods``: per period, each arm's (units, mean, variance of the mean). Pooling raw sums
    across periods would weight each arm's periods by its own traffic, so a drift over time
    would masquerade as a difference between arms (Simpson's paradox). Instead every arm's
    period means are combined with the same weights, the period's share of all units.
    """
    units = np.array([p[0] for p in periods], dtype=np.float64)
    means = np.array([p[1] for p in periods], dtype=np.float64)
    variances = np.array([p[2] for p in periods], dtype=np.float64)
    usable = np.isfinite(variances).all(axis=1) & (units.min(axis=1) >= 2)
    if not usable.any():
        k = units.shape[1] if units.ndim == 2 else 0
        return tuple([0.0] * k), tuple([float("inf")] * k)
    share = units[usable].sum(axis=1)
    share = share / share.sum()
    mean = (share[:, None] * means[usable]).sum(axis=0)
    var = (share[:, None] ** 2 * variances[usable]).sum(axis=0)
    return tuple(float(m) for m in mean), tuple(float(v) for v in var)
