"""The audit log over HTTP: ``GET /api/v1/audit``, who changed what, before and after."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from liftkit.api.auth import Authenticator, Principal
from liftkit.api.errors import RESPONSES, field_error
from liftkit.api.objects import Limit, Offset
from liftkit.registry import COLLECTIONS, AuditEntry, Registry
from liftkit.registry.store import MAX_PAGE


class AuditPage(BaseModel):
    """Newest first. The log has no total; a page shorter than ``limit`` is the last."""

    items: list[AuditEntry]
    limit: int
    offset: int


def audit_router(registry: Registry, auth: Authenticator) -> APIRouter:
    """``GET /api/v1/audit``: who changed what, with the object before and after."""
    Caller = Annotated[Principal, Depends(auth)]  # noqa: N806 (a type alias, named like one)
    router = APIRouter(tags=["audit"], responses=RESPONSES)

    @router.get(
        "/audit",
        response_model=AuditPage,
        operation_id="list_audit",
        summary="The audit log, newest first",
    )
    def audit(
        principal: Caller,
        collection: Annotated[
            str | None,
            Query(
                description="Only entries about this collection.",
                json_schema_extra={"enum": list(COLLECTIONS)},
            ),
        ] = None,
        key: Annotated[str | None, Query(max_length=200, description="Only this object.")] = None,
        actor: Annotated[
            str | None, Query(max_length=200, description="`user:<email>` or `key:<prefix>`.")
        ] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Any:
        # Entries span every project (and record keys and logins), so reading them needs a role
        # on every project.
        principal.require("viewer", None, "reading the audit log")
        if collection is not None and collection not in COLLECTIONS:
            raise field_error(
                ["query", "collection"], f"not a collection (one of: {', '.join(COLLECTIONS)})"
            )
        items = registry.audit(
            collection_name=collection, key=key, actor=actor, limit=limit, offset=offset
        )
        return {"items": items, "limit": min(limit, MAX_PAGE), "offset": offset}

    return router
