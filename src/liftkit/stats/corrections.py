"""Multiple-comparison corrections across metrics × variations.

- Holm–Bonferroni (Holm 1979) controls the family-wise error rate: sorted p-values p₍ᵢ₎ are
  adjusted to max_{j≤i} min(1, (m − j + 1)·p₍ⱼ₎).
- Benjamini–Hochberg (1995) controls the false discovery rate:
  min_{j≥i} min(1, m·p₍ⱼ₎ / j).

Adjusted intervals: Holm has no simple compatible interval, so the family gets Bonferroni
simultaneous intervals at level 1 − α/m (they cover all effects at once with probability
≥ 1 − α, and are at most slightly wider than Holm's decisions imply). For Benjamini–Hochberg,
intervals at level 1 − Rα/m, with R the number of discoveries, control the false coverage
rate of the selected effects (Benjamini & Yekutieli 2005); R is floored at 1 so the intervals
stay finite when nothing is selected.

Only valid comparisons count towards m: a comparison that could not be computed (it carries
an ``error``) tests nothing and gets an adjusted p-value of 1.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from liftkit.stats._sufficient import FloatArray

__all__ = ["Correction", "benjamini_hochberg", "holm_bonferroni", "interval_alpha"]

Correction = Literal["holm", "bh"]
BoolArray = npt.NDArray[np.bool_]


def _sorted(
    p_values: npt.ArrayLike, valid: BoolArray | None
) -> tuple[BoolArray, npt.NDArray[np.intp], FloatArray, FloatArray]:
    """Valid mask, sort order, sorted p-values (invalid last, as 1) and the family size m."""
    p = np.atleast_1d(np.asarray(p_values, dtype=np.float64))
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must be in [0, 1]")
    ok = np.ones(p.shape, dtype=bool) if valid is None else np.broadcast_to(valid, p.shape)
    order = np.argsort(np.where(ok, p, 2.0), axis=-1, kind="stable")
    p_sorted = np.take_along_axis(np.where(ok, p, 1.0), order, axis=-1)
    m = np.sum(ok, axis=-1, keepdims=True).astype(np.float64)
    return ok, order, p_sorted, m


def _unsort(adjusted_sorted: FloatArray, order: npt.NDArray[np.intp]) -> FloatArray:
    out = np.empty_like(adjusted_sorted)
    np.put_along_axis(out, order, adjusted_sorted, axis=-1)
    return out


def holm_bonferroni(p_values: npt.ArrayLike, valid: BoolArray | None = None) -> FloatArray:
    """Holm-adjusted p-values along the last axis (entries with ``valid=False`` get 1)."""
    ok, order, ps, m = _sorted(p_values, valid)
    rank = np.arange(1, ps.shape[-1] + 1, dtype=np.float64)
    factor = np.maximum(m - rank + 1.0, 1.0)
    adjusted = np.minimum(np.maximum.accumulate(ps * factor, axis=-1), 1.0)
    out = np.where(ok, _unsort(adjusted, order), 1.0)
    return out.reshape(np.shape(p_values))


def benjamini_hochberg(p_values: npt.ArrayLike, valid: BoolArray | None = None) -> FloatArray:
    """Benjamini–Hochberg-adjusted p-values along the last axis (``valid=False`` gets 1)."""
    ok, order, ps, m = _sorted(p_values, valid)
    rank = np.arange(1, ps.shape[-1] + 1, dtype=np.float64)
    scaled = ps * m / rank
    adjusted = np.minimum(np.minimum.accumulate(scaled[..., ::-1], axis=-1)[..., ::-1], 1.0)
    out = np.where(ok, _unsort(adjusted, order), 1.0)
    return out.reshape(np.shape(p_values))


def interval_alpha(
    method: Correction,
    adjusted: FloatArray,
    alpha: float,
    valid: BoolArray,
) -> FloatArray:
    """Per-comparison α for the family's intervals (see the module docstring)."""
    m = np.maximum(np.sum(valid, axis=-1, keepdims=True), 1).astype(np.float64)
    if method == "holm":
        return np.broadcast_to(alpha / m, adjusted.shape).copy()
    discoveries = np.sum(valid & (adjusted <= alpha), axis=-1, keepdims=True)
    r = np.maximum(discoveries, 1).astype(np.float64)
    return np.broadcast_to(alpha * r / m, adjusted.shape).copy()
