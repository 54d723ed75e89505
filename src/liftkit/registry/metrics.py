"""Fact tables and metrics: what experiments are measured by.

They are stored and versioned here; turning them into warehouse SQL is the analysis layer's job.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from liftkit.registry._base import Fraction, Key, Model, ProjectObject


class FactColumn(Model):
    name: str = Field(min_length=1)
    datatype: Literal["number", "string", "boolean", "date"] = "number"


class FactTable(ProjectObject):
    """A SQL SELECT over the warehouse with a timestamp and one or more identifier columns."""

    datasource: Key = "events"
    sql: str = Field(min_length=1)
    timestamp_column: str = "timestamp"
    identifier_columns: list[str] = Field(default_factory=lambda: ["user_id"], min_length=1)
    columns: list[FactColumn] = Field(default_factory=list)


Aggregation = Literal["count", "sum", "max", "count_distinct"]


class MetricSource(Model):
    """A column of a fact table (``$$count`` counts rows), aggregated per unit."""

    fact_table: Key
    column: str = "$$count"
    aggregation: Aggregation = "sum"
    #: SQL boolean expressions over the fact table's columns, all of which must hold.
    filters: list[str] = Field(default_factory=list)


class Window(Model):
    """Conversion window (from exposure, after a delay) or lookback window (before analysis)."""

    type: Literal["none", "conversion", "lookback"] = "none"
    delay_hours: float = Field(0.0, ge=0)
    hours: float | None = Field(None, gt=0)


class Capping(Model):
    type: Literal["none", "absolute", "percentile"] = "none"
    value: float | None = Field(None, gt=0)


class Metric(ProjectObject):
    """Proportion, mean, ratio, quantile or retention over fact tables."""

    type: Literal["proportion", "mean", "ratio", "quantile", "retention"] = "proportion"
    numerator: MetricSource
    denominator: MetricSource | None = None
    quantile: Fraction | None = None
    quantile_level: Literal["unit", "event"] = "unit"
    #: Lower is better (e.g. latency, churn).
    inverse: bool = False
    window: Window = Field(default_factory=Window)
    capping: Capping = Field(default_factory=Capping)
    cuped: bool = True
    cuped_lookback_days: int = Field(14, ge=1)
    min_sample_size: int = Field(0, ge=0)
    #: Retention: the unit counts if it converts between these days after exposure.
    retention_days: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Metric:
        if self.type == "ratio" and self.denominator is None:
            raise ValueError("denominator: a ratio metric needs one")
        if self.type != "ratio" and self.denominator is not None:
            raise ValueError("denominator: only ratio metrics have one")
        if self.type == "quantile" and self.quantile is None:
            raise ValueError("quantile: a quantile metric needs the quantile (e.g. 0.9)")
        if self.type == "retention" and self.retention_days is None:
            raise ValueError("retention_days: a retention metric needs [start, end] days")
        if self.capping.type != "none" and self.capping.value is None:
            raise ValueError("capping.value: required when capping")
        return self
