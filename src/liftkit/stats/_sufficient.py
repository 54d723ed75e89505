"""Sufficient statistics: what the warehouse returns for each variation of each metric.

Every class is a frozen dataclass whose fields are either numbers (one variation of one metric)
or numpy arrays of one common shape (every metric × variation × dimension at once). The
arithmetic downstream is the same for both, which is what keeps the scalar API a thin wrapper
over the vectorised one.

Validation rejects input that cannot come from real data (negative counts, NaN, a proportion
above 1) with ``ValueError``; input that is real but uninformative (n < 2, zero variance) is
accepted here and reported by the tests as an ``error`` on the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
# A number, or an array with one entry per metric × variation × dimension.
Value = float | FloatArray

__all__ = [
    "CupedMeanStats",
    "CupedRatioStats",
    "FloatArray",
    "MeanStats",
    "ProportionStats",
    "QuantileStats",
    "RatioStats",
    "SufficientStats",
    "Value",
    "stack",
]


def _as_float(x: Any) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _validate(obj: object, non_negative: tuple[str, ...]) -> None:
    """Reject values that no query over real data can produce."""
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if value is None:
            continue
        arr = _as_float(value)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{type(obj).__name__}.{f.name} must be finite, got {value!r}")
        if f.name in non_negative and np.any(arr < 0):
            raise ValueError(f"{type(obj).__name__}.{f.name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class MeanStats:
    """A mean metric: ``n`` units, the sum of their values and the sum of squared values."""

    n: Value
    sum: Value
    sum_squares: Value

    def __post_init__(self) -> None:
        _validate(self, ("n", "sum_squares"))


@dataclass(frozen=True)
class ProportionStats:
    """A binomial metric: ``sum`` of ``n`` units converted (so ``0 <= sum <= n``).

    The variance is ``p(1 - p)`` (no ``n - 1`` correction), as in gbstats.
    """

    n: Value
    sum: Value

    def __post_init__(self) -> None:
        _validate(self, ("n", "sum"))
        if np.any(_as_float(self.sum) > _as_float(self.n)):
            raise ValueError("ProportionStats.sum must not exceed n")


@dataclass(frozen=True)
class RatioStats:
    """A ratio metric (e.g. revenue per session) over ``n`` randomisation units.

    Per unit: numerator ``m`` and denominator ``d``; the warehouse returns their sums, sums of
    squares and the sum of products ``Σ m·d``, which the delta method needs.
    """

    n: Value
    numerator_sum: Value
    numerator_sum_squares: Value
    denominator_sum: Value
    denominator_sum_squares: Value
    sum_products: Value

    def __post_init__(self) -> None:
        _validate(self, ("n", "numerator_sum_squares", "denominator_sum_squares"))


@dataclass(frozen=True)
class CupedMeanStats:
    """A mean metric with its pre-exposure covariate (CUPED): post sums, pre sums, Σ post·pre."""

    n: Value
    sum: Value
    sum_squares: Value
    pre_sum: Value
    pre_sum_squares: Value
    sum_products: Value

    def __post_init__(self) -> None:
        _validate(self, ("n", "sum_squares", "pre_sum_squares"))


@dataclass(frozen=True)
class CupedRatioStats:
    """A ratio metric with the same ratio measured before exposure (CUPED for ratios).

    Four per-unit variables: post numerator ``m``, post denominator ``d``, pre numerator ``x``
    and pre denominator ``y``: their sums, sums of squares and all six sums of products.
    """

    n: Value
    numerator_sum: Value
    numerator_sum_squares: Value
    denominator_sum: Value
    denominator_sum_squares: Value
    pre_numerator_sum: Value
    pre_numerator_sum_squares: Value
    pre_denominator_sum: Value
    pre_denominator_sum_squares: Value
    numerator_denominator_products: Value  # Σ m·d
    numerator_pre_numerator_products: Value  # Σ m·x
    numerator_pre_denominator_products: Value  # Σ m·y
    denominator_pre_numerator_products: Value  # Σ d·x
    denominator_pre_denominator_products: Value  # Σ d·y
    pre_numerator_pre_denominator_products: Value  # Σ x·y

    def __post_init__(self) -> None:
        _validate(
            self,
            (
                "n",
                "numerator_sum_squares",
                "denominator_sum_squares",
                "pre_numerator_sum_squares",
                "pre_denominator_sum_squares",
            ),
        )


@dataclass(frozen=True)
class QuantileStats:
    """A unit-level quantile metric: the estimate and the order statistics its interval needs.

    ``quantile`` estimates the ``nu``-quantile from ``n`` units; ``quantile_lower`` and
    ``quantile_upper`` are the order statistics that bound a 95% distribution-free interval for
    it computed from ``n_star`` units (``n_star`` defaults to ``n``; a warehouse that samples
    passes the sample size). :func:`liftkit.stats.quantile_stats_from_values` shows exactly which
    order statistics those are.
    """

    n: Value
    nu: Value
    quantile: Value
    quantile_lower: Value
    quantile_upper: Value
    n_star: Value | None = None

    def __post_init__(self) -> None:
        _validate(self, ("n", "n_star"))
        nu = _as_float(self.nu)
        if np.any((nu <= 0) | (nu >= 1)):
            raise ValueError("QuantileStats.nu must be in (0, 1)")
        if np.any(_as_float(self.quantile_lower) > _as_float(self.quantile_upper)):
            raise ValueError("QuantileStats.quantile_lower must not exceed quantile_upper")


SufficientStats = (
    MeanStats | ProportionStats | RatioStats | CupedMeanStats | CupedRatioStats | QuantileStats
)
S = TypeVar(
    "S", MeanStats, ProportionStats, RatioStats, CupedMeanStats, CupedRatioStats, QuantileStats
)


def stack(items: Sequence[S] | npt.NDArray[np.object_]) -> S:
    """Turn a (nested) sequence of scalar statistics of one type into one array-valued object.

    The shape of ``items`` is kept: a ``metrics × dimensions`` list of lists becomes fields of
    that shape.
    """
    arr = np.empty(np.shape(np.asarray(items, dtype=object)), dtype=object)
    arr[...] = np.asarray(items, dtype=object)
    if arr.size == 0:
        raise ValueError("stack() needs at least one item")
    cls: type[S] = type(arr.flat[0])
    for item in arr.flat:
        if type(item) is not cls:
            raise ValueError(
                f"stack() needs items of one type, got {cls.__name__} and {type(item).__name__}"
            )
    values: dict[str, Any] = {}
    for f in fields(cls):
        column = [getattr(item, f.name) for item in arr.flat]
        if f.name == "n_star" and any(c is None for c in column):
            column = [item.n if item.n_star is None else item.n_star for item in arr.flat]
        values[f.name] = np.asarray(column, dtype=np.float64).reshape(arr.shape)
    return cls(**values)
