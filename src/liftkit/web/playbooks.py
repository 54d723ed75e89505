"""Playbook pages: the list with each playbook's stage and status, and one playbook's timeline.

The timeline merges the controller's own record of decisions (rule, action, reason and the
numbers behind it, manual overrides included) with the registry changes it made as
``automation:<playbook>`` (coverage widened, experiment stopped, flag archived), newest first:
what it decided and what that did to the world, in one list. Overrides (pause, resume, kill,
run a cycle now) go through the same ``Controller`` calls as ``POST
/api/v1/playbooks/{key}/actions``, with the same role.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from liftkit.api.playbooks import apply_override
from liftkit.automation import ACTOR_PREFIX
from liftkit.automation.state import FINISHED, Entry, State, load, timeline
from liftkit.platform import Platform
from liftkit.registry.playbooks import Playbook
from liftkit.registry.revisions import AuditEntry
from liftkit.web._core import FormError, Viewer, Web, form

#: Overrides offered as buttons (``stage`` and ``code-removed`` are left to the API and CLI).
OVERRIDES = ("pause", "resume", "kill", "run")
BAD = ("rollback", "kill", "pause")
GOOD = ("promote", "warranty-end", "archive")


@dataclass(frozen=True)
class Moment:
    """One line of a playbook's timeline."""

    at: datetime
    actor: str
    title: str
    detail: str
    tone: str
    numbers: dict[str, Any]


def _tone(action: str, status: str = "") -> str:
    if status == "failed" or action in BAD:
        return "bad"
    return "good" if action in GOOD else ""


def _of_entry(entry: Entry) -> Moment:
    title = entry.action + (f" · {entry.step}" if entry.step else "")
    detail = f"{entry.rule}: {entry.reason}" if entry.rule else entry.reason
    if entry.status not in ("done", ""):
        title += f" ({entry.status})"
    numbers = {k: v for k, v in (entry.numbers or {}).items() if v is not None}
    return Moment(entry.at, entry.actor, title, detail, _tone(entry.action, entry.status), numbers)


def _of_audit(entry: AuditEntry) -> Moment:
    what = f"{entry.collection}/{entry.key}" + (f" v{entry.version}" if entry.version else "")
    return Moment(entry.at, entry.actor, f"{entry.action} {what}", entry.message, "", {})


def moments(platform: Platform, key: str, *, limit: int = 100) -> list[Moment]:
    """The controller's decisions and its registry changes, newest first."""
    decided = [_of_entry(e) for e in timeline(platform.engine, key, limit=limit)]
    changes = platform.registry.audit(actor=f"{ACTOR_PREFIX}{key}", limit=limit)
    # Drafts are followed by their publish (or review request): show what happened once.
    acted = [_of_audit(a) for a in changes if a.collection is not None and a.action != "draft"]
    return sorted(decided + acted, key=lambda m: m.at, reverse=True)[:limit]


def offered(state: State) -> tuple[str, ...]:
    """The override buttons that make sense in ``state`` (the controller checks again)."""
    if state.status == "paused":
        return ("resume", "kill", "run")
    return ("run",) if state.status in FINISHED else ("pause", "kill", "run")


def stage_text(playbook: Playbook, state: State) -> str:
    stage = playbook.stages[min(state.stage, len(playbook.stages) - 1)]
    return f"{state.stage + 1} of {len(playbook.stages)} ({stage.coverage:.0%})"


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    platform, registry = web.platform, web.platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    def playbook(viewer: Viewer, key: str) -> Playbook:
        found = registry.get("playbooks", key)
        assert isinstance(found, Playbook)
        viewer.principal.require("viewer", found.project, "reading a playbook")
        return found

    @r.get("/playbooks")
    def playbook_list(request: Request, viewer: Current) -> Response:
        found = [p for p in registry.all("playbooks") if viewer.sees(p.project)]
        rows = [(p, load(platform.engine, p.key)) for p in found]
        return web.render(request, "playbooks/list.html", viewer, rows=rows, stage_text=stage_text)

    @r.get("/playbooks/{key}")
    def playbook_page(request: Request, viewer: Current, key: str) -> Response:
        pb = playbook(viewer, key)
        state = load(platform.engine, key)
        return web.render(
            request,
            "playbooks/detail.html",
            viewer,
            pb=pb,
            state=state,
            stage_text=stage_text(pb, state),
            moments=moments(platform, key),
            overrides=offered(state) if web.controller is not None else (),
            can_override=viewer.can("editor", pb.project),
        )

    @r.post("/playbooks/{key}/actions")
    async def override(request: Request, viewer: Current, key: str) -> Response:
        pb = playbook(viewer, key)
        viewer.principal.require("editor", pb.project, "overriding a playbook")
        data = await form(request)
        command = data.get("action", "")
        if command not in OVERRIDES:
            raise FormError("action", f"one of {', '.join(OVERRIDES)}")
        controller = web.controller
        if controller is None:
            raise HTTPException(503, "the playbook controller is not running in this process")
        reason = data.get("reason", "").strip()
        await apply_override(controller, key, command, viewer.actor, reason=reason)
        return web.redirect(request, f"/playbooks/{key}")

    return r
