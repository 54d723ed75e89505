"""Meta-analysis of the experiment history: win rates, effect distributions, shrinkage, impact.

Statistics are checked against independent implementations (statsmodels' Wilson interval and
DerSimonian–Laird meta-analysis, hand computations) and the shrinkage by simulation: winners
selected for significance overstate their true effects, and shrinking removes most of that bias.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import numpy as np
import pytest
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.proportion import proportion_confint

from liftkit.knowledge.meta import (
    NONE,
    cumulative_impact,
    effect_distribution,
    leaderboard,
    shrink,
    wilson_interval,
    win_rates,
)
from liftkit.knowledge.records import Effect, Record
from liftkit.registry.briefs import Brief, Conclusion, Outcome
from liftkit.registry.experiments import ExperimentMetrics

Z = 1.959963984540054
JAN = datetime(2025, 1, 15, tzinfo=UTC)


def effect(
    metric: str = "conv",
    value: float = 0.0,
    se: float = 0.01,
    *,
    variation: str = "treatment",
    inverse: bool = False,
    significance: str | None = None,
) -> Effect:
    return Effect(
        metric=metric,
        role="primary",
        variation=variation,
        effect=value,
        se=se,
        baseline=0.1,
        units=10_000,
        significance=significance,
        inverse=inverse,
    )


def record(
    key: str,
    outcome: Outcome | None = "inconclusive",
    effects: Sequence[Effect] = (),
    *,
    shipped: str | None = None,
    decided_at: datetime | None = JAN,
    tags: Sequence[str] = (),
    owners: Sequence[str] = (),
    learnings: str = "",
    primary: str = "conv",
    **brief: str,
) -> Record:
    return Record(
        brief=Brief(
            key=key,
            name=f"Experiment {key}",
            tags=list(tags),
            owners=list(owners),
            metrics=ExperimentMetrics(primary=[primary]),
            conclusion=Conclusion(outcome=outcome, learnings=learnings),
            **brief,
        ),
        experiment=None,
        stage="decided" if outcome else "running",
        outcome=outcome,
        started_at=None,
        ended_at=None,
        decided_at=decided_at if outcome else None,
        shipped_variation=shipped,
        effects=tuple(effects),
    )


def dl_tau2_at_zero(y: Iterable[float], se: Iterable[float]) -> float:
    """Method of moments with the mean fixed at 0, written out term by term."""
    num = den = 0.0
    for yi, si in zip(y, se, strict=True):
        num += (yi * yi - si * si) / (si * si)
        den += 1.0 / (si * si)
    return max(0.0, num / den)


# -- win rates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("won", "n"), [(0, 1), (1, 1), (0, 7), (3, 7), (7, 7), (12, 40), (1, 200)])
def test_wilson_interval_matches_statsmodels(won: int, n: int) -> None:
    low, high = proportion_confint(won, n, alpha=0.05, method="wilson")
    ours = wilson_interval(won, n)
    assert ours == pytest.approx((low, high), rel=1e-12, abs=1e-12)


def test_win_rates_count_outcomes_and_leave_dnf_out_of_the_rate() -> None:
    records = [
        record("a", "won", tags=["onboarding", "copy"]),
        record("b", "won", tags=["onboarding"]),
        record("c", "lost", tags=["copy", "copy"]),  # a repeated tag counts once
        record("d", "inconclusive", tags=["onboarding"]),
        record("e", "dnf", tags=["onboarding"]),
        record("f", "dnf", tags=["pricing"]),
        record("g", "won", tags=[" "]),  # blank: no tag
        record("h", None, tags=["onboarding"]),  # no outcome: not counted
    ]
    rates = {r.group: r for r in win_rates(records, "tag")}
    assert list(rates) == ["onboarding", "copy", NONE, "pricing"]
    onboarding = rates["onboarding"]
    assert (onboarding.won, onboarding.lost, onboarding.inconclusive, onboarding.dnf) == (
        2,
        0,
        1,
        1,
    )
    assert onboarding.decided == 3
    assert onboarding.win_rate == pytest.approx(2 / 3)
    assert (onboarding.low, onboarding.high) == pytest.approx(
        proportion_confint(2, 3, method="wilson"), rel=1e-12
    )
    assert (rates["copy"].won, rates["copy"].lost, rates["copy"].win_rate) == (1, 1, 0.5)
    assert rates[NONE].won == 1
    pricing = rates["pricing"]
    assert (pricing.dnf, pricing.decided, pricing.win_rate, pricing.low) == (1, 0, None, None)


def test_win_rates_by_brief_field_and_quarter() -> None:
    records = [
        record("a", "won", team="growth", decided_at=datetime(2025, 2, 1, tzinfo=UTC)),
        record("b", "lost", team="growth", decided_at=datetime(2025, 3, 31, tzinfo=UTC)),
        record("c", "won", team="", decided_at=datetime(2025, 4, 1, tzinfo=UTC)),
        record("d", "won", funnel_stage="checkout", decided_at=None),
    ]
    teams = {r.group: (r.won, r.lost) for r in win_rates(records, "team")}
    assert teams == {"growth": (1, 1), NONE: (2, 0)}
    quarters = [(r.group, r.decided) for r in win_rates(records, "quarter")]
    assert quarters == [("2025-Q1", 2), ("(none)", 1), ("2025-Q2", 1)]
    stages = [(r.group, r.decided) for r in win_rates(records, "funnel_stage")]
    assert stages == [(NONE, 3), ("checkout", 1)]
    assert win_rates([], "change_type") == []
    with pytest.raises(ValueError):
        win_rates(records, "owner")  # type: ignore[arg-type]


# -- effect distributions ----------------------------------------------------------------------


def history(seed: int, n: int, *, inverse: bool) -> tuple[list[Record], np.ndarray, np.ndarray]:
    """``n`` decided experiments on one metric; returns good-direction effects and ses."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0.01, 0.03, n)
    se = rng.uniform(0.005, 0.03, n)
    good = rng.normal(true, se)
    raw = -good if inverse else good
    records = [
        record(
            f"x{i}",
            "won" if good[i] / se[i] > Z else "lost" if good[i] / se[i] < -Z else "inconclusive",
            [effect("m", raw[i], se[i], inverse=inverse, significance="win" if i % 3 else None)],
        )
        for i in range(n)
    ]
    return records, good, se


@pytest.mark.parametrize("inverse", [False, True])
def test_effect_distribution_prior_matches_statsmodels_dersimonian_laird(inverse: bool) -> None:
    records, good, se = history(5, 40, inverse=inverse)
    [h] = effect_distribution([*records, record("open", None, [effect("m", 9.0)])])
    assert (h.metric, h.inverse, h.n) == ("m", inverse, 40)
    assert [o.effect for o in h.effects] == pytest.approx(good, rel=1e-15)
    assert [o.experiment for o in h.effects] == [f"x{i}" for i in range(40)]
    ref = combine_effects(good, se**2, method_re="dl")
    assert h.prior.proper
    assert h.prior.variance == pytest.approx(ref.tau2, rel=1e-9)
    assert h.prior.mean == pytest.approx(ref.mean_effect_re, rel=1e-9)
    assert h.default_mde == pytest.approx(math.sqrt(ref.mean_effect_re**2 + ref.tau2), rel=1e-9)
    assert h.mean == pytest.approx(np.mean(good))
    assert h.median == pytest.approx(np.median(good))
    assert (h.p10, h.p90) == pytest.approx(tuple(np.quantile(good, [0.1, 0.9])))
    assert h.share_positive == pytest.approx(np.mean(good > 0))
    assert h.share_significant == pytest.approx(sum(1 for i in range(40) if i % 3) / 40)
    assert len(h.histogram) == 10
    assert sum(count for _, _, count in h.histogram) == 40
    assert h.histogram[0][0] == pytest.approx(good.min())
    assert h.histogram[-1][1] == pytest.approx(good.max())
    widths = [hi - lo for lo, hi, _ in h.histogram]
    assert widths == pytest.approx([widths[0]] * 10)


def test_effect_distribution_counts_every_treatment_and_flips_inverse_metrics() -> None:
    records = [
        record(
            "a",
            "won",
            [
                effect("conv", 0.05, variation="b", significance="win"),
                effect("conv", -0.02, variation="c"),
                effect("latency", 0.10, 0.02, variation="b", inverse=True, significance="lose"),
            ],
        ),
        record("b", "dnf", [effect("conv", 0.01, variation="b")]),
        record("c", "lost", [effect("conv", 0.0, 0.0)]),  # no standard error: unusable
    ]
    by_metric = {h.metric: h for h in effect_distribution(records)}
    assert list(by_metric) == ["conv", "latency"]  # most observed first
    conv = by_metric["conv"]
    assert [(o.experiment, o.variation, o.effect) for o in conv.effects] == [
        ("a", "b", 0.05), ("a", "c", -0.02), ("b", "b", 0.01)
    ]  # fmt: skip
    assert conv.share_positive == pytest.approx(2 / 3)
    assert conv.share_significant == pytest.approx(1 / 3)
    latency = by_metric["latency"]
    assert latency.inverse
    assert latency.effects[0].effect == -0.10  # latency up 10% is 10% worse
    assert latency.share_positive == 0.0
    assert latency.share_significant == 1.0
    assert latency.histogram == ((-0.10, -0.10, 1),)


def test_default_mde_needs_three_experiments() -> None:
    two = [record("a", "won", [effect(value=0.2)]), record("b", "lost", [effect(value=-0.2)])]
    [h] = effect_distribution(two)
    assert not h.prior.proper
    assert h.default_mde is None
    three = [*two, record("c", "won", [effect(value=0.15)])]
    [h] = effect_distribution(three)
    assert h.prior.proper
    assert h.default_mde is not None and h.default_mde > 0.1


# -- shrinkage ---------------------------------------------------------------------------------


def test_shrink_is_the_moment_estimator_with_mean_zero() -> None:
    y = [0.05, -0.01, 0.03, 0.12, 0.0]
    se = [0.01, 0.02, 0.015, 0.05, 0.01]
    shrunk, tau2 = shrink(y, se)
    assert tau2 == pytest.approx(dl_tau2_at_zero(y, se), rel=1e-12)
    expected = [yi * tau2 / (tau2 + si**2) for yi, si in zip(y, se, strict=True)]
    assert shrunk == pytest.approx(expected, rel=1e-12)
    assert all(abs(s) <= abs(v) for s, v in zip(shrunk, y, strict=True))


def test_shrink_edge_cases() -> None:
    shrunk, tau2 = shrink([0.05], [0.02])  # one effect: estimated anyway
    assert tau2 == pytest.approx(0.05**2 - 0.02**2)
    assert shrunk[0] == pytest.approx(0.05 - 0.02**2 / 0.05)
    shrunk, tau2 = shrink([0.01, -0.01], [0.02, 0.02])  # within noise: all shrunk to zero
    assert tau2 == 0.0
    assert list(shrunk) == [0.0, 0.0]
    shrunk, tau2 = shrink([], [])
    assert (shrunk.size, tau2) == (0, 0.0)
    with pytest.raises(ValueError):
        shrink([0.1, 0.2], [0.1])
    with pytest.raises(ValueError):
        shrink([0.1], [0.0])
    with pytest.raises(ValueError):
        shrink([math.nan], [0.1])


def test_shrinkage_removes_most_of_the_winners_curse_by_simulation() -> None:
    rng = np.random.default_rng(2024)
    tau = 0.02
    true = rng.normal(0.0, tau, 2000)
    se = rng.uniform(0.01, 0.03, 2000)
    observed = rng.normal(true, se)
    shrunk, tau2 = shrink(observed, se)
    assert tau2 == pytest.approx(tau**2, rel=0.25)
    winners = observed / se > Z  # significant and positive at 5%, two-sided
    assert winners.sum() > 100
    bias_raw = float(np.mean(observed[winners] - true[winners]))
    bias_shrunk = float(np.mean(shrunk[winners] - true[winners]))
    assert bias_raw > 0.01  # the winner's curse is real here: about +100% of the true mean
    assert abs(bias_shrunk) < 0.25 * abs(bias_raw)


# -- cumulative impact -------------------------------------------------------------------------


def test_cumulative_impact_shrinks_with_the_whole_history_and_compounds() -> None:
    rng = np.random.default_rng(11)
    true = rng.normal(0.0, 0.02, 600)
    se = rng.uniform(0.01, 0.03, 600)
    observed = rng.normal(true, se)
    winners = observed / se > Z
    days = rng.permutation(600)
    records = [
        record(
            f"e{i:03d}",
            "won" if winners[i] else "inconclusive",
            [effect("conv", observed[i], se[i])],
            shipped="treatment" if winners[i] else None,
            decided_at=datetime.fromordinal(JAN.toordinal() + int(days[i])).replace(tzinfo=UTC),
        )
        for i in range(600)
    ]
    [series] = cumulative_impact(records)
    expected_shrunk, _ = shrink(observed, se)  # from all 600, not just the winners
    order = sorted(np.flatnonzero(winners), key=lambda i: days[i])
    assert series.tau2 == pytest.approx(dl_tau2_at_zero(observed, se), rel=1e-12)
    assert [imp.experiment for imp in series.impacts] == [f"e{i:03d}" for i in order]
    assert [imp.effect for imp in series.impacts] == pytest.approx(observed[order], rel=1e-15)
    assert [imp.shrunk for imp in series.impacts] == pytest.approx(expected_shrunk[order])
    assert series.total_raw == pytest.approx(np.prod(1 + observed[order]) - 1)
    assert series.total_shrunk == pytest.approx(np.prod(1 + expected_shrunk[order]) - 1)
    assert series.total_shrunk < 0.5 * series.total_raw
    truth = np.prod(1 + true[order]) - 1
    assert abs(series.total_shrunk - truth) < abs(series.total_raw - truth)


def test_cumulative_impact_by_hand_with_an_inverse_metric() -> None:
    history = [record(f"h{i}", "inconclusive", [effect("conv", v, 0.02)]) for i, v in
               enumerate([0.01, -0.03, 0.0, 0.02])]  # fmt: skip
    march, may = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC)
    records = [
        *history,
        record("late", "won", [effect("conv", 0.05, 0.02, variation="v2"),
                               effect("conv", 0.50, 0.02, variation="v1"),  # not shipped
                               effect("latency", -0.10, 0.01, variation="v2", inverse=True)],
               shipped="v2", decided_at=may),
        record("early", "won", [effect("conv", 0.10, 0.02),
                                effect("latency", -0.10, 0.01, inverse=True)],
               shipped="treatment", decided_at=march),
        record("unshipped", "won", [effect("conv", 0.30, 0.02)], decided_at=march),
        record("undated", "won", [effect("conv", 0.02, 0.02)], shipped="treatment",
               decided_at=None),
    ]  # fmt: skip
    series = {s.metric: s for s in cumulative_impact(records)}
    conv = series["conv"]
    conv_y = [0.01, -0.03, 0.0, 0.02, 0.05, 0.50, 0.10, 0.30, 0.02]
    tau2 = dl_tau2_at_zero(conv_y, [0.02] * 9)
    assert conv.tau2 == pytest.approx(tau2)
    assert [i.experiment for i in conv.impacts] == ["early", "late", "undated"]
    assert [i.variation for i in conv.impacts] == ["treatment", "v2", "treatment"]
    shrunk = [y * tau2 / (tau2 + 0.02**2) for y in (0.10, 0.05, 0.02)]
    assert [i.shrunk for i in conv.impacts] == pytest.approx(shrunk)
    assert [i.cumulative_raw for i in conv.impacts] == pytest.approx([0.10, 0.155, 0.1781])
    s1, s2, s3 = shrunk
    running = [s1, (1 + s1) * (1 + s2) - 1, (1 + s1) * (1 + s2) * (1 + s3) - 1]
    assert [i.cumulative_shrunk for i in conv.impacts] == pytest.approx(running)
    assert (conv.total_raw, conv.total_shrunk) == pytest.approx((0.1781, running[-1]))
    latency = series["latency"]
    assert latency.inverse
    assert [i.effect for i in latency.impacts] == [0.10, 0.10]  # good direction
    # Two 10% latency cuts leave 0.9 × 0.9 = 81% of it: 19% better, not 21%.
    assert latency.total_raw == pytest.approx(0.19)
    assert 0 < latency.total_shrunk < latency.total_raw
    assert list(series) == ["conv", "latency"]


# -- leaderboard -------------------------------------------------------------------------------


def test_leaderboard_ranks_by_shrunk_effect_and_credits_owners() -> None:
    history = [record(f"h{i}", "lost", [effect("conv", v, 0.01)], owners=["dana"]) for i, v in
               enumerate([0.06, -0.05, 0.04, -0.07, 0.0, 0.05])]  # fmt: skip
    records = [
        *history,
        # A big but noisy estimate: shrinks a lot.
        record("noisy", "won", [effect("conv", 0.20, 0.10)], shipped="treatment",
               owners=["ann", "bob"], learnings="Bigger buttons, maybe."),
        # A smaller, precise one: barely shrinks, so it ranks first.
        record("precise", "won", [effect("conv", 0.08, 0.01)], shipped="treatment",
               owners=["bob"], learnings="Social proof works at checkout."),
        # Primary metric is lower-is-better.
        record("faster", "won", [effect("load", -0.09, 0.01, inverse=True),
                                 effect("conv", 0.01, 0.01)],
               shipped="treatment", owners=["cyd"], primary="load"),
        record("kept", "won", [effect("conv", 0.03, 0.01)], owners=["cyd"]),  # not shipped
        record("idea", None, owners=["eve"], learnings=""),
        record("notes", None, owners=["eve"], learnings="Came from user research."),
    ]  # fmt: skip
    board = leaderboard(records)
    conv_y = [0.06, -0.05, 0.04, -0.07, 0.0, 0.05, 0.20, 0.08, 0.01, 0.03]
    conv_se = [0.01] * 6 + [0.10] + [0.01] * 3
    tau2 = dl_tau2_at_zero(conv_y, conv_se)
    noisy = 0.20 * tau2 / (tau2 + 0.01)
    precise = 0.08 * tau2 / (tau2 + 0.0001)
    faster = 0.09  # the only "load" observation: τ² = 0.09² − 0.01², shrunk = y·τ²/(τ² + se²)
    faster *= (0.09**2 - 0.01**2) / 0.09**2
    assert [e.experiment for e in board.experiments] == ["faster", "precise", "noisy"]
    assert noisy < precise  # by raw effect (0.20 > 0.09 > 0.08) the order is the reverse
    by_key = {e.experiment: e for e in board.experiments}
    assert by_key["noisy"].effect == 0.20 and by_key["noisy"].shrunk == pytest.approx(noisy)
    assert by_key["precise"].shrunk == pytest.approx(precise)
    assert (by_key["faster"].metric, by_key["faster"].effect) == ("load", 0.09)
    assert by_key["faster"].shrunk == pytest.approx(faster)
    assert by_key["noisy"].owners == ("ann", "bob")
    contributors = [(c.owner, c.experiments, c.wins, c.learnings) for c in board.contributors]
    assert contributors == [
        ("bob", 2, 2, 2), ("cyd", 2, 2, 0), ("ann", 1, 1, 1), ("dana", 6, 0, 0), ("eve", 0, 0, 1)
    ]  # fmt: skip
    impact = {c.owner: c.impact for c in board.contributors}
    assert impact["bob"] == pytest.approx(noisy + precise)
    assert impact["ann"] == pytest.approx(noisy)
    assert impact["cyd"] == pytest.approx(faster)
    assert (impact["eve"], impact["dana"]) == (0.0, 0.0)
    top = leaderboard(records, limit=1)
    assert [e.experiment for e in top.experiments] == ["faster"]
    assert [c.owner for c in top.contributors] == ["bob"]
    with pytest.raises(ValueError):
        leaderboard(records, limit=-1)


def test_contributor_ties_break_on_wins_then_experiments() -> None:
    records = [
        record("a", "won", owners=["zed"]),
        record("b", "lost", owners=["amy"]),
        record("c", "lost", owners=["amy"]),
        record("d", "lost", owners=["bo"]),
    ]
    board = leaderboard(records)
    assert board.experiments == []
    assert [c.owner for c in board.contributors] == ["zed", "amy", "bo"]
