"""Bayesian comparison: a Gaussian posterior on the effect (gbstats' "effect" model).

The data enter through the same estimate Δ̂ and sampling variance V as the frequentist test
(asymptotically normal likelihood). With a proper prior N(m, v) the posterior is normal with
precision 1/V + 1/v and mean (Δ̂/V + m/v) / (1/V + 1/v); an improper (flat) prior leaves
N(Δ̂, V). From it:

- chance to win P(Δ > 0) = Φ(μ/σ) (P(Δ < 0) for metrics where lower is better);
- the credible interval μ ± z₁₋α/₂ σ;
- expected loss ("risk") of each decision (Stucchio 2015; gbstats): shipping the treatment
  loses E[max(−Δ, 0)] = σφ(μ/σ) − μΦ(−μ/σ), keeping control loses E[max(Δ, 0)] =
  σφ(μ/σ) + μΦ(μ/σ) (swapped for lower-is-better metrics).

Priors are stated on the relative scale by default (as gbstats does, "a 10% lift is
plausible" is portable across metrics); for absolute effects they are rescaled by the control
mean. :func:`learn_prior` estimates a prior from past experiments' effects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from liftkit.stats._sufficient import FloatArray

__all__ = ["GaussianPrior", "chance_to_win", "learn_prior", "posterior", "risk"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class GaussianPrior:
    """Normal prior N(mean, variance) on the effect; ``proper=False`` means flat (improper).

    ``relative=True``: stated as a relative effect (0.1 = +10%) and rescaled by |control mean|
    when comparing absolute differences; ``relative=False``: stated in the metric's units.
    """

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = True
    relative: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.variance)):
            raise ValueError("prior mean and variance must be finite")
        if self.proper and self.variance <= 0:
            raise ValueError("a proper prior needs a positive variance")


def posterior(
    effect: FloatArray,
    variance: FloatArray,
    prior_mean: FloatArray | float,
    prior_variance: FloatArray | float,
    proper: bool,
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and standard deviation of the effect."""
    if not proper:
        return effect, np.sqrt(variance)
    precision = 1.0 / variance + 1.0 / np.asarray(prior_variance, dtype=np.float64)
    mean = (effect / variance + np.asarray(prior_mean) / prior_variance) / precision
    return mean, np.sqrt(1.0 / precision)


def chance_to_win(mean: FloatArray, sd: FloatArray, *, inverse: bool) -> FloatArray:
    """P(effect > 0), or P(effect < 0) when lower is better."""
    z = mean / sd
    out: FloatArray = special.ndtr(-z if inverse else z)
    return out


def risk(mean: FloatArray, sd: FloatArray, *, inverse: bool) -> tuple[FloatArray, FloatArray]:
    """Expected loss of (keeping control, shipping treatment), in the effect's units."""
    z = mean / sd
    density = sd * _INV_SQRT_2PI * np.exp(-0.5 * z**2)
    loss_control = density + mean * special.ndtr(z)  # E[max(Δ, 0)]
    loss_treatment = density - mean * special.ndtr(-z)  # E[max(−Δ, 0)]
    # Cancellation can leave tiny negatives for far-from-zero posteriors; losses are >= 0.
    loss_control, loss_treatment = np.maximum(loss_control, 0.0), np.maximum(loss_treatment, 0.0)
    if inverse:
        return loss_treatment, loss_control
    return loss_control, loss_treatment


def learn_prior(effects: npt.ArrayLike, standard_errors: npt.ArrayLike) -> GaussianPrior:
    """A prior for the next experiment, from past experiments' effects on the same metric.

    Random-effects meta-analysis (DerSimonian & Laird 1986): the true effects are modelled as
    N(μ, τ²); τ² is the between-experiment variance beyond sampling noise, estimated by the
    method of moments, μ by precision weighting. The prior is N(μ, τ²). With fewer than three
    experiments, or no detectable spread (τ² = 0, which would be a point mass), the history
    does not justify a proper prior and a flat one is returned.
    """
    y = np.asarray(effects, dtype=np.float64).ravel()
    se = np.asarray(standard_errors, dtype=np.float64).ravel()
    if y.shape != se.shape:
        raise ValueError("effects and standard_errors must have the same length")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(se)) and np.all(se > 0)):
        raise ValueError("effects must be finite and standard errors finite and positive")
    if y.size < 3:
        return GaussianPrior(proper=False)
    w = 1.0 / se**2
    mu_fixed = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - mu_fixed) ** 2))
    c = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2 = max(0.0, (q - (y.size - 1)) / c) if c > 0 else 0.0
    if tau2 <= 0.0:
        return GaussianPrior(proper=False)
    w_random = 1.0 / (se**2 + tau2)
    mu = float(np.sum(w_random * y) / np.sum(w_random))
    return GaussianPrior(mean=mu, variance=tau2, proper=True, relative=True)
