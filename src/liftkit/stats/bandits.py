"""Multi-armed bandits: Thompson-sampling traffic weights from Gaussian posteriors.

Thompson sampling (Thompson 1933; Chapelle & Li 2011) sends each arm the share of traffic equal
to the posterior probability that it is the best arm. Those probabilities are estimated by
drawing from every arm's posterior at once and counting which arm wins each draw. A minimum
share per arm keeps every arm observed, so a posterior that is wrong early can still recover:
weights are ``min_share + (1 − k·min_share)·P(best)``, which sum to one and keep the ordering.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from liftkit.stats._moments import ArmMoments
from liftkit.stats._pairs import pair_moments
from liftkit.stats._sufficient import FloatArray, SufficientStats

__all__ = ["arm_posteriors", "thompson_weights"]


def arm_posteriors(arms: Sequence[SufficientStats]) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and variance of each arm's mean under a flat prior: N(x̄, s²/n).

    Arms with fewer than two units have no usable posterior: mean 0, variance +∞.
    """
    means, variances = [], []
    for arm in arms:
        with np.errstate(all="ignore"):  # n < 2 gives NaN moments; replaced below
            moments: ArmMoments = pair_moments(arm, arm)[0]
            usable = (moments.n >= 2) & np.isfinite(moments.mean) & np.isfinite(moments.variance)
            means.append(np.where(usable, moments.mean, 0.0))
            variances.append(np.where(usable, moments.variance / moments.n, np.inf))
    return np.stack(means, axis=-1), np.stack(variances, axis=-1)


def thompson_weights(
    means: npt.ArrayLike,
    variances: npt.ArrayLike,
    *,
    min_share: float = 0.01,
    inverse: bool = False,
    draws: int = 10_000,
    seed: int | np.random.Generator | None = 0,
) -> FloatArray:
    """Traffic weight per arm (last axis) from Gaussian posteriors N(means, variances).

    ``inverse``: lower is better. While any arm has infinite variance (no data yet) the
    weights are equal. ``seed`` fixes the draws so the same data give the same weights.
    """
    mu = np.asarray(means, dtype=np.float64)
    var = np.asarray(variances, dtype=np.float64)
    if mu.shape != var.shape or mu.ndim == 0:
        raise ValueError("means and variances need the same shape, arms on the last axis")
    k = mu.shape[-1]
    if not 0.0 <= min_share * k <= 1.0:
        raise ValueError("min_share times the number of arms must be in [0, 1]")
    if draws < 1:
        raise ValueError("draws must be >= 1")
    if not np.all(np.isfinite(mu)) or np.any(np.isnan(var)) or np.any(var < 0):
        raise ValueError("means must be numbers and variances >= 0")
    rng = np.random.default_rng(seed)
    no_data = ~np.isfinite(var)
    sd = np.sqrt(np.where(no_data, 0.0, var))
    sample = mu + sd * rng.standard_normal((draws, *mu.shape))
    winners = np.argmax(-sample if inverse else sample, axis=-1)
    p_best = np.stack([np.mean(winners == i, axis=0) for i in range(k)], axis=-1)
    # Until every arm has data there is nothing to exploit: share traffic equally.
    p_best = np.where(np.any(no_data, axis=-1, keepdims=True), 1.0 / k, p_best)
    return np.asarray(min_share + (1.0 - k * min_share) * p_best, dtype=np.float64)
