"""Dispatch on the statistics type: both arms' moments plus type-specific problems."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from liftkit.stats import _errors, cuped, quantile
from liftkit.stats._moments import ArmMoments, mean_moments, proportion_moments, ratio_arm
from liftkit.stats._sufficient import (
    CupedMeanStats,
    CupedRatioStats,
    MeanStats,
    ProportionStats,
    QuantileStats,
    RatioStats,
    SufficientStats,
)

__all__ = ["Issues", "pair_moments"]

Issues = list[tuple[int, npt.NDArray[np.bool_]]]


def pair_moments(
    control: SufficientStats, treatment: SufficientStats
) -> tuple[ArmMoments, ArmMoments, Issues]:
    """Moments of both arms plus (code, mask) problems specific to the metric type."""
    if type(control) is not type(treatment):
        raise ValueError(
            "control and treatment must be statistics of one type, got "
            f"{type(control).__name__} and {type(treatment).__name__}"
        )
    issues: Issues = []
    if isinstance(control, MeanStats) and isinstance(treatment, MeanStats):
        a, b = mean_moments(control), mean_moments(treatment)
    elif isinstance(control, ProportionStats) and isinstance(treatment, ProportionStats):
        a, b = proportion_moments(control), proportion_moments(treatment)
    elif isinstance(control, RatioStats) and isinstance(treatment, RatioStats):
        (a, da), (b, db) = ratio_arm(control), ratio_arm(treatment)
        issues.append((_errors.ZERO_DENOMINATOR, (da == 0) | (db == 0)))
    elif isinstance(control, CupedMeanStats) and isinstance(treatment, CupedMeanStats):
        a, b = cuped.adjusted_mean_moments(control, treatment)
    elif isinstance(control, CupedRatioStats) and isinstance(treatment, CupedRatioStats):
        a, b, zero_den = cuped.adjusted_ratio_moments(control, treatment)
        issues.append((_errors.ZERO_DENOMINATOR, zero_den))
    elif isinstance(control, QuantileStats) and isinstance(treatment, QuantileStats):
        a, b = quantile.quantile_moments(control), quantile.quantile_moments(treatment)
        too_few = quantile.too_few_units(control) | quantile.too_few_units(treatment)
        issues.append((_errors.QUANTILE_TOO_FEW_UNITS, too_few))
    else:  # pragma: no cover - the type check above makes this unreachable
        raise ValueError(f"unsupported statistics type {type(control).__name__}")
    return a, b, issues
