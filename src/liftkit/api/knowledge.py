"""The knowledge base over HTTP, under ``/api/v1/kb`` (briefs themselves are ``/api/v1/briefs``).

Reading needs the viewer role on the brief's project; moving a brief needs the role that writes
briefs (analyst), except review, launch and ship, which need editor. The calendar feed also
accepts a secret key as ``?key=`` because calendar apps subscribe by URL and send no headers.
"""

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from liftkit.api.auth import Authenticator, Principal
from liftkit.api.errors import RESPONSES
from liftkit.api.objects import MAX_INT
from liftkit.knowledge import digest as digests
from liftkit.knowledge import lifecycle, meta
from liftkit.knowledge.base import KnowledgeBase
from liftkit.knowledge.records import Record
from liftkit.knowledge.search import Filters
from liftkit.platform import Platform
from liftkit.registry.briefs import Brief, Outcome, Stage

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The brief's stage or review rules do not allow it"}
}


class BriefView(BaseModel):
    brief: Brief
    stage: Stage
    outcome: Outcome | None
    started_at: datetime | None
    ended_at: datetime | None
    decided_at: datetime | None
    shipped_variation: str | None
    approved: bool
    effects: list[dict[str, Any]]


class Move(BaseModel):
    to: Literal["idea", "planned", "archived"]


class ReviewIn(BaseModel):
    decision: Literal["approve", "changes"]
    comment: str = Field("", max_length=5000)


class ConcludeIn(BaseModel):
    outcome: Outcome
    learnings: str = Field("", max_length=20000)


class DigestSend(BaseModel):
    month: date
    recipients: list[str] = Field(default_factory=list)


def view(record: Record) -> BriefView:
    return BriefView(
        brief=record.brief,
        stage=record.stage,
        outcome=record.outcome,
        started_at=record.started_at,
        ended_at=record.ended_at,
        decided_at=record.decided_at,
        shipped_variation=record.shipped_variation,
        approved=lifecycle.approval(record.brief) is not None,
        effects=[asdict(e) for e in record.effects],
    )


def knowledge_router(platform: Platform, auth: Authenticator) -> APIRouter:
    Caller = Annotated[Principal, Depends(auth)]  # noqa: N806 (a type alias, named like one)
    router = APIRouter(prefix="/kb", tags=["knowledge"], responses=RESPONSES)
    kb = KnowledgeBase(platform)

    def brief(key: str, principal: Principal, role: Any = "viewer") -> Brief:
        found = kb.brief(key)
        principal.require(role, found.project, "reading briefs" if role == "viewer" else
                          "changing a brief's stage")  # fmt: skip
        return found

    def readable(principal: Principal) -> list[Record]:
        """Records in the projects the caller may read (similar briefs name other projects)."""
        return [r for r in kb.records() if principal.can("viewer", r.brief.project)]

    def moved(fn: Any, *args: Any) -> BriefView:
        try:
            fn(*args)
        except lifecycle.LifecycleError as exc:
            raise HTTPException(409, str(exc)) from None
        return view(kb.record(args[0]))

    @router.get("/search", operation_id="kb_search", summary="Search briefs, learnings, results")
    def search(
        principal: Caller,
        q: Annotated[str, Query(max_length=500)] = "",
        project: str | None = None,
        tag: str | None = None,
        outcome: Outcome | None = None,
        metric: str | None = None,
        team: str | None = None,
        stage: Stage | None = None,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
        offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    ) -> dict[str, Any]:
        principal.require("viewer", project, "searching the knowledge base")
        filters = Filters(project, tag, outcome, metric, team, stage, date_from, date_to)
        hits, total = kb.search(q, filters, limit=limit, offset=offset)
        return {"items": [asdict(h) for h in hits], "total": total}

    @router.get("/briefs/{key}", operation_id="kb_brief", summary="A brief with its experiment")
    def get_brief(key: str, principal: Caller) -> BriefView:
        brief(key, principal)
        return view(kb.record(key))

    @router.get("/briefs/{key}/checklist", operation_id="kb_checklist", summary="Pre-launch")
    def get_checklist(key: str, principal: Caller) -> dict[str, Any]:
        items = kb.checklist(brief(key, principal))
        return {"items": [asdict(i) for i in items], "ready": not any(
            i.status == "fail" for i in items)}  # fmt: skip

    @router.get("/briefs/{key}/similar", operation_id="kb_similar", summary="Near-duplicates")
    def get_similar(
        key: str, principal: Caller, limit: Annotated[int, Query(ge=1, le=50)] = 5
    ) -> list[dict[str, Any]]:
        found = brief(key, principal)
        return [asdict(m) for m in kb.similar(found, readable(principal), limit=limit)]

    @router.post("/similar", operation_id="kb_similar_draft", summary="Near-duplicates of a draft")
    def post_similar(
        draft: Brief, principal: Caller, limit: Annotated[int, Query(ge=1, le=50)] = 5
    ) -> list[dict[str, Any]]:
        principal.require("viewer", draft.project, "reading briefs")
        return [asdict(m) for m in kb.similar(draft, readable(principal), limit=limit)]

    @router.post("/briefs/{key}/move", operation_id="kb_move", responses=_CONFLICT)
    def move(key: str, body: Move, principal: Caller) -> BriefView:
        brief(key, principal, "analyst")
        return moved(lambda k: kb.move(k, body.to, principal.actor), key)

    @router.post("/briefs/{key}/submit", operation_id="kb_submit", responses=_CONFLICT)
    def submit(key: str, principal: Caller) -> BriefView:
        brief(key, principal, "analyst")
        return moved(lambda k: kb.submit(k, principal.actor), key)

    @router.post("/briefs/{key}/review", operation_id="kb_review", responses=_CONFLICT)
    def review(key: str, body: ReviewIn, principal: Caller) -> BriefView:
        brief(key, principal, "editor")
        return moved(lambda k: kb.review(k, principal.actor, body.decision, body.comment), key)

    @router.post("/briefs/{key}/launch", operation_id="kb_launch", responses=_CONFLICT)
    async def launch(key: str, principal: Caller) -> BriefView:
        brief(key, principal, "editor")
        return await run_in_threadpool(moved, lambda k: kb.launch(k, principal.actor), key)

    @router.post("/briefs/{key}/conclude", operation_id="kb_conclude", responses=_CONFLICT)
    def conclude(key: str, body: ConcludeIn, principal: Caller) -> BriefView:
        brief(key, principal, "analyst")
        return moved(lambda k: kb.conclude(k, principal.actor, body.outcome, body.learnings), key)

    @router.post("/briefs/{key}/ship", operation_id="kb_ship", responses=_CONFLICT)
    def ship(key: str, principal: Caller) -> BriefView:
        brief(key, principal, "editor")
        return moved(lambda k: kb.ship(k, principal.actor), key)

    @router.get("/ideas", operation_id="kb_ideas", summary="The backlog, best score first")
    def ideas(principal: Caller, project: str | None = None) -> dict[str, Any]:
        principal.require("viewer", project, "reading ideas")
        framework = kb.settings().scoring
        return {
            "scoring": framework,
            "items": [
                {
                    "key": i.record.key,
                    "title": i.record.brief.name,
                    "stage": i.record.stage,
                    "score": i.score,
                    "opportunity": asdict(i.opportunity),
                    "feasibility": asdict(i.feasibility),
                }
                for i in kb.ideas(project)
            ],
        }

    @router.get("/meta/win-rates", operation_id="kb_win_rates", summary="Win rate by group")
    def win_rates(
        principal: Caller,
        by: Literal["tag", "funnel_stage", "change_type", "team", "quarter"] = "tag",
        project: str | None = None,
    ) -> list[dict[str, Any]]:
        principal.require("viewer", project, "reading the knowledge base")
        return [asdict(r) for r in meta.win_rates(kb.records(project), by)]

    @router.get("/meta/metrics", operation_id="kb_metric_history", summary="Effects per metric")
    def metric_history(principal: Caller, project: str | None = None) -> list[dict[str, Any]]:
        principal.require("viewer", project, "reading the knowledge base")
        return [asdict(h) for h in kb.history(kb.records(project))]

    @router.get("/meta/impact", operation_id="kb_impact", summary="Cumulative shrunk impact")
    def impact(principal: Caller, project: str | None = None) -> list[dict[str, Any]]:
        principal.require("viewer", project, "reading the knowledge base")
        return [asdict(s) for s in meta.cumulative_impact(kb.records(project))]

    @router.get("/leaderboard", operation_id="kb_leaderboard", summary="Top experiments, people")
    def leaderboard(principal: Caller, project: str | None = None) -> dict[str, Any]:
        principal.require("viewer", project, "reading the knowledge base")
        return asdict(meta.leaderboard(kb.records(project)))

    @router.get("/calendar", operation_id="kb_calendar", summary="Planned and running, conflicts")
    def get_calendar(principal: Caller, project: str | None = None) -> dict[str, Any]:
        principal.require("viewer", project, "reading the calendar")
        entries, conflicts = kb.calendar(project)
        return {"entries": [asdict(e) for e in entries], "conflicts": [asdict(c) for c in
                conflicts]}  # fmt: skip

    @router.get(
        "/calendar.ics", operation_id="kb_calendar_ics", summary="iCalendar feed",
        response_class=Response, responses={200: {"content": {"text/calendar": {}}}},
    )  # fmt: skip
    def calendar_ics(
        principal: Annotated[Principal | None, Depends(auth.optional)],
        project: str | None = None,
        key: Annotated[str | None, Query(description="a secret key, for calendar apps")] = None,
    ) -> Response:
        caller = principal or (auth.for_key(key) if key else None)
        if caller is None:
            raise HTTPException(401, "authentication required: a secret key as ?key=…")
        caller.require("viewer", project, "reading the calendar")
        return Response(kb.ics(project), media_type="text/calendar; charset=utf-8")

    @router.get("/digest", operation_id="kb_digest", summary="The monthly digest")
    def get_digest(
        principal: Caller, month: date, format: Literal["markdown", "html"] = "markdown"
    ) -> Response:
        principal.require("viewer", None, "reading the digest")
        built = kb.digest(month)
        base = platform.settings.base_url
        if format == "html":
            return Response(digests.html(built, base_url=base), media_type="text/html")
        return Response(digests.markdown(built, base_url=base), media_type="text/markdown")

    @router.post("/digest/send", operation_id="kb_digest_send", summary="Mail the digest")
    async def send_digest(body: DigestSend, principal: Caller) -> dict[str, Any]:
        principal.require("editor", None, "sending the digest")
        if not platform.settings.smtp_url:
            raise HTTPException(422, "smtp_url: no mail server is configured")
        if not (body.recipients or kb.settings().digest_recipients):
            raise HTTPException(422, "recipients: none given and digest_recipients is empty")
        try:
            await run_in_threadpool(kb.send_digest, body.month, body.recipients or None)
        except digests.DigestError as exc:  # the mail server refused or could not be reached
            raise HTTPException(502, str(exc)) from None
        return {"sent": True, "month": body.month.isoformat()}

    @router.get("/reminders", operation_id="kb_reminders", summary="Reminders due now")
    def get_reminders(principal: Caller) -> list[dict[str, Any]]:
        principal.require("viewer", None, "reading reminders")
        return [asdict(r) for r in kb.reminders()]

    return router
