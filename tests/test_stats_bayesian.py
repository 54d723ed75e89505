"""Bayesian engine: gbstats equality, independent integrals for risk, learned priors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.bayesian.tests import GaussianPrior as GbPrior
from statsmodels.stats.meta_analysis import combine_effects

from liftkit.stats import GaussianPrior, MeanStats, compare, learn_prior, simulate
from stats_oracles import (
    close,
    random_mean_stats,
    random_pair,
    sims,
    to_gbstats,
)

PRIORS = [
    GaussianPrior(proper=False),
    GaussianPrior(mean=0.0, variance=0.3**2),
    GaussianPrior(mean=0.05, variance=0.01),
]


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("difference", ["relative", "absolute"])
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("kind", ["mean", "proportion", "ratio"])
def test_matches_gbstats(prior: GaussianPrior, difference: str, inverse: bool, kind: str) -> None:
    rng = np.random.default_rng(21)
    for _ in range(8):
        a, b = random_pair(rng, kind)
        config = EffectBayesianConfig(
            difference_type=difference,
            inverse=inverse,
            prior_type="relative",
            prior_effect=GbPrior(mean=prior.mean, variance=prior.variance, proper=prior.proper),
        )
        ref = EffectBayesianABTest(to_gbstats(a), to_gbstats(b), config).compute_result()
        res = compare(
            a,
            b,
            engine="bayesian",
            difference=difference,
            prior=prior,
            inverse=inverse,  # type: ignore[arg-type]
        )
        assert res.error is None and ref.error_message is None
        assert close(res.effect, ref.expected)
        assert close(res.se, ref.uplift.stddev)
        assert close(res.ci_low, ref.ci[0]) and close(res.ci_high, ref.ci[1])
        assert close(res.chance_to_win, ref.chance_to_win, atol=1e-12)  # type: ignore[arg-type]
        # gbstats' truncated-normal route loses relative precision for tiny risks.
        assert close(res.risk_control, ref.risk[0], atol=1e-10)  # type: ignore[arg-type]
        assert close(res.risk_treatment, ref.risk[1], atol=1e-10)  # type: ignore[arg-type]


def test_risk_and_chance_to_win_match_numerical_integration() -> None:
    rng = np.random.default_rng(22)
    for _ in range(10):
        a, b = random_mean_stats(rng, 500), random_mean_stats(rng, 500)
        res = compare(a, b, engine="bayesian", difference="absolute")
        mu, sd = res.effect, res.se
        dist = scipy.stats.norm(mu, sd)
        lo, hi = mu - 12 * sd, mu + 12 * sd
        gain = scipy.integrate.quad(lambda x, d=dist: x * d.pdf(x), 0, max(hi, 0), points=[mu])[0]
        loss = scipy.integrate.quad(lambda x, d=dist: -x * d.pdf(x), min(lo, 0), 0, points=[mu])[0]
        assert close(res.risk_control, gain, rtol=1e-6, atol=1e-9 * sd)  # type: ignore[arg-type]
        assert close(res.risk_treatment, loss, rtol=1e-6, atol=1e-9 * sd)  # type: ignore[arg-type]
        assert close(res.chance_to_win, dist.sf(0.0))  # type: ignore[arg-type]


def test_absolute_prior_on_relative_effect_is_rescaled() -> None:
    a = MeanStats(n=1000, sum=10000.0, sum_squares=100000.0 + 9.0 * 999)
    b = MeanStats(n=1000, sum=10300.0, sum_squares=10300.0**2 / 1000 + 9.0 * 999)
    # A prior of N(0, 0.5²) on the absolute scale is N(0, 0.05²) relative at a mean of 10.
    absolute = compare(a, b, engine="bayesian", prior=GaussianPrior(0.0, 0.25, relative=False))
    relative = compare(a, b, engine="bayesian", prior=GaussianPrior(0.0, 0.0025))
    assert close(absolute.effect, relative.effect) and close(absolute.se, relative.se)


def test_proper_prior_shrinks_towards_its_mean() -> None:
    a = MeanStats(n=200, sum=2000.0, sum_squares=20000.0 + 9.0 * 199)
    b = MeanStats(n=200, sum=2200.0, sum_squares=2200.0**2 / 200 + 9.0 * 199)
    flat = compare(a, b, engine="bayesian")
    tight = compare(a, b, engine="bayesian", prior=GaussianPrior(0.0, 0.01**2))
    assert 0 < tight.effect < flat.effect and tight.se < flat.se


def test_flat_prior_credible_intervals_cover_the_planted_effect() -> None:
    """95% credible intervals under a flat prior are calibrated: 95% ± 1.5% (≈ 10 binomial SE
    at the 20,000 simulations run here; sufficient statistics are drawn directly)."""
    n = sims(20000, 200000)
    assert abs(simulate.coverage(n, engine="bayesian", seed=3) - 0.95) <= 0.015


def test_learned_prior_matches_statsmodels_dersimonian_laird() -> None:
    rng = np.random.default_rng(23)
    true = rng.normal(0.02, 0.03, 40)
    se = rng.uniform(0.005, 0.03, 40)
    observed = rng.normal(true, se)
    prior = learn_prior(observed, se)
    ref = combine_effects(observed, se**2, method_re="dl")
    assert prior.proper
    assert close(prior.variance, ref.tau2, rtol=1e-9)
    assert close(prior.mean, ref.mean_effect_re, rtol=1e-9)


def test_learned_prior_is_flat_without_evidence_of_spread() -> None:
    se = np.full(10, 0.05)
    identical = np.full(10, 0.01)
    assert not learn_prior(identical, se).proper
    assert not learn_prior([0.1, 0.2], [0.05, 0.05]).proper
    with pytest.raises(ValueError):
        learn_prior([0.1, 0.2, 0.3], [0.05, 0.0, 0.05])


def test_improper_prior_arguments() -> None:
    with pytest.raises(ValueError):
        GaussianPrior(mean=0.0, variance=0.0, proper=True)
    GaussianPrior(mean=0.0, variance=0.0, proper=False)  # flat: the variance is unused
