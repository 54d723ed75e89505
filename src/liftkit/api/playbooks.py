"""Playbooks at run time over HTTP (their definitions are the ``/playbooks`` collection).

- ``GET /api/v1/playbooks/{key}/status``: the controller's state and its latest decision;
- ``GET /api/v1/playbooks/{key}/timeline``: every decision with its numbers, newest first;
- ``POST /api/v1/playbooks/{key}/actions``: a manual override (pause, resume, stage, kill,
  code-removed) or ``run`` (one controller cycle for this playbook now); editor role;
- ``GET /api/v1/playbooks/{key}/deliveries``: the webhook outbox.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from liftkit.api.auth import Authenticator, Principal
from liftkit.api.errors import RESPONSES
from liftkit.automation import Controller, OverrideError, State
from liftkit.automation.state import Entry, last, load, timeline
from liftkit.platform import Platform
from liftkit.registry.playbooks import Playbook


class PlaybookStatus(BaseModel):
    playbook: str
    type: str
    experiment: str
    dry_run: bool
    state: State
    latest: Entry | None


class Timeline(BaseModel):
    items: list[Entry]


class Override(BaseModel):
    action: Literal["pause", "resume", "stage", "kill", "code-removed", "run"]
    #: For ``stage``: the stage index to force (0 is the first).
    stage: int | None = Field(None, ge=0)
    reason: str = Field("", max_length=2000)


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    url: str
    format: str
    status: str
    attempts: int
    last_error: str


async def apply_override(
    controller: Controller,
    key: str,
    action: str,
    actor: str,
    *,
    stage: int | None = None,
    reason: str = "",
) -> None:
    """Carry out a manual override, or ``run`` one cycle now, in a worker thread; an override
    the playbook's state does not allow is a 409 (API and dashboard alike). Roles: the caller."""
    if action == "run":
        await run_in_threadpool(controller.step, key)
        return
    try:
        await run_in_threadpool(controller.override, key, action, actor, stage=stage, reason=reason)
    except OverrideError as exc:
        raise HTTPException(409, str(exc)) from None


def playbooks_router(platform: Platform, auth: Authenticator, controller: Controller) -> APIRouter:
    Caller = Annotated[Principal, Depends(auth)]  # noqa: N806 (a type alias, named like one)
    router = APIRouter(prefix="/playbooks", tags=["playbooks"], responses=RESPONSES)
    registry = platform.registry

    def playbook(key: str, principal: Principal, role: Any = "viewer") -> Playbook:
        found = registry.get("playbooks", key)
        assert isinstance(found, Playbook)
        doing = "reading a playbook" if role == "viewer" else "overriding a playbook"
        principal.require(role, found.project, doing)
        return found

    @router.get("/{key}/status", operation_id="playbook_status", summary="A playbook's state")
    def status(key: str, principal: Caller) -> PlaybookStatus:
        pb = playbook(key, principal)
        return PlaybookStatus(
            playbook=key,
            type=pb.type,
            experiment=pb.experiment_key,
            dry_run=pb.dry_run,
            state=load(platform.engine, key),
            latest=last(platform.engine, key),
        )

    @router.get(
        "/{key}/timeline", operation_id="playbook_timeline", summary="Decisions, newest first"
    )
    def get_timeline(
        key: str,
        principal: Caller,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        before: Annotated[
            int | None, Query(ge=1, description="only entries older than this id")
        ] = None,
    ) -> Timeline:
        playbook(key, principal)
        return Timeline(items=timeline(platform.engine, key, limit=limit, before=before))

    @router.post(
        "/{key}/actions",
        operation_id="playbook_override",
        summary="Override the controller: pause, resume, force a stage, kill, or run a cycle now",
        responses={409: {"description": "Not possible in the playbook's current state"}},
    )
    async def act(key: str, body: Override, principal: Caller) -> PlaybookStatus:
        playbook(key, principal, "editor")
        await apply_override(
            controller, key, body.action, principal.actor, stage=body.stage, reason=body.reason
        )
        return status(key, principal)

    @router.get(
        "/{key}/deliveries", operation_id="playbook_deliveries", summary="Webhook deliveries"
    )
    def deliveries(key: str, principal: Caller) -> list[DeliveryOut]:
        playbook(key, principal)
        return [
            DeliveryOut(
                id=d.id, event_id=d.event_id, url=d.url, format=d.format, status=d.status,
                attempts=d.attempts, last_error=d.last_error,
            )
            for d in controller.notifier.deliveries(key)
        ]  # fmt: skip

    return router
