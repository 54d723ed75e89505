"""Sequential confidence sequences and guardrails: gbstats equality, consistency, simulation."""

from __future__ import annotations

import numpy as np
import pytest
from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest

from liftkit.stats import (
    MeanStats,
    compare,
    compare_many,
    non_inferiority,
    non_inferiority_many,
    simulate,
)
from stats_oracles import (
    close,
    random_mean_stats,
    random_proportion_stats,
    random_ratio_stats,
    sims,
    to_gbstats,
)


@pytest.mark.parametrize("difference", ["relative", "absolute"])
@pytest.mark.parametrize("tuning", [500.0, 5000.0, 50000.0])
@pytest.mark.parametrize("maker", [random_mean_stats, random_proportion_stats, random_ratio_stats])
def test_two_sided_matches_gbstats(difference: str, tuning: float, maker: object) -> None:
    rng = np.random.default_rng(11)
    for _ in range(15):
        a, b = maker(rng), maker(rng)  # type: ignore[operator]
        config = SequentialConfig(difference_type=difference, sequential_tuning_parameter=tuning)
        with np.errstate(over="ignore"):  # gbstats' e-value overflows for huge effects (p = 0)
            ref = SequentialTwoSidedTTest(to_gbstats(a), to_gbstats(b), config).compute_result()
        res = compare(a, b, difference=difference, sequential_tuning=tuning)  # type: ignore[arg-type]
        assert res.sequential and res.error is None
        assert close(res.effect, ref.expected)
        assert close(res.ci_low, ref.ci[0]) and close(res.ci_high, ref.ci[1])
        assert close(res.p_value, ref.p_value, atol=1e-12)  # type: ignore[arg-type]


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_p_value_below_alpha_exactly_when_interval_excludes_null(alternative: str) -> None:
    rng = np.random.default_rng(12)
    controls = [random_mean_stats(rng, 2000) for _ in range(400)]
    treatments = [random_mean_stats(rng, 2000) for _ in range(400)]
    for alpha in (0.01, 0.05, 0.2):
        res = compare_many(
            controls, treatments, sequential_tuning=4000.0, alpha=alpha, alternative=alternative
        )
        assert res.p_value is not None
        excludes = (res.ci_low > 0) | (res.ci_high < 0)
        assert np.array_equal(res.p_value < alpha, excludes)
        assert 0 < excludes.sum() < 400  # both outcomes occur, so the check has teeth


def test_confidence_sequence_is_wider_than_fixed_interval() -> None:
    rng = np.random.default_rng(13)
    a, b = random_mean_stats(rng, 3000), random_mean_stats(rng, 3000)
    fixed = compare(a, b)
    for tuning in (100.0, 6000.0, 1e6):
        seq = compare(a, b, sequential_tuning=tuning)
        assert seq.ci_high - seq.ci_low > fixed.ci_high - fixed.ci_low
        assert seq.p_value >= fixed.p_value  # type: ignore[operator]


def test_tuning_at_the_actual_sample_size_gives_the_narrowest_interval() -> None:
    rng = np.random.default_rng(14)
    a, b = random_mean_stats(rng, 5000), random_mean_stats(rng, 5000)
    widths = {t: compare(a, b, sequential_tuning=t) for t in (1000.0, 10000.0, 100000.0)}
    width = {t: r.ci_high - r.ci_low for t, r in widths.items()}
    assert width[10000.0] < width[1000.0] and width[10000.0] < width[100000.0]


def test_one_sided_sequential_is_tighter_than_two_sided_on_its_side() -> None:
    rng = np.random.default_rng(15)
    a, b = random_mean_stats(rng, 3000), random_mean_stats(rng, 3000)
    two = compare(a, b, sequential_tuning=6000.0)
    one = compare(a, b, sequential_tuning=6000.0, alternative="greater")
    assert two.ci_low < one.ci_low < one.effect and one.ci_high == np.inf


def test_peeking_daily_keeps_the_sequential_false_positive_rate() -> None:
    """20 looks at an A/A test, stopping at the first p < 0.05.

    Sequential must stay ≤ 5% (the guarantee is time-uniform; its expected value here is ~1%,
    so even +3 binomial SE stays far below 5%). Repeated t-tests inflate to ~25% (Armitage,
    McPherson & Rowe 1969), so > 15% holds by a margin of > 10 SE. The last look alone is a
    single fixed-horizon test: 5% ± 1% (6.5 binomial SE at the 20,000 simulations run here).
    """
    rates = simulate.peeking_false_positive_rates(sims(20000, 100000), looks=20, n_per_look=100)
    assert rates.sequential <= 0.05
    assert rates.naive > 0.15
    assert abs(rates.final_look_only - 0.05) <= 0.01


def test_one_sided_sequential_false_positive_rate_under_peeking() -> None:
    rng = np.random.default_rng(16)
    looks, n_sims = 20, sims(2000, 50000)
    a = simulate.normal_stats(rng, 100, 10.0, 3.0, (looks, n_sims))
    b = simulate.normal_stats(rng, 100, 10.0, 3.0, (looks, n_sims))
    cum = [
        MeanStats(np.cumsum(s.n, 0), np.cumsum(s.sum, 0), np.cumsum(s.sum_squares, 0))
        for s in (a, b)
    ]
    res = compare_many(cum[0], cum[1], sequential_tuning=4000.0, alternative="greater")
    assert res.p_value is not None
    assert np.mean(np.any(res.p_value < 0.05, axis=0)) <= 0.05


def test_non_inferiority_decisions() -> None:
    a = MeanStats(n=20000, sum=200000.0, sum_squares=200000.0 * 10 + 9.0 * 19999)
    slightly_worse = MeanStats(n=20000, sum=199000.0, sum_squares=199000.0 * 9.95 + 9.0 * 19999)
    much_worse = MeanStats(n=20000, sum=180000.0, sum_squares=180000.0 * 9 + 9.0 * 19999)
    ok = non_inferiority(a, slightly_worse, margin=0.02)
    assert ok.non_inferior and ok.comparison.p_value < 0.05  # type: ignore[operator]
    assert ok.comparison.ci_low > -0.02
    bad = non_inferiority(a, much_worse, margin=0.02)
    assert not bad.non_inferior
    # Lower-is-better metric (e.g. latency): an increase of 0.5% is within a 2% margin.
    assert non_inferiority(a, slightly_worse, margin=0.02, higher_is_better=False).non_inferior
    assert not non_inferiority(much_worse, a, margin=0.02, higher_is_better=False).non_inferior


def test_sequential_non_inferiority_is_more_cautious_than_fixed() -> None:
    rng = np.random.default_rng(17)
    controls = [random_mean_stats(rng, 3000) for _ in range(300)]
    treatments = [random_mean_stats(rng, 3000) for _ in range(300)]
    fixed = non_inferiority_many(controls, treatments, margin=0.05)
    seq = non_inferiority_many(controls, treatments, margin=0.05, sequential_tuning=6000.0)
    assert np.all(fixed.non_inferior[seq.non_inferior])  # sequential passes ⊂ fixed passes
    assert seq.non_inferior.sum() < fixed.non_inferior.sum()


def test_non_inferiority_error_rate_at_the_margin() -> None:
    """True effect exactly −margin: the test may pass at most α of the time (2 SE slack)."""
    rng = np.random.default_rng(18)
    n_sims = sims(20000, 200000)  # ± 1% is 6.5 binomial SE at 20,000
    a = simulate.normal_stats(rng, 2000, 10.0, 3.0, n_sims)
    b = simulate.normal_stats(rng, 2000, 9.8, 3.0, n_sims)  # −2%
    fixed = non_inferiority_many(a, b, margin=0.02)
    assert abs(fixed.non_inferior.mean() - 0.05) <= 0.01
    seq = non_inferiority_many(a, b, margin=0.02, sequential_tuning=4000.0)
    assert seq.non_inferior.mean() <= 0.05


def test_non_inferiority_rejects_negative_margin() -> None:
    a = MeanStats(100, 50.0, 100.0)
    with pytest.raises(ValueError):
        non_inferiority(a, a, margin=-0.1)
