"""Fixed-horizon Welch tests, checked against scipy and gbstats on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from gbstats.frequentist.tests import (
    FrequentistConfig,
    OneSidedTreatmentGreaterTTest,
    OneSidedTreatmentLesserTTest,
    TwoSidedTTest,
)

from liftkit.stats import (
    ERROR_MESSAGES,
    MeanStats,
    ProportionStats,
    RatioStats,
    compare,
    compare_many,
    stack,
)
from stats_oracles import (
    close,
    random_mean_stats,
    random_proportion_stats,
    random_ratio_stats,
    to_gbstats,
)


def _welch_inputs(s: MeanStats) -> tuple[float, float, float]:
    mean = s.sum / s.n
    var = (s.sum_squares - s.sum**2 / s.n) / (s.n - 1)
    return mean, float(np.sqrt(var)), float(s.n)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_absolute_effect_matches_scipy_welch(alternative: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b = random_mean_stats(rng), random_mean_stats(rng)
        ma, sa, na = _welch_inputs(a)
        mb, sb, nb = _welch_inputs(b)
        ref = scipy.stats.ttest_ind_from_stats(
            mb, sb, nb, ma, sa, na, equal_var=False, alternative=alternative
        )
        res = compare(a, b, difference="absolute", alternative=alternative)  # type: ignore[arg-type]
        assert res.error is None
        assert close(res.effect, mb - ma)
        assert close(res.p_value, ref.pvalue, atol=1e-14)  # type: ignore[arg-type]


def test_absolute_interval_matches_scipy_welch_interval() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        a, b = random_mean_stats(rng), random_mean_stats(rng)
        ma, sa, na = _welch_inputs(a)
        mb, sb, nb = _welch_inputs(b)
        ref = scipy.stats.ttest_ind_from_stats(mb, sb, nb, ma, sa, na, equal_var=False)
        se = np.sqrt(sa**2 / na + sb**2 / nb)
        assert close(ref.statistic, (mb - ma) / se)
        dof = (sa**2 / na + sb**2 / nb) ** 2 / (
            (sa**2 / na) ** 2 / (na - 1) + (sb**2 / nb) ** 2 / (nb - 1)
        )
        half = scipy.stats.t.ppf(0.975, dof) * se
        res = compare(a, b, difference="absolute")
        assert close(res.ci_low, mb - ma - half)
        assert close(res.ci_high, mb - ma + half)
        assert close(res.se, se)


@pytest.mark.parametrize("difference", ["relative", "absolute"])
@pytest.mark.parametrize("maker", [random_mean_stats, random_proportion_stats, random_ratio_stats])
def test_two_sided_matches_gbstats(difference: str, maker: object) -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        a, b = maker(rng), maker(rng)  # type: ignore[operator]
        ref = TwoSidedTTest(
            to_gbstats(a), to_gbstats(b), FrequentistConfig(difference_type=difference)
        ).compute_result()
        res = compare(a, b, difference=difference)  # type: ignore[arg-type]
        assert res.error is None and ref.error_message is None
        assert close(res.effect, ref.expected)
        assert close(res.ci_low, ref.ci[0]) and close(res.ci_high, ref.ci[1])
        assert close(res.se, ref.uplift.stddev)
        # gbstats computes 1 - cdf, which loses relative precision below ~1e-10.
        assert close(res.p_value, ref.p_value, atol=1e-9)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alternative", "oracle"),
    [("greater", OneSidedTreatmentGreaterTTest), ("less", OneSidedTreatmentLesserTTest)],
)
def test_one_sided_matches_gbstats(alternative: str, oracle: type) -> None:
    rng = np.random.default_rng(4)
    for _ in range(30):
        a, b = random_mean_stats(rng), random_mean_stats(rng)
        ref = oracle(to_gbstats(a), to_gbstats(b), FrequentistConfig()).compute_result()
        res = compare(a, b, alternative=alternative)  # type: ignore[arg-type]
        assert close(res.p_value, ref.p_value, atol=1e-9)  # type: ignore[arg-type]
        if alternative == "greater":
            assert close(res.ci_low, ref.ci[0]) and res.ci_high == ref.ci[1] == np.inf
        else:
            # gbstats 0.8 returns estimate − width as the upper bound of the "lesser" interval
            # (a sign slip, fixed in later gbstats); the correct bound mirrors "greater".
            greater = OneSidedTreatmentGreaterTTest(to_gbstats(a), to_gbstats(b)).compute_result()
            assert res.ci_low == -np.inf
            assert close(res.ci_high, 2 * res.effect - greater.ci[0])


def test_ratio_variance_matches_unit_level_delta_method() -> None:
    """The ratio's variance from sums equals the variance of the linearised unit values."""
    rng = np.random.default_rng(5)
    n = 4000
    d = rng.poisson(2.0, n) + 1.0
    m = rng.gamma(2.0, 3.0, n) * d
    s = RatioStats(n, m.sum(), (m**2).sum(), d.sum(), (d**2).sum(), (m * d).sum())
    ref = compare(s, s, difference="absolute")
    r = m.sum() / d.sum()
    linearised = (m - r * d) / d.mean()  # influence function of Σm/Σd
    expected_se = np.sqrt(2 * linearised.var(ddof=1) / n)
    assert close(ref.se, expected_se, rtol=1e-9)


def test_vectorised_equals_scalar_loop() -> None:
    rng = np.random.default_rng(6)
    controls = [random_mean_stats(rng) for _ in range(24)]
    treatments = [random_mean_stats(rng) for _ in range(24)]
    grid_c = np.array(controls, dtype=object).reshape(4, 3, 2)
    grid_t = np.array(treatments, dtype=object).reshape(4, 3, 2)
    many = compare_many(stack(grid_c), stack(grid_t))
    assert many.shape == (4, 3, 2)
    for idx in np.ndindex(4, 3, 2):
        one = compare(grid_c[idx], grid_t[idx])
        assert many.item(idx) == one


def test_mixed_types_in_one_call() -> None:
    rng = np.random.default_rng(7)
    pairs = [
        (random_mean_stats(rng), random_mean_stats(rng)),
        (random_proportion_stats(rng), random_proportion_stats(rng)),
        (random_ratio_stats(rng), random_ratio_stats(rng)),
        (random_mean_stats(rng), random_mean_stats(rng)),
    ]
    many = compare_many([c for c, _ in pairs], [t for _, t in pairs])
    for i, (c, t) in enumerate(pairs):
        assert many[i] == compare(c, t)


@pytest.mark.parametrize(
    ("control", "treatment", "message_code"),
    [
        (MeanStats(0, 0, 0), MeanStats(10, 5, 10), 1),
        (MeanStats(1, 3, 9), MeanStats(10, 5, 10), 2),
        (ProportionStats(500, 0), ProportionStats(500, 7), 5),  # zero baseline (relative)
        (MeanStats(10, 10, 10), MeanStats(10, 11, 20), 6),  # control constant
        (ProportionStats(100, 100), ProportionStats(100, 100), 6),
        (RatioStats(10, 5, 5, 0, 0, 0), RatioStats(10, 5, 5, 4, 4, 4), 3),
    ],
)
def test_degenerate_inputs_explain_themselves(
    control: object, treatment: object, message_code: int
) -> None:
    for engine in ("frequentist", "bayesian"):
        res = compare(control, treatment, engine=engine)  # type: ignore[arg-type]
        assert res.error == ERROR_MESSAGES[message_code]
        assert res.effect == 0.0
        assert res.ci_low == -np.inf and res.ci_high == np.inf and res.se == np.inf
        if engine == "frequentist":
            assert res.p_value == 1.0
        else:
            assert res.chance_to_win == 0.5 and res.risk == (np.inf, np.inf)
        assert np.isfinite(res.control_mean) and np.isfinite(res.treatment_mean)


def test_zero_baseline_is_fine_for_absolute_effects() -> None:
    a = MeanStats(n=100, sum=0.0, sum_squares=400.0)  # values of both signs averaging 0
    b = MeanStats(n=100, sum=30.0, sum_squares=450.0)
    assert compare(a, b, difference="relative").error is not None
    res = compare(a, b, difference="absolute")
    assert res.error is None and close(res.effect, 0.3)


def test_negative_baseline_keeps_positive_means_higher() -> None:
    a = MeanStats(n=1000, sum=-5000.0, sum_squares=26000.0 + 4 * 999)
    b = MeanStats(n=1000, sum=-4000.0, sum_squares=16000.0 + 4 * 999)
    res = compare(a, b)
    assert res.effect > 0 and close(res.effect, 0.2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"engine": "bayes"},
        {"difference": "ratio"},
        {"alpha": 0.0},
        {"alpha": 1.5},
        {"sequential_tuning": -1.0},
        {"engine": "bayesian", "sequential_tuning": 1000.0},
        {"alternative": "bigger"},
        {"engine": "bayesian", "alternative": "greater"},
    ],
)
def test_invalid_arguments_raise(kwargs: dict[str, object]) -> None:
    a = MeanStats(100, 50.0, 100.0)
    with pytest.raises(ValueError):
        compare(a, a, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda: MeanStats(-1, 0.0, 0.0),
        lambda: MeanStats(10, float("nan"), 1.0),
        lambda: MeanStats(10, 1.0, -1.0),
        lambda: ProportionStats(10, 11),
        lambda: ProportionStats(10, -1),
    ],
)
def test_impossible_statistics_raise(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_mismatched_types_raise() -> None:
    with pytest.raises(ValueError):
        compare(MeanStats(10, 5.0, 10.0), ProportionStats(10, 5))  # type: ignore[arg-type]
