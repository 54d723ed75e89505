"""Result types: a frozen dataclass per comparison and a struct-of-arrays for many.

Degenerate comparisons (``error`` set) carry the limit of an infinitely uncertain estimate
centred on zero, so nothing is NaN and nothing looks significant: ``effect`` 0, ``se`` and
``ci_high`` +∞, ``ci_low`` −∞, ``p_value`` 1, ``chance_to_win`` ½ and both risks +∞ (the loss
of either decision is unbounded when the data say nothing). Check ``error`` before reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from liftkit.stats import _errors
from liftkit.stats._sufficient import FloatArray

__all__ = ["ComparisonResult", "ComparisonResults", "GuardrailResult", "GuardrailResults"]


@dataclass(frozen=True)
class ComparisonResult:
    """One treatment compared with its control on one metric.

    ``effect`` is relative (0.05 = +5%) or absolute per ``difference``; for the Bayesian
    engine it is the posterior mean and ``ci_low``/``ci_high`` bound the credible interval.
    ``p_value`` is set by the frequentist engine (adjusted when a correction was applied;
    ``p_value_unadjusted`` keeps the raw one); ``chance_to_win`` and the two risks by the
    Bayesian engine. ``error`` explains why nothing could be estimated (None otherwise).
    """

    effect: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float | None
    p_value_unadjusted: float | None
    chance_to_win: float | None
    risk_control: float | None
    risk_treatment: float | None
    control_mean: float
    treatment_mean: float
    control_n: float
    treatment_n: float
    engine: str
    difference: str
    alternative: str
    sequential: bool
    error: str | None

    @property
    def risk(self) -> tuple[float, float] | None:
        """(expected loss of keeping control, expected loss of shipping the treatment)."""
        if self.risk_control is None or self.risk_treatment is None:
            return None
        return (self.risk_control, self.risk_treatment)

    @property
    def ok(self) -> bool:
        return self.error is None


def _opt(arr: FloatArray | None, index: Any) -> float | None:
    return None if arr is None else float(arr[index])


@dataclass(frozen=True)
class ComparisonResults:
    """Many comparisons at once: every array field has the shape of the input."""

    effect: FloatArray
    se: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray | None
    p_value_unadjusted: FloatArray | None
    chance_to_win: FloatArray | None
    risk_control: FloatArray | None
    risk_treatment: FloatArray | None
    control_mean: FloatArray
    treatment_mean: FloatArray
    control_n: FloatArray
    treatment_n: FloatArray
    error_code: npt.NDArray[np.int8]
    engine: str
    difference: str
    alternative: str
    sequential: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.effect.shape)

    @property
    def error(self) -> npt.NDArray[np.object_]:
        """Per comparison: the reason it could not be computed, or None."""
        return _errors.messages(self.error_code)

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = self.error_code == _errors.OK
        return out

    def item(self, index: Any = ()) -> ComparisonResult:
        """The comparison at ``index`` as a :class:`ComparisonResult`."""
        message = _errors.MESSAGES[int(self.error_code[index])]
        return ComparisonResult(
            effect=float(self.effect[index]),
            se=float(self.se[index]),
            ci_low=float(self.ci_low[index]),
            ci_high=float(self.ci_high[index]),
            p_value=_opt(self.p_value, index),
            p_value_unadjusted=_opt(self.p_value_unadjusted, index),
            chance_to_win=_opt(self.chance_to_win, index),
            risk_control=_opt(self.risk_control, index),
            risk_treatment=_opt(self.risk_treatment, index),
            control_mean=float(self.control_mean[index]),
            treatment_mean=float(self.treatment_mean[index]),
            control_n=float(self.control_n[index]),
            treatment_n=float(self.treatment_n[index]),
            engine=self.engine,
            difference=self.difference,
            alternative=self.alternative,
            sequential=self.sequential,
            error=message,
        )

    def __getitem__(self, index: Any) -> ComparisonResult:
        return self.item(index)


@dataclass(frozen=True)
class GuardrailResult:
    """Non-inferiority of one treatment: is its effect better than ``-margin``?"""

    comparison: ComparisonResult
    margin: float
    non_inferior: bool


@dataclass(frozen=True)
class GuardrailResults:
    """Non-inferiority of many treatments; ``non_inferior`` is False where ``error`` is set."""

    comparison: ComparisonResults
    margin: float
    non_inferior: npt.NDArray[np.bool_]

    def item(self, index: Any = ()) -> GuardrailResult:
        return GuardrailResult(
            comparison=self.comparison.item(index),
            margin=self.margin,
            non_inferior=bool(self.non_inferior[index]),
        )
