"""Sample-ratio mismatch: do the units per variation match the configured traffic split?

Pearson's chi-square goodness-of-fit test of the observed counts against ``weights``: with
Eᵢ = wᵢ/Σw · N, X² = Σ (Oᵢ − Eᵢ)²/Eᵢ is χ² with k − 1 degrees of freedom under a correct split.
A mismatch usually means a bug in assignment or logging that biases every metric, so the
default threshold is strict (p < 0.001, as GrowthBook and Fabijan et al. 2019 recommend):
at ~daily checks it keeps false alarms rare while real mismatches give tiny p-values quickly.

A variation with weight 0 but units in it is a certain mismatch (p = 0); variations with
weight 0 and no units are left out (and do not count towards the degrees of freedom).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from liftkit.stats._sufficient import FloatArray

__all__ = ["DEFAULT_THRESHOLD", "SrmResult", "SrmResults", "srm_check", "srm_check_many"]

DEFAULT_THRESHOLD = 0.001
NO_UNITS = "no units in any variation"
ONE_VARIATION = "fewer than two variations with traffic: nothing to compare"


@dataclass(frozen=True)
class SrmResult:
    """SRM check of one experiment (or dimension slice)."""

    p_value: float
    statistic: float
    dof: int
    flagged: bool
    expected: tuple[float, ...]
    error: str | None


@dataclass(frozen=True)
class SrmResults:
    """SRM checks of many slices: arrays over the leading axes of the counts."""

    p_value: FloatArray
    statistic: FloatArray
    dof: npt.NDArray[np.int64]
    flagged: npt.NDArray[np.bool_]
    expected: FloatArray
    error: npt.NDArray[np.object_]

    def item(self, index: Any = ()) -> SrmResult:
        return SrmResult(
            p_value=float(self.p_value[index]),
            statistic=float(self.statistic[index]),
            dof=int(self.dof[index]),
            flagged=bool(self.flagged[index]),
            expected=tuple(float(e) for e in self.expected[index]),
            error=self.error[index],
        )


def srm_check_many(
    counts: npt.ArrayLike, weights: npt.ArrayLike, *, threshold: float = DEFAULT_THRESHOLD
) -> SrmResults:
    """Chi-square SRM test along the last axis of ``counts`` (units per variation)."""
    obs = np.asarray(counts, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if obs.ndim == 0 or obs.shape[-1] < 1:
        raise ValueError("counts needs one entry per variation along its last axis")
    if not (np.all(np.isfinite(obs)) and np.all(obs >= 0)):
        raise ValueError("counts must be finite and >= 0")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0)):
        raise ValueError("weights must be finite and >= 0")
    w = np.broadcast_to(w, obs.shape)
    w_total = w.sum(axis=-1, keepdims=True)
    if np.any(w_total <= 0):
        raise ValueError("weights must not all be zero")
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be in (0, 1)")
    total = obs.sum(axis=-1, keepdims=True)
    expected = w / w_total * total
    active = w > 0
    terms = np.zeros(obs.shape)
    np.divide((obs - expected) ** 2, expected, out=terms, where=active & (expected > 0))
    statistic = terms.sum(axis=-1)
    dof = active.sum(axis=-1) - 1
    impossible = np.any(~active & (obs > 0), axis=-1)
    p = np.where(dof > 0, special.chdtrc(np.maximum(dof, 1), statistic), 1.0)
    p = np.where(impossible, 0.0, p)
    statistic = np.where(impossible, np.inf, statistic)
    empty = total[..., 0] == 0
    p = np.where(empty, 1.0, p)
    one_variation = (dof < 1) & ~impossible
    error = np.full(p.shape, None, dtype=object)
    error[one_variation] = ONE_VARIATION
    error[empty] = NO_UNITS
    return SrmResults(
        p_value=p,
        statistic=statistic,
        dof=dof.astype(np.int64),
        flagged=(p < threshold) & ~one_variation & ~empty,
        expected=expected,
        error=error,
    )


def srm_check(
    counts: npt.ArrayLike, weights: npt.ArrayLike, *, threshold: float = DEFAULT_THRESHOLD
) -> SrmResult:
    """Chi-square SRM test of one experiment: ``counts`` and ``weights`` per variation."""
    if np.ndim(counts) != 1:
        raise ValueError("srm_check takes one count per variation; see srm_check_many")
    return srm_check_many(counts, weights, threshold=threshold).item(())
