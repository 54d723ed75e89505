"""Outlier handling at the unit level: capping (fixed thresholds) and winsorisation (quantiles).

A few extreme units (bots, bulk buyers) can dominate a mean's variance and hide real effects.
Capping each unit's value before aggregation trades a little bias for much less variance
(Kohavi, Tang & Xu 2020, ch. 22). Thresholds must be set from both arms pooled (or from
pre-experiment data) so the same cap applies to every variation; capping per arm would bias the
comparison. The warehouse applies the same rule in SQL before computing sufficient statistics;
these helpers do it for in-memory data and define the semantics the SQL must match.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from liftkit.stats._sufficient import FloatArray

__all__ = ["cap", "winsorize"]


def cap(
    values: npt.ArrayLike, *, upper: float | None = None, lower: float | None = None
) -> FloatArray:
    """Clip each value into [lower, upper] (either bound may be omitted)."""
    x = np.asarray(values, dtype=np.float64)
    if upper is not None and lower is not None and lower > upper:
        raise ValueError("lower must not exceed upper")
    return np.asarray(np.clip(x, lower, upper), dtype=np.float64)


def winsorize(
    values: npt.ArrayLike,
    *,
    upper_quantile: float | None = 0.99,
    lower_quantile: float | None = None,
) -> FloatArray:
    """Cap values at empirical quantiles of ``values`` themselves (pass both arms pooled).

    Quantiles use the inverse empirical CDF ("lower" interpolation is not used: the threshold is
    an observed value, as ``PERCENTILE_DISC`` returns in SQL).
    """
    x = np.asarray(values, dtype=np.float64)
    for q in (upper_quantile, lower_quantile):
        if q is not None and not 0.0 <= q <= 1.0:
            raise ValueError("quantiles must be in [0, 1]")
    if x.size == 0:
        return x
    upper = (
        None
        if upper_quantile is None
        else float(np.quantile(x, upper_quantile, method="inverted_cdf"))
    )
    lower = (
        None
        if lower_quantile is None
        else float(np.quantile(x, lower_quantile, method="inverted_cdf"))
    )
    return cap(x, upper=upper, lower=lower)
