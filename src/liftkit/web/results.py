"""An experiment's results: the stored snapshot, read exactly as the API serves it.

The page shows one snapshot (the latest, or one picked from the history): health banners first
(sample-ratio mismatch and the analysis's other warnings, because an unhealthy test's numbers
are not to be acted on), then per metric role a table of every treatment against control, the
breakdown by each dimension the analysis was asked for, and the cumulative effect by exposure
date. The series is the one the analysis computes (``Snapshot.series``: each day's effect over
every unit exposed up to that day), not a re-derivation from older snapshots.

Every number cell carries ``data-metric``, ``data-variation``, ``data-field`` and the raw
``data-value``, so tests (and people with a script) can compare the page with
``GET /api/v1/snapshots/{id}``.
"""

import math
from collections.abc import Iterable
from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from liftkit.analysis import MetricResult, SeriesPoint, Snapshot
from liftkit.analysis import store as snapshots
from liftkit.api.objects import MAX_INT
from liftkit.registry.errors import NotFound
from liftkit.web._core import Viewer, Web
from liftkit.web.experiment_common import load

ROLE_TITLES = (
    ("primary", "Primary metrics"),
    ("secondary", "Secondary metrics"),
    ("guardrail", "Guardrails"),
)

#: A snapshot's id in the picker (bounded like the API's, so a huge id is a 422, not a 500).
SnapshotQuery = Annotated[int | None, Query(ge=1, le=MAX_INT)]


def tone(significance: str | None) -> str:
    """Row and CI-bar colour: the analysis already turned inverse metrics' effects around."""
    return {"win": "good", "lose": "bad"}.get(significance or "", "neutral")


def scale_of(metrics: Iterable[MetricResult]) -> float:
    """One axis for every CI bar of a table, wide enough for the widest finite interval."""
    widest = 0.0
    for metric in metrics:
        for v in metric.variations[1:]:
            for x in (v.effect, v.ci_low, v.ci_high):
                if x is not None and math.isfinite(x):
                    widest = max(widest, abs(x))
    return min(max(widest * 1.1, 0.01), 5.0)


def chart_specs(snapshot: Snapshot) -> list[dict[str, Any]]:
    """Per metric, the cumulative relative effect of each treatment by exposure date."""
    by_metric: dict[str, list[SeriesPoint]] = {}
    for point in snapshot.series:
        by_metric.setdefault(point.metric, []).append(point)
    names = {m.metric: m.name or m.metric for m in snapshot.results}
    specs = []
    for metric, points in by_metric.items():
        days = sorted({p.date for p in points})
        x = [int(datetime.combine(d, time(), UTC).timestamp()) for d in days]
        series = []
        for variation in snapshot.variations[1:]:
            at = {p.date: p for p in points if p.variation == variation}
            if not at:
                continue
            series.append(
                {
                    "label": variation,
                    "values": [_get(at, d, "effect") for d in days],
                    "lower": [_get(at, d, "ci_low") for d in days],
                    "upper": [_get(at, d, "ci_high") for d in days],
                }
            )
        rows = sorted(points, key=lambda p: (p.date, p.variation))
        specs.append(
            {
                "metric": metric,
                "name": names.get(metric, metric),
                "spec": {"x": x, "series": series, "percent": True, "y_label": "effect"},
                "rows": rows,
            }
        )
    return specs


def _get(at: dict[Any, SeriesPoint], day: Any, field: str) -> float | None:
    point = at.get(day)
    value = None if point is None else getattr(point, field)
    return value if value is None or math.isfinite(value) else None


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    platform = web.platform
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    @r.get("/experiments/{key}/results")
    def results_page(
        request: Request, viewer: Current, key: str, snapshot: SnapshotQuery = None
    ) -> Response:
        experiment = load(platform.registry, viewer, key)
        history = snapshots.history(platform.engine, key, limit=100)
        shown = history[0] if history else None
        if snapshot is not None:
            shown = next((s for s in history if s.id == snapshot), None)
            shown = shown or snapshots.get(platform.engine, snapshot)
            if shown is None or shown.experiment != key:
                raise NotFound(f"experiment {key!r} has no snapshot {snapshot}")
        groups = []
        if shown is not None:
            for role, title in ROLE_TITLES:
                found = [m for m in shown.results if m.role == role]
                if found:
                    groups.append((role, title, found, scale_of(found)))
        dimensions: dict[str, list[Any]] = {}
        for piece in shown.dimensions if shown is not None else []:
            dimensions.setdefault(piece.dimension, []).append(piece)
        return web.render(
            request,
            "experiments/results.html",
            viewer,
            e=experiment,
            snapshot=shown,
            history=history,
            groups=groups,
            dimensions={
                name: (pieces, scale_of(m for p in pieces for m in p.metrics))
                for name, pieces in dimensions.items()
            },
            charts=chart_specs(shown) if shown is not None else [],
            tone=tone,
            can_analyse=viewer.can("analyst", experiment.project),
        )

    return r
