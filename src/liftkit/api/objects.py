"""REST routes for every registry collection, generated from ``COLLECTIONS``.

One loop over the table gives each collection the same routes (list, create, read, replace,
delete, revisions, drafts, reviews, revert), with the collection's own pydantic model as the
request and response body, so ``/openapi.json`` documents real schemas and a new collection gets
an API by being added to the table. Nothing here knows what a feature or a metric is: the rules
about objects live in the registry, the rules about people in ``liftkit.api.auth``.
"""

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from liftkit.api.auth import Authenticator, Forbidden, Principal, approve_role, write_role
from liftkit.api.errors import RESPONSES, field_error
from liftkit.knowledge import lifecycle
from liftkit.registry import COLLECTIONS, Collection, DiffEntry, Registry, Revision
from liftkit.registry._base import Key, ProjectObject, RegistryObject
from liftkit.registry.accounts import Role
from liftkit.registry.errors import Conflict, NotFound
from liftkit.registry.store import MAX_PAGE

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Largest version, offset or id accepted: every supported database stores it in 32 bits.
MAX_INT = 2**31 - 1

KeyPath = Annotated[Key, Path(description="The object's key.")]
VersionPath = Annotated[int, Path(ge=1, le=MAX_INT, description="A revision's version number.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size (at most {MAX_PAGE}).")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="Items to skip.")]
PublishFlag = Annotated[
    bool, Query(description="false: record a draft revision and leave the live object alone.")
]
Message = Annotated[str, Query(max_length=2000, description="Why: kept in history and audit.")]


class ObjectPage(BaseModel, Generic[T]):
    """One page of a list; ask for the next with ``offset + limit`` while it is < ``total``."""

    items: list[T]
    total: int
    limit: int
    offset: int


class RevertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_INT, description="A published version to restore.")


@dataclass(frozen=True)
class Filters:
    """A list's filters, named as ``Registry.page`` takes them."""

    project: str | None = None
    q: str | None = None
    tag: str | None = None
    owner: str | None = None
    status: str | None = None


def page_of(model: type[RegistryObject]) -> type[BaseModel]:
    """``ObjectPage[model]``, spelled so the type checker accepts a model known at runtime."""
    generic: Any = ObjectPage
    return generic[model]  # type: ignore[no-any-return]


def typed(**annotations: Any) -> Callable[[F], F]:
    """Give an endpoint's parameters types known only at runtime (a collection's model).

    FastAPI reads ``__signature__``, so it validates and documents the real model, while the
    function's own annotations (the base class) keep the type checker useful. It must run before
    the route decorator, i.e. be written below it.
    """

    def apply(endpoint: F) -> F:
        signature = inspect.signature(endpoint)
        params = [
            p.replace(annotation=annotations.get(p.name, p.annotation))
            for p in signature.parameters.values()
        ]
        endpoint.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return endpoint

    return apply


def filters_for(spec: Collection) -> Callable[..., Filters]:
    """A dependency declaring only the filters that mean something for ``spec``.

    ``project``, ``tag`` and ``owner`` exist on project objects only and ``status`` only where
    the collection names a status field; offering them elsewhere would invite filters that
    silently match nothing.
    """

    def filters(**values: str | None) -> Filters:
        return Filters(**values)

    def query(name: str, description: str) -> inspect.Parameter:
        annotation = Annotated[str | None, Query(max_length=200, description=description)]
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
        )

    params = [query("q", "Text contained in the key or the name (case-insensitive).")]
    if spec.project_scoped:
        params += [
            query("project", "Only objects of this project."),
            query("tag", "Only objects with this tag."),
            query("owner", "Only objects with this owner."),
        ]
    if spec.status_field:
        params.append(query("status", f"Only objects whose `{spec.status_field}` is this."))
    filters.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return filters


def project_of(spec: Collection, obj: RegistryObject | dict[str, Any] | None) -> str | None:
    """The project an object belongs to (None: it is shared by every project)."""
    if not spec.project_scoped or obj is None:
        return None
    if isinstance(obj, ProjectObject):
        return obj.project
    return str(obj.get("project", "default")) if isinstance(obj, dict) else None


#: Checks that keep a collection's own workflow from being skipped by a plain PUT.
DIRECT_WRITE_CHECKS: dict[str, Callable[[Any, Any], Any]] = {
    "briefs": lifecycle.check_direct_write,
}


def require_on(
    principal: Principal, spec: Collection, role: Role, projects: set[str | None], action: str
) -> None:
    """``role`` on each project involved; objects shared by all projects need it on all.

    With ``involved_projects`` and ``require_not_author``, the role rules of a change, shared
    by these routes and the dashboard's pages so both decide alike.
    """
    for project in sorted(projects, key=str) if spec.project_scoped else [None]:
        principal.require(role, project, action)


def involved_projects(
    registry: Registry, spec: Collection, key: str, *bodies: RegistryObject | dict[str, Any] | None
) -> set[str | None]:
    """Projects a change touches: the live object's and the new body's (a move: both), else
    the last project in its history."""
    live = registry.find(spec.name, key)
    found = {project_of(spec, b) for b in (live, *bodies) if b is not None}
    if not found:
        history = [r.body for r in registry.revisions(spec.name, key) if r.body is not None]
        found = {project_of(spec, history[-1])} if history else {None}
    return found


def require_not_author(principal: Principal, revision: Revision) -> None:
    """403 when ``principal`` wrote ``revision``: a change is approved by someone else."""
    if revision.author == principal.actor:
        raise Forbidden(
            f"{principal.actor} wrote revision {revision.version}; a change must be approved by "
            "someone other than its author"
        )


def collection_router(spec: Collection, registry: Registry, auth: Authenticator) -> APIRouter:
    """Every route of one collection, under ``/api/v1/{spec.name}``."""
    Caller = Annotated[Principal, Depends(auth)]  # noqa: N806 (a type alias, named like one)
    model = spec.model
    kind, name = spec.kind, spec.name
    op = name.replace("-", "_")
    writer, approver = write_role(spec), approve_role(spec)
    router = APIRouter(prefix=f"/{name}", tags=[name], responses=RESPONSES)

    def guard(live: RegistryObject | None, body: RegistryObject) -> RegistryObject:
        """Collection-specific rules for writes through these generic routes."""
        check = DIRECT_WRITE_CHECKS.get(name)
        return body if check is None else check(live, body)

    def require(principal: Principal, role: Role, projects: set[str | None], action: str) -> None:
        require_on(principal, spec, role, projects, action)

    def involved(key: str, *bodies: RegistryObject | dict[str, Any] | None) -> set[str | None]:
        return involved_projects(registry, spec, key, *bodies)

    def outcome(revision: Revision, *, created: bool = False) -> Any:
        """Published: the live object (201/200), or 204 for a deletion; otherwise 202 with
        the revision, which waits as a draft or for review."""
        if revision.status != "published":
            return JSONResponse(revision.model_dump(mode="json"), status_code=202)
        if revision.body is None:
            return Response(status_code=204)
        obj = model.model_validate(revision.body)
        return JSONResponse(obj.model_dump(mode="json"), status_code=201 if created else 200)

    pending: dict[int | str, dict[str, Any]] = {
        202: {"model": Revision, "description": "Recorded, not live: draft or review"}
    }

    @router.get(
        "", response_model=page_of(model), operation_id=f"list_{op}", summary=f"List {name}"
    )
    def list_objects(
        principal: Caller,
        filters: Annotated[Filters, Depends(filters_for(spec))],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        action = f"listing {name}"
        if not spec.project_scoped or principal.best_role() is None:
            principal.require_anywhere("viewer", action)
        if filters.project is not None:
            principal.require("viewer", filters.project, action)
        elif spec.project_scoped and not principal.can("viewer", None):
            mine = ", ".join(sorted(principal.roles))
            raise Forbidden(
                f"{principal.actor} has roles in some projects only ({mine}); "
                f"pass ?project=… to list {name} of one of them"
            )
        page = registry.page(name, **asdict(filters), limit=limit, offset=offset)
        return {
            "items": page.items,
            "total": page.total,
            "limit": page.limit,
            "offset": page.offset,
        }

    @router.post(
        "",
        response_model=model,
        status_code=201,
        operation_id=f"create_{op}",
        summary=f"Create a {kind}",
        responses=pending,
    )
    @typed(body=model)
    def create(
        body: RegistryObject, principal: Caller, publish: PublishFlag = True, message: Message = ""
    ) -> Any:
        require(principal, writer, {project_of(spec, body)}, f"creating a {kind}")
        if registry.find(name, body.key) is not None:
            raise Conflict(
                f"{kind} {body.key!r} exists already; PUT /api/v1/{name}/{body.key} changes it"
            )
        body = guard(None, body)
        revision = registry.save(name, body, principal.actor, message=message, publish=publish)
        return outcome(revision, created=True)

    @router.get("/{key}", response_model=model, operation_id=f"get_{op}", summary=f"Read a {kind}")
    def read(key: KeyPath, principal: Caller) -> Any:
        obj = registry.get(name, key)
        require(principal, "viewer", {project_of(spec, obj)}, f"reading {kind} {key!r}")
        return obj

    @router.put(
        "/{key}",
        response_model=model,
        operation_id=f"replace_{op}",
        summary=f"Replace a {kind} (a new version)",
        responses=pending,
    )
    @typed(body=model)
    def replace(
        key: KeyPath,
        body: RegistryObject,
        principal: Caller,
        publish: PublishFlag = True,
        message: Message = "",
    ) -> Any:
        matching_key(key, body)
        live = registry.find(name, key)
        if live is None:
            raise NotFound(f"{kind} {key!r} not found; POST /api/v1/{name} creates it")
        require(principal, writer, involved(key, body), f"changing {kind} {key!r}")
        body = guard(live, body)
        revision = registry.save(name, body, principal.actor, message=message, publish=publish)
        return outcome(revision)

    @router.delete(
        "/{key}",
        status_code=204,
        response_model=None,
        operation_id=f"delete_{op}",
        summary=f"Delete a {kind}",
        responses=pending,
    )
    def remove(
        key: KeyPath, principal: Caller, publish: PublishFlag = True, message: Message = ""
    ) -> Any:
        live = registry.get(name, key)
        require(principal, writer, {project_of(spec, live)}, f"deleting {kind} {key!r}")
        revision = registry.save(
            name, None, principal.actor, key=key, message=message, publish=publish
        )
        return outcome(revision)

    @router.get(
        "/{key}/revisions",
        response_model=list[Revision],
        operation_id=f"list_{op}_revisions",
        summary=f"A {kind}'s history",
    )
    def history(key: KeyPath, principal: Caller) -> Any:
        found = registry.revisions(name, key)
        require(principal, "viewer", involved(key), f"reading {kind} {key!r}")
        return found

    @router.post(
        "/{key}/revisions",
        response_model=Revision,
        status_code=201,
        operation_id=f"draft_{op}",
        summary=f"Draft a new version of a {kind}",
    )
    @typed(body=model)
    def draft(key: KeyPath, body: RegistryObject, principal: Caller, message: Message = "") -> Any:
        matching_key(key, body)
        require(principal, writer, involved(key, body), f"drafting {kind} {key!r}")
        body = guard(registry.find(name, key), body)
        return registry.draft(name, body, principal.actor, message=message)

    @router.get(
        "/{key}/revisions/{version}",
        response_model=Revision,
        operation_id=f"get_{op}_revision",
        summary="One revision",
    )
    def revision(key: KeyPath, version: VersionPath, principal: Caller) -> Any:
        found = registry.revision(name, key, version)
        require(principal, "viewer", involved(key, found.body), f"reading {kind} {key!r}")
        return found

    @router.get(
        "/{key}/revisions/{version}/diff",
        response_model=list[DiffEntry],
        operation_id=f"diff_{op}_revision",
        summary="What publishing this revision would change",
    )
    def diff(key: KeyPath, version: VersionPath, principal: Caller) -> Any:
        found = registry.revision(name, key, version)
        require(principal, "viewer", involved(key, found.body), f"reading {kind} {key!r}")
        return registry.diff(name, key, version)

    def review_step(step: str, role: Role, call: Callable[..., Revision], summary: str) -> None:
        @router.post(
            f"/{{key}}/revisions/{{version}}/{step}",
            response_model=Revision,
            operation_id=f"{step.replace('-', '_')}_{op}_revision",
            summary=summary,
        )
        def endpoint(key: KeyPath, version: VersionPath, principal: Caller) -> Any:
            found = registry.revision(name, key, version)
            require(principal, role, involved(key, found.body), f"{step} on {kind} {key!r}")
            if step == "approve":
                require_not_author(principal, found)
            return call(name, key, version, principal.actor)

    review_step("request-review", writer, registry.request_review, "Ask for a review")
    review_step("approve", approver, registry.approve, "Approve (not your own change)")
    review_step("discard", writer, registry.discard, "Discard a draft or review")
    review_step("publish", writer, registry.publish, "Make this revision live")

    @router.post(
        "/{key}/revert",
        response_model=model,
        operation_id=f"revert_{op}",
        summary="Publish an earlier version again",
        responses=pending,
    )
    def revert(key: KeyPath, body: RevertRequest, principal: Caller) -> Any:
        old = registry.revision(name, key, body.version)
        require(principal, writer, involved(key, old.body), f"reverting {kind} {key!r}")
        if old.body is not None:  # reverting must not bring back a stage or an old approval
            restored = guard(registry.find(name, key), spec.model.model_validate(old.body))
            if restored.model_dump(mode="json") != old.body:
                raise Conflict(
                    f"version {body.version} has another stage, reviews or submitter; "
                    "edit the brief instead"
                )
        return outcome(registry.revert(name, key, body.version, principal.actor))

    return router


def matching_key(key: str, body: RegistryObject) -> None:
    """A body's key must be the one in the path: a rename is a delete and a create."""
    if body.key != key:
        raise field_error(["body", "key"], f"must match the key in the path ({key!r})")


def routers(registry: Registry, auth: Authenticator) -> list[APIRouter]:
    return [collection_router(spec, registry, auth) for spec in COLLECTIONS.values()]
