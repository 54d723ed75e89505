"""Live exposure counters: units per running experiment and variation as events arrive.

The counts are the event pipeline's in-memory counters (``Pipeline.live``), the same numbers
``GET /api/v1/events/live`` returns, with the live SRM check. The table is a fragment the page
polls every two seconds; the rates (units per minute) come from the difference between the
counts this process saw on earlier polls, kept for a minute.
"""

import time
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from liftkit.events import LiveCounts
from liftkit.registry.experiments import Experiment
from liftkit.web._core import Viewer, Web

#: How far back the rate of new units looks (seconds).
RATE_WINDOW = 60.0


@dataclass(frozen=True)
class Arm:
    """One variation's row of the live table."""

    index: int
    key: str
    name: str
    units: int
    share: float | None
    expected: float | None
    per_minute: float | None


class Rates:
    """Recent totals per experiment and variation, for units-per-minute rates."""

    def __init__(self) -> None:
        self.samples: dict[str, deque[tuple[float, tuple[int, ...]]]] = {}

    def observe(self, experiment: str, units: tuple[int, ...], now: float) -> list[float | None]:
        history = self.samples.setdefault(experiment, deque())
        while history and now - history[0][0] > RATE_WINDOW:
            history.popleft()
        rates: list[float | None] = [None] * len(units)
        if history and now - history[0][0] >= 1.0:
            then, before = history[0]
            minutes = (now - then) / 60
            for i, count in enumerate(units):
                old = before[i] if i < len(before) else 0
                rates[i] = max(0, count - old) / minutes
        history.append((now, units))
        return rates


def _arms(
    counts: LiveCounts, experiment: Experiment | None, rates: list[float | None]
) -> list[Arm]:
    total = sum(counts.units)
    arms = []
    for i, units in enumerate(counts.units):
        variation = (
            experiment.variations[i] if experiment and i < len(experiment.variations) else None
        )
        weights = counts.weights
        arms.append(
            Arm(
                index=i,
                key=variation.key if variation else str(i),
                name=(variation.name or variation.key) if variation else f"variation {i}",
                units=units,
                share=units / total if total else None,
                expected=weights[i] if weights and i < len(weights) else None,
                per_minute=rates[i] if i < len(rates) else None,
            )
        )
    return arms


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    registry = web.platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias
    rates = Rates()

    def counters(viewer: Viewer) -> dict[str, Any]:
        viewer.principal.require_anywhere("viewer", "reading exposures")
        pipeline = web.pipeline
        if pipeline is None:
            return {"available": False, "reason": "this server has no event pipeline"}
        experiments = {e.key: e for e in registry.all("experiments")}
        now = time.monotonic()
        rows = []
        seen = set()
        for counts in pipeline.live():
            found = experiments.get(counts.experiment)
            project = found.project if found else None
            if not viewer.sees(project):
                continue
            seen.add(counts.experiment)
            arms = _arms(counts, found, rates.observe(counts.experiment, counts.units, now))
            rows.append({"counts": counts, "experiment": found, "arms": arms})
        waiting = [
            e
            for e in experiments.values()
            if e.status == "running" and e.key not in seen and viewer.sees(e.project)
        ]
        status = pipeline.status() if pipeline.started else None
        return {
            "available": True,
            "running": pipeline.started,
            "reason": None if pipeline.started else pipeline.not_running,
            "rows": rows,
            "waiting": waiting,
            "status": status,
        }

    @r.get("/live")
    def live_page(request: Request, viewer: Current) -> Response:
        return web.render(request, "live/page.html", viewer, **counters(viewer))

    @r.get("/live/counters")
    def live_counters(request: Request, viewer: Current) -> Response:
        return web.render(request, "live/_counters.html", viewer, **counters(viewer))

    return r
