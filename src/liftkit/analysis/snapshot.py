"""A result snapshot: everything one analysis run found, declared once.

The API serves it as JSON, the CLI prints it as a table (or JSON / CSV), the dashboard and the
playbooks read it, and a notebook turns it into a DataFrame with :meth:`Snapshot.to_frame`.
Snapshots are stored, never overwritten: the history of an experiment's results is kept.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Significance = Literal["win", "lose", "neutral"]
Action = Literal["ship", "roll back", "keep running", "stop", "investigate"]


class VariationResult(BaseModel):
    """One variation on one metric. Comparison fields are None for the control (baseline).

    ``effect`` and its interval are relative (0.05 = +5%); ``absolute_effect`` is the difference
    in the metric's own units. ``risk`` is the expected loss of shipping this variation
    (Bayesian engine). ``non_inferior`` is set on guardrail metrics.
    """

    variation: str
    units: int
    value: float
    baseline: float | None = None
    effect: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    absolute_effect: float | None = None
    absolute_ci_low: float | None = None
    absolute_ci_high: float | None = None
    p_value: float | None = None
    chance_to_win: float | None = None
    risk: float | None = None
    significance: Significance | None = None
    non_inferior: bool | None = None
    error: str | None = None


class MetricResult(BaseModel):
    metric: str
    name: str
    type: str
    role: str
    inverse: bool
    cuped: bool
    variations: list[VariationResult]


class Slice(BaseModel):
    """Results for the units of one dimension value (top values by units, then "(other)")."""

    dimension: str
    value: str
    units: int
    metrics: list[MetricResult]


class SeriesPoint(BaseModel):
    """Cumulative effect of a treatment for units exposed up to ``date`` (novelty effects)."""

    date: date
    metric: str
    variation: str
    units: int
    effect: float | None
    ci_low: float | None
    ci_high: float | None


class Health(BaseModel):
    units: dict[str, int]
    expected_shares: dict[str, float]
    srm_p_value: float | None
    srm: bool
    multiple_exposures: int
    multiple_exposure_share: float
    low_power: list[str] = Field(default_factory=list)
    too_little_data: bool = False
    warnings: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.srm or self.too_little_data or self.multiple_exposure_share > 0.01)


class Decision(BaseModel):
    """What a person should do next, and why, in one line."""

    action: Action
    variation: str | None = None
    reason: str
    days_left: int | None = None


class Snapshot(BaseModel):
    id: int | None = None
    experiment: str
    phase: int
    created_at: datetime
    created_by: str
    start: datetime
    end: datetime
    datasource: str
    dialect: str
    engine: str
    sequential: bool
    correction: str
    alpha: float
    variations: list[str]
    health: Health
    decision: Decision
    results: list[MetricResult]
    dimensions: list[Slice] = Field(default_factory=list)
    series: list[SeriesPoint] = Field(default_factory=list)
    #: The sufficient statistics per metric × variation, as the warehouse returned them.
    statistics: list[dict[str, Any]] = Field(default_factory=list)
    #: The SQL that ran, by name (``main``, then one per quantile metric).
    queries: dict[str, str] = Field(default_factory=dict)
    seconds: float = 0.0

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per metric × variation (CSV output, DataFrames)."""
        out = []
        for metric in self.results:
            for v in metric.variations:
                out.append(
                    {
                        "experiment": self.experiment,
                        "metric": metric.metric,
                        "role": metric.role,
                        **v.model_dump(),
                    }
                )
        return out

    def to_frame(self) -> Any:
        """The rows as a pandas DataFrame (pandas is imported only when this is called)."""
        import pandas  # type: ignore[import-untyped]

        return pandas.DataFrame(self.rows())
