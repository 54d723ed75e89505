"""A brief's page (plan, results, learnings, checklist, near-duplicates, history), its lifecycle
buttons, and the "New brief" form.

Reading and every move go through the ``KnowledgeBase`` facade with the roles
``/api/v1/kb/briefs/{key}/…`` checks (moves: analyst; review, launch, ship: editor), and a new
brief is created the way ``POST /api/v1/briefs`` creates one (the collection's write role, the
same direct-write guard), so a person in the browser can do exactly what the API lets them.
"""

import math
from dataclasses import dataclass
from typing import Annotated, Any, get_args
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from liftkit.api.auth import write_role
from liftkit.knowledge import lifecycle
from liftkit.knowledge.base import KnowledgeBase
from liftkit.knowledge.records import Record
from liftkit.registry import collection
from liftkit.registry.briefs import Brief, Outcome, Stage
from liftkit.registry.errors import Conflict, NotFound
from liftkit.registry.revisions import Revision
from liftkit.web._core import FormError, Viewer, Web, form
from liftkit.web.kb_common import lifecycle_errors, readable_records, render, words

Z95 = 1.959963984540054
OUTCOMES: tuple[str, ...] = get_args(Outcome)
SCORE_FIELDS = {
    "ice": ("impact", "confidence", "ease"),
    "pie": ("potential", "importance", "ease"),
    "rice": ("reach", "impact", "confidence", "effort"),
}


@dataclass(frozen=True)
class Action:
    """A lifecycle button the viewer may press on this brief right now."""

    step: str
    label: str
    role: str
    values: dict[str, str]
    style: str = ""


def actions(viewer: Viewer, record: Record) -> list[Action]:
    """The moves the brief's stage allows and the viewer's role permits (the facade rechecks)."""
    stage, project = record.stage, record.brief.project
    out: list[Action] = []
    analyst, editor = viewer.can("analyst", project), viewer.can("editor", project)
    if stage in ("idea", "planned") and analyst:
        other = "planned" if stage == "idea" else "idea"
        out.append(Action("move", f"Move to {other}", "analyst", {"to": other}, "secondary"))
        out.append(Action("submit", "Submit for review", "analyst", {}))
    if stage == "in_review":
        if analyst:
            out.append(Action("move", "Withdraw", "analyst", {"to": "planned"}, "secondary"))
        if editor:
            out.append(Action("launch", "Launch", "editor", {}))
    if stage in ("decided",) and editor and record.outcome == "won":
        out.append(Action("ship", "Mark shipped", "editor", {}))
    if stage not in ("archived", "shipped") and analyst:
        out.append(Action("move", "Archive", "analyst", {"to": "archived"}, "danger"))
    return out


def _number(data: dict[str, str], field: str) -> float | None:
    raw = data.get(field, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise FormError(field, f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise FormError(field, f"{raw!r} is not a finite number")
    return value


def brief_body(data: dict[str, str], scoring: str, owner: str) -> dict[str, Any]:
    """The ``Brief`` the form describes, as the API would receive it (pydantic validates it)."""
    key, name = data.get("key", "").strip(), data.get("name", "").strip()
    if not key:
        raise FormError("key", "give the brief a key (letters, digits, - _ . :)")
    if not name:
        raise FormError("name", "give the brief a title")
    stage = data.get("stage", "idea")
    if stage not in ("idea", "planned"):
        raise FormError("stage", "a new brief starts as an idea or planned")
    criteria: dict[str, Any] = {}
    if (mde := _number(data, "criteria.mde")) is not None:
        criteria["mde"] = mde
    if (days := _number(data, "criteria.min_days")) is not None:
        if days != int(days):
            raise FormError("criteria.min_days", "a whole number of days")
        criteria["min_days"] = int(days)
    scores = {
        f: v for f in SCORE_FIELDS[scoring] if (v := _number(data, f"scores.{f}")) is not None
    }
    sizing: dict[str, Any] = {}
    if (lift := _number(data, "sizing.expected_lift")) is not None:
        sizing["expected_lift"] = lift
    return {
        "key": key,
        "name": name,
        "description": data.get("description", "").strip(),
        "project": data.get("project", "").strip() or "default",
        "stage": stage,
        "hypothesis": {
            part: data.get(f"hypothesis.{part}", "").strip()
            for part in ("change", "audience", "result", "reason")
        },
        "change_type": data.get("change_type", "").strip(),
        "surface": data.get("surface", "").strip(),
        "funnel_stage": data.get("funnel_stage", "").strip(),
        "audience": data.get("audience", "").strip(),
        "team": data.get("team", "").strip(),
        "owners": words(data.get("owners", "")) or ([owner] if owner else []),
        "tags": words(data.get("tags", "")),
        "metrics": {
            "primary": words(data.get("metrics.primary", "")),
            "guardrails": words(data.get("metrics.guardrails", "")),
        },
        "criteria": criteria,
        "experiment": data.get("experiment", "").strip() or None,
        "planned_start": data.get("planned_start", "").strip() or None,
        "planned_end": data.get("planned_end", "").strip() or None,
        "scores": scores,
        "sizing": sizing,
    }


def router(web: Web, route_class: type, kb: KnowledgeBase) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    registry = web.platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias
    spec = collection("briefs")
    writer = write_role(spec)

    def new_form(request: Request, viewer: Viewer, **context: Any) -> Response:
        settings = kb.settings()
        projects = [p for p in viewer.projects if viewer.can(writer, p)]
        return render(
            web, request, "knowledge/brief_new.html", viewer, projects=projects,
            taxonomy=settings.taxonomy, scoring=settings.scoring,
            score_fields=SCORE_FIELDS[settings.scoring], **context,
        )  # fmt: skip

    @r.get("/knowledge/briefs/new")
    def new_brief(request: Request, viewer: Current) -> Response:
        viewer.principal.require_anywhere(writer, "writing briefs")
        return new_form(request, viewer)

    @r.post("/knowledge/briefs/new")
    async def create_brief(request: Request, viewer: Current) -> Response:
        data = await form(request)
        owner = lifecycle.person(viewer.actor) if viewer.principal.user else ""
        body = Brief.model_validate(brief_body(data, kb.settings().scoring, owner))
        viewer.principal.require(writer, body.project, "creating a Brief")
        if registry.find("briefs", body.key) is not None:
            raise Conflict(f"key: a brief {body.key!r} exists already")
        body = lifecycle.check_direct_write(None, body)
        revision = registry.save("briefs", body, viewer.actor, message="written in the dashboard")
        if revision.status != "published":
            return web.render(
                request, "knowledge/_flash.html", viewer,
                message=f"Brief {body.key!r} is waiting for review (version {revision.version}).",
            )  # fmt: skip
        return web.redirect(request, f"/knowledge/briefs/{quote(body.key, safe='')}")

    @r.post("/knowledge/briefs/new/similar")
    async def draft_similar(request: Request, viewer: Current) -> Response:
        """Near-duplicates of the brief being written (as ``POST /api/v1/kb/similar``)."""
        data = await form(request)
        try:
            body = brief_body({**data, "key": "draft", "name": "draft", "stage": "idea"}, "ice", "")
            draft = Brief.model_validate(body)
        except (FormError, ValueError):  # half-typed fields: nothing to compare yet
            return web.render(request, "knowledge/_similar.html", viewer, matches=None)
        viewer.principal.require("viewer", draft.project, "reading briefs")
        matches = kb.similar(draft, readable_records(viewer, kb.records()))
        return render(web, request, "knowledge/_similar.html", viewer, matches=matches)

    @r.get("/knowledge/briefs/{key}")
    def brief_page(request: Request, viewer: Current, key: str) -> Response:
        records = kb.records()
        record = kb.record(key, records)  # also briefs made up from an experiment
        brief = record.brief
        viewer.principal.require("viewer", brief.project, "reading briefs")
        readable = [r for r in records if viewer.can("viewer", r.brief.project)]
        try:
            history: list[Revision] = list(reversed(registry.revisions("briefs", key)))
        except NotFound:
            history = []
        return render(
            web, request, "knowledge/brief.html", viewer,
            record=record, brief=brief, checklist=kb.checklist(brief, records),
            similar=kb.similar(brief, readable), history=history,
            approved=lifecycle.approval(brief) is not None, actions=actions(viewer, record),
            effects=[(e, e.effect - Z95 * e.se, e.effect + Z95 * e.se) for e in record.effects],
            scale=max([abs(e.effect) + Z95 * e.se for e in record.effects] or [0.1]),
            outcomes=OUTCOMES, can_review=viewer.can("editor", brief.project),
            can_conclude=viewer.can("analyst", brief.project)
            and record.stage in ("running", "analysing", "decided") and not record.synthetic,
        )  # fmt: skip

    @r.post("/knowledge/briefs/{key}/{step}")
    async def move(request: Request, viewer: Current, key: str, step: str) -> Response:
        data = await form(request)
        brief = kb.brief(key)
        actor = viewer.actor

        def need(role: Any) -> None:
            viewer.principal.require(role, brief.project, "changing a brief's stage")

        def apply() -> None:  # launching runs an analysis query: off the event loop
            with lifecycle_errors():
                if step == "move":
                    need("analyst")
                    to = data.get("to", "")
                    if to not in ("idea", "planned", "archived"):
                        raise FormError("to", "move to idea, planned or archived")
                    stage: Stage = to  # type: ignore[assignment]
                    kb.move(key, stage, actor)
                elif step == "submit":
                    need("analyst")
                    kb.submit(key, actor)
                elif step == "review":
                    need("editor")
                    decision = data.get("decision", "")
                    if decision not in ("approve", "changes"):
                        raise FormError("decision", "approve or ask for changes")
                    kb.review(key, actor, decision, data.get("comment", "").strip())
                elif step == "launch":
                    need("editor")
                    kb.launch(key, actor)
                elif step == "conclude":
                    need("analyst")
                    outcome = data.get("outcome", "")
                    if outcome not in OUTCOMES:
                        raise FormError("outcome", f"choose one of {', '.join(OUTCOMES)}")
                    kb.conclude(key, actor, outcome, data.get("learnings", "").strip())  # type: ignore[arg-type]
                elif step == "ship":
                    need("editor")
                    kb.ship(key, actor)
                else:
                    raise HTTPException(404, f"no lifecycle step {step!r}")

        await run_in_threadpool(apply)
        return web.redirect(request, f"/knowledge/briefs/{quote(key, safe='')}")

    return r
