"""liftkit.analysis: experiment → warehouse SQL → sufficient statistics → stored snapshot.

``run(platform, "experiment-key")`` is the whole pipeline; ``plan_experiment`` and
``liftkit.analysis.sql`` expose the SQL it would run, in any dialect, without running it.
"""

from liftkit.analysis.plan import Plan, PlanError, build_plan
from liftkit.analysis.runner import analyse, plan_experiment, run
from liftkit.analysis.snapshot import (
    Decision,
    Health,
    MetricResult,
    SeriesPoint,
    Slice,
    Snapshot,
    VariationResult,
)
from liftkit.analysis.store import get, history, latest

__all__ = [
    "Decision",
    "Health",
    "MetricResult",
    "Plan",
    "PlanError",
    "SeriesPoint",
    "Slice",
    "Snapshot",
    "VariationResult",
    "analyse",
    "build_plan",
    "get",
    "history",
    "latest",
    "plan_experiment",
    "run",
]
