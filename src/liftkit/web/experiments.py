"""Experiment pages: the list by status, one experiment, starting, analysing and stopping it.

The setup wizard, the results page and the playbook pages live in their own modules
(``experiment_setup``, ``results``, ``playbooks``) and are included from ``router`` here.
Starting and stopping change the experiment the same way the playbook controller does
(``liftkit.automation.actions``): a phase begins or ends, and a stopped experiment keeps its
result and the variation it releases, which its feature rules then serve to everyone in the
experiment's audience (a temporary rollout until the flag is cleaned up).
"""

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request, Response

from liftkit.analysis import Snapshot
from liftkit.analysis import store as snapshots
from liftkit.api.analysis import run_analysis
from liftkit.automation import stop_experiment
from liftkit.registry.errors import Conflict
from liftkit.registry.experiments import Experiment, ExperimentResult, Phase
from liftkit.web import experiment_setup, playbooks, results
from liftkit.web._core import FormError, Viewer, Web, form
from liftkit.web.experiment_common import (
    OUTCOMES,
    STATUSES,
    WRITER,
    changed,
    linked_features,
    load,
    playbooks_of,
    save,
    status_of,
)


def stop_message(outcome: str, release: str, rollout: bool, reason: str) -> str:
    """The revision message of a stop: the outcome and what people are served from now on."""
    served = (
        f"{release} released to everyone in the experiment (temporary rollout)"
        if rollout
        else f"winner {release}; no temporary rollout, so its rules serve nobody now"
    )
    return f"stopped: {outcome}; {served}" + (f"; {reason}" if reason else "")


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    platform = web.platform
    registry = platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    # The wizard's /experiments/new must come before /experiments/{key}.
    r.include_router(experiment_setup.router(web, route_class))
    r.include_router(results.router(web, route_class))
    r.include_router(playbooks.router(web, route_class))

    @r.get("/experiments")
    def experiment_list(
        request: Request, viewer: Current, status: str = "", q: str = ""
    ) -> Response:
        if status and status not in STATUSES:
            raise FormError("status", f"one of {', '.join(STATUSES)}")
        found = [
            e
            for e in registry.all("experiments")
            if viewer.sees(e.project) and (not q or q.lower() in f"{e.key} {e.name}".lower())
        ]
        counts = {s: sum(1 for e in found if status_of(e) == s) for s in STATUSES}
        groups = [
            (s, [e for e in found if status_of(e) == s])
            for s in ((status,) if status else STATUSES)
        ]
        started = {e.key: e.phases[0].started_at if e.phases else None for e in found}
        return web.render(
            request,
            "experiments/list.html",
            viewer,
            groups=groups,
            counts=counts,
            status=status,
            q=q,
            started=started,
            can_create=any(viewer.can(WRITER, p) for p in viewer.projects),
        )

    @r.get("/experiments/{key}")
    def experiment_page(request: Request, viewer: Current, key: str) -> Response:
        experiment = load(registry, viewer, key)
        metrics = {m.key: m for m in registry.all("metrics")}
        pending = [
            rev
            for rev in registry.revisions("experiments", key)
            if rev.status in ("draft", "pending_review", "approved")
        ]
        latest = snapshots.latest(platform.engine, key)
        driving = [
            (pb, state, playbooks.moments(platform, pb.key, limit=20))
            for pb, state in playbooks_of(platform, key)
        ]
        return web.render(
            request,
            "experiments/detail.html",
            viewer,
            e=experiment,
            weights=experiment.weights(),
            metrics=metrics,
            features=linked_features(registry, key),
            pending=pending,
            latest=latest,
            driving=driving,
            outcomes=OUTCOMES,
            suggested=_suggested_release(experiment, latest),
            can_edit=viewer.can(WRITER, experiment.project),
            can_analyse=viewer.can("analyst", experiment.project),
            recent=registry.audit(collection_name="experiments", key=key, limit=30),
        )

    @r.post("/experiments/{key}/start")
    def start(request: Request, viewer: Current, key: str) -> Response:
        experiment = load(registry, viewer, key)
        viewer.principal.require(WRITER, experiment.project, f"starting experiment {key!r}")
        if experiment.status != "draft" or experiment.archived:
            raise Conflict(f"experiment {key!r} is {status_of(experiment)}; only a draft starts")
        phase = Phase(name="main", started_at=platform.clock(), coverage=experiment.coverage)
        started = changed(experiment, status="running", phases=[*experiment.phases, phase])
        save(registry, viewer, started, "started", before=experiment)
        return web.redirect(request, f"/experiments/{key}")

    @r.post("/experiments/{key}/analyse")
    async def analyse(request: Request, viewer: Current, key: str) -> Response:
        experiment = load(registry, viewer, key)
        viewer.principal.require("analyst", experiment.project, "analysing an experiment")
        await run_analysis(platform, key, viewer.actor)
        return web.redirect(request, f"/experiments/{key}/results")

    @r.post("/experiments/{key}/stop")
    async def stop(request: Request, viewer: Current, key: str) -> Response:
        experiment = load(registry, viewer, key)
        viewer.principal.require(WRITER, experiment.project, f"stopping experiment {key!r}")
        data = await form(request)
        outcome = data.get("outcome", "")
        if outcome not in OUTCOMES:
            raise FormError("outcome", f"choose one of {', '.join(OUTCOMES)}")
        keys = [v.key for v in experiment.variations]
        release = data.get("release", "")
        if release not in keys:
            raise FormError("release", f"choose the variation to release: {', '.join(keys)}")
        if experiment.status != "running":
            raise Conflict(f"experiment {key!r} is {experiment.status}; only a running one stops")
        rollout = data.get("rollout") == "on"
        reason = data.get("reason", "").strip()
        message = stop_message(outcome, release, rollout, reason)
        served = release if rollout else None
        result = cast(ExperimentResult, outcome)  # one of OUTCOMES, checked above
        now = platform.clock()
        stop_experiment(registry, experiment, result, served, now, viewer.actor, message)
        return web.redirect(request, f"/experiments/{key}")

    return r


def _suggested_release(experiment: Experiment, latest: Snapshot | None) -> str:
    """The stop dialog's default: the latest snapshot's recommended variation, else control."""
    keys = [v.key for v in experiment.variations]
    if latest is not None and latest.decision.variation in keys:
        return str(latest.decision.variation)
    return keys[0]
