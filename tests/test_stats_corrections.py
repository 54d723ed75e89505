"""Holm and Benjamini–Hochberg: statsmodels equality, families, intervals, error rates."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from liftkit.stats import (
    MeanStats,
    benjamini_hochberg,
    compare_many,
    holm_bonferroni,
    simulate,
)
from stats_oracles import sims


@pytest.mark.parametrize(
    ("ours", "method"), [(holm_bonferroni, "holm"), (benjamini_hochberg, "fdr_bh")]
)
def test_matches_statsmodels(ours: object, method: str) -> None:
    rng = np.random.default_rng(61)
    for m in (1, 2, 7, 40):
        p = np.concatenate([rng.uniform(0, 1, m), rng.uniform(0, 0.01, m)])
        p[rng.integers(0, p.size)] = p[0]  # a tie
        expected = multipletests(p, method=method)[1]
        np.testing.assert_allclose(ours(p), expected, rtol=1e-12)  # type: ignore[operator]


def test_invalid_entries_are_left_out_of_the_family() -> None:
    p = np.array([0.01, 0.02, 0.5, 0.03])
    valid = np.array([True, True, False, True])
    np.testing.assert_allclose(
        holm_bonferroni(p, valid)[valid], multipletests(p[valid], method="holm")[1]
    )
    assert holm_bonferroni(p, valid)[2] == 1.0
    with pytest.raises(ValueError):
        holm_bonferroni([0.5, 1.5])


def _family(
    rng: np.random.Generator, shape: tuple[int, ...], lift: float = 0.0
) -> tuple[MeanStats, MeanStats]:
    a = simulate.normal_stats(rng, 500, 10.0, 3.0, shape)
    b = simulate.normal_stats(rng, 500, 10.0 * (1 + lift), 3.0, shape)
    return a, b


def test_correction_in_compare_many_over_chosen_axes() -> None:
    rng = np.random.default_rng(62)
    a, b = _family(rng, (6, 2, 3), lift=0.02)  # metrics × variations × dimensions
    raw = compare_many(a, b)
    per_dim = compare_many(a, b, correction="holm", correction_axes=(0, 1))
    assert raw.p_value is not None and per_dim.p_value is not None
    for d in range(3):
        expected = multipletests(raw.p_value[:, :, d].ravel(), method="holm")[1]
        np.testing.assert_allclose(per_dim.p_value[:, :, d].ravel(), expected, rtol=1e-12)
    np.testing.assert_array_equal(per_dim.p_value_unadjusted, raw.p_value)
    everything = compare_many(a, b, correction="bh")
    assert everything.p_value is not None
    expected = multipletests(raw.p_value.ravel(), method="fdr_bh")[1]
    np.testing.assert_allclose(everything.p_value.ravel(), expected, rtol=1e-12)


def test_adjusted_intervals_use_the_adjusted_level() -> None:
    rng = np.random.default_rng(63)
    a, b = _family(rng, (10,), lift=0.03)
    bonferroni = compare_many(a, b, alpha=0.05 / 10)
    holm = compare_many(a, b, correction="holm")
    np.testing.assert_allclose(holm.ci_low, bonferroni.ci_low)
    bh = compare_many(a, b, correction="bh")
    assert bh.p_value is not None
    r = max(int(np.sum(bh.p_value <= 0.05)), 1)
    fcr = compare_many(a, b, alpha=0.05 * r / 10)
    np.testing.assert_allclose(bh.ci_high, fcr.ci_high)


def test_family_wise_error_rate_under_holm() -> None:
    """10 null metrics per experiment: P(any rejection) ≈ 40% raw, ≤ 5% (+2 SE) with Holm."""
    rng = np.random.default_rng(64)
    n_sims = sims(2000, 20000)
    a, b = _family(rng, (n_sims, 10))
    raw = compare_many(a, b)
    holm = compare_many(a, b, correction="holm", correction_axes=(1,))
    assert raw.p_value is not None and holm.p_value is not None
    assert np.mean(np.any(raw.p_value < 0.05, axis=1)) > 0.3
    assert np.mean(np.any(holm.p_value < 0.05, axis=1)) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n_sims)


def test_corrections_need_p_values() -> None:
    a = MeanStats(100, 50.0, 100.0)
    with pytest.raises(ValueError):
        compare_many(a, a, engine="bayesian", correction="holm")
    with pytest.raises(ValueError):
        compare_many(a, a, correction="sidak")  # type: ignore[arg-type]
