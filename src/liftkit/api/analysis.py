"""Experiment analysis over HTTP: run one, read snapshots, see the SQL.

- ``POST /api/v1/experiments/{key}/snapshots``: analyse now (analyst), 201 with the snapshot;
- ``GET /api/v1/experiments/{key}/snapshots``: the history, newest first (summaries);
- ``GET /api/v1/experiments/{key}/snapshots/latest`` and ``GET /api/v1/snapshots/{id}``;
- ``GET /api/v1/experiments/{key}/sql?dialect=…``: the analysis SQL, rendered, not run.

A run is synchronous (queries take seconds on the embedded store) and happens in a worker
thread, so the event loop keeps serving.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from liftkit.analysis import PlanError, Snapshot, plan_experiment, run
from liftkit.analysis import sql as analysis_sql
from liftkit.analysis import store as snapshots
from liftkit.analysis.snapshot import Decision
from liftkit.api.auth import Authenticator, Principal
from liftkit.api.errors import RESPONSES, field_error
from liftkit.api.objects import MAX_INT
from liftkit.platform import Platform
from liftkit.registry.datasources import DIALECTS

SnapshotId = Annotated[int, Path(ge=1, le=MAX_INT, description="The snapshot's id.")]


class SnapshotSummary(BaseModel):
    id: int
    experiment: str
    created_at: datetime
    created_by: str
    decision: Decision
    units: dict[str, int]
    srm_p_value: float | None
    warnings: list[str]


class SnapshotList(BaseModel):
    items: list[SnapshotSummary]


def _summary(s: Snapshot) -> SnapshotSummary:
    assert s.id is not None
    return SnapshotSummary(
        id=s.id,
        experiment=s.experiment,
        created_at=s.created_at,
        created_by=s.created_by,
        decision=s.decision,
        units=s.health.units,
        srm_p_value=s.health.srm_p_value,
        warnings=s.health.warnings,
    )


async def run_analysis(platform: Platform, key: str, actor: str) -> Snapshot:
    """Analyse ``key`` now in a worker thread; a plan the analysis cannot run is a 400 and a
    failing warehouse a 502, for the API and the dashboard alike. Roles are the caller's job."""
    from liftkit.warehouse import WarehouseError

    try:
        return await run_in_threadpool(run, platform, key, actor=actor)
    except PlanError as exc:
        raise HTTPException(400, str(exc)) from None
    except WarehouseError as exc:
        raise HTTPException(502, f"the warehouse query failed: {exc}") from None


def analysis_router(platform: Platform, auth: Authenticator) -> APIRouter:
    Caller = Annotated[Principal, Depends(auth)]  # noqa: N806 (a type alias, named like one)
    router = APIRouter(tags=["analysis"], responses=RESPONSES)
    registry = platform.registry

    def project(key: str) -> str | None:
        return getattr(registry.get("experiments", key), "project", None)

    @router.post(
        "/experiments/{key}/snapshots",
        status_code=201,
        operation_id="analyse_experiment",
        summary="Analyse the experiment now and store the snapshot",
        responses={400: {"description": "The experiment cannot be analysed as configured"}},
    )
    async def analyse(key: str, principal: Caller) -> Snapshot:
        principal.require("analyst", project(key), "analysing an experiment")
        return await run_analysis(platform, key, principal.actor)

    @router.get(
        "/experiments/{key}/snapshots",
        operation_id="list_snapshots",
        summary="The experiment's analysis history, newest first",
    )
    def history(
        key: str, principal: Caller, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> SnapshotList:
        principal.require("viewer", project(key), "reading results")
        items = snapshots.history(platform.engine, key, limit=limit)
        return SnapshotList(items=[_summary(s) for s in items])

    @router.get(
        "/experiments/{key}/snapshots/latest",
        operation_id="latest_snapshot",
        summary="The experiment's most recent snapshot",
    )
    def latest(key: str, principal: Caller) -> Snapshot:
        principal.require("viewer", project(key), "reading results")
        found = snapshots.latest(platform.engine, key)
        if found is None:
            raise HTTPException(404, f"experiment {key!r} has not been analysed yet")
        return found

    @router.get(
        "/snapshots/{snapshot_id}", operation_id="get_snapshot", summary="One snapshot by id"
    )
    def one(snapshot_id: SnapshotId, principal: Caller) -> Snapshot:
        found = snapshots.get(platform.engine, snapshot_id)
        if found is None:
            raise HTTPException(404, f"snapshot {snapshot_id} does not exist")
        # A deleted experiment's snapshots stay readable, by those who may read every project.
        experiment = registry.find("experiments", found.experiment)
        principal.require("viewer", getattr(experiment, "project", None), "reading results")
        return found

    @router.get(
        "/experiments/{key}/sql",
        operation_id="analysis_sql",
        summary="The SQL the analysis runs, rendered for a dialect (not run)",
    )
    def sql(key: str, principal: Caller, dialect: str | None = None) -> dict[str, Any]:
        principal.require("viewer", project(key), "reading analysis SQL")
        if dialect is not None and dialect not in DIALECTS:
            raise field_error(["query", "dialect"], f"must be one of {', '.join(DIALECTS)}")
        try:
            plan = plan_experiment(platform, key)
            queries = analysis_sql.build(plan)
        except (PlanError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from None
        target = dialect or plan.dialect
        return {
            "dialect": target,
            "queries": {
                "main": analysis_sql.render(queries.main, target),
                **{k: analysis_sql.render(q, target) for k, q in queries.quantiles.items()},
            },
        }

    return router
