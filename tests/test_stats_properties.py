"""Property tests (hypothesis): invariances and no NaN on any valid input."""

from __future__ import annotations

import math
import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liftkit.stats import MeanStats, ProportionStats, compare

ENGINES = [
    {"engine": "frequentist"},
    {"engine": "frequentist", "sequential_tuning": 5000.0},
    {"engine": "bayesian"},
]


def _magnitudes(low: float, high: float, realistic: bool) -> st.SearchStrategy[float]:
    if not realistic:  # anything a float can hold, subnormals included
        return st.floats(low, high, allow_nan=False)
    # Realistic units: exactly zero, or at least 1e-6 in size (no subnormal underflow).
    return st.one_of(
        st.just(0.0),
        st.floats(1e-6, high),
        st.floats(low, -1e-6) if low < 0 else st.floats(1e-6, high),
    )


@st.composite
def mean_stats(draw: st.DrawFn, realistic: bool = False) -> MeanStats:
    n = draw(st.integers(0, 10**7))
    mean = draw(_magnitudes(-1e6, 1e6, realistic))
    var = draw(_magnitudes(0.0, 1e8, realistic))
    sum_ = n * mean
    # Σx² = (n − 1)s² + n x̄²: coherent statistics of some real sample.
    return MeanStats(n=float(n), sum=sum_, sum_squares=max(n - 1, 0) * var + n * mean**2)


@st.composite
def proportion_stats(draw: st.DrawFn) -> ProportionStats:
    n = draw(st.integers(0, 10**7))
    return ProportionStats(n=float(n), sum=float(draw(st.integers(0, n))))


def _fields(res: object, with_means: bool = True) -> list[float]:
    out = []
    names = (
        "effect",
        "se",
        "ci_low",
        "ci_high",
        "p_value",
        "chance_to_win",
        "risk_control",
        "risk_treatment",
    ) + (("control_mean", "treatment_mean") if with_means else ())
    for name in names:
        value = getattr(res, name)
        if value is not None:
            out.append(value)
    return out


@settings(max_examples=300, deadline=None)
@given(a=st.one_of(mean_stats(), proportion_stats()), data=st.data())
def test_no_nan_and_no_warning_on_valid_input(a: object, data: st.DataObject) -> None:
    b = data.draw(mean_stats() if isinstance(a, MeanStats) else proportion_stats())
    for kwargs in ENGINES:
        for difference in ("relative", "absolute"):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                res = compare(a, b, difference=difference, **kwargs)  # type: ignore[arg-type]
            assert not any(math.isnan(v) for v in _fields(res))
            if res.error is None:
                assert res.ci_low <= res.effect <= res.ci_high and res.se > 0


@settings(max_examples=200, deadline=None)
@given(a=mean_stats(realistic=True), b=mean_stats(realistic=True))
def test_swapping_arms_flips_the_sign(a: MeanStats, b: MeanStats) -> None:
    ab = compare(a, b, difference="absolute")
    ba = compare(b, a, difference="absolute")
    if ab.error is None:
        assert math.isclose(ab.effect, -ba.effect, rel_tol=1e-9, abs_tol=1e-9 * ab.se)
        assert math.isclose(ab.ci_low, -ba.ci_high, rel_tol=1e-9, abs_tol=1e-9 * ab.se)
        assert math.isclose(ab.p_value, ba.p_value, rel_tol=1e-9, abs_tol=1e-12)  # type: ignore[arg-type]
    rel_ab, rel_ba = compare(a, b), compare(b, a)
    if rel_ab.error is None and rel_ba.error is None and a.sum > 0 and b.sum > 0:
        assert np.sign(rel_ab.effect) == -np.sign(rel_ba.effect)
    bay_ab = compare(a, b, engine="bayesian", difference="absolute")
    bay_ba = compare(b, a, engine="bayesian", difference="absolute")
    if bay_ab.error is None:
        assert math.isclose(bay_ab.chance_to_win, 1 - bay_ba.chance_to_win, abs_tol=1e-12)  # type: ignore[arg-type, operator]
        assert math.isclose(bay_ab.risk_control, bay_ba.risk_treatment, rel_tol=1e-9, abs_tol=1e-12)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(a=mean_stats(realistic=True), b=mean_stats(realistic=True), scale=st.floats(1e-3, 1e3))
def test_scaling_values_leaves_relative_effects_unchanged(
    a: MeanStats, b: MeanStats, scale: float
) -> None:
    def scaled(s: MeanStats) -> MeanStats:
        return MeanStats(s.n, s.sum * scale, s.sum_squares * scale**2)

    for kwargs in ENGINES:
        base = compare(a, b, **kwargs)  # type: ignore[arg-type]
        other = compare(scaled(a), scaled(b), **kwargs)  # type: ignore[arg-type]
        assert base.error == other.error
        if base.error is None:
            for x, y in zip(_fields(base, False), _fields(other, False), strict=True):
                assert math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)
