"""Live exposure counts and the ingest pipeline's state over HTTP.

- ``GET /api/v1/experiments/{key}/exposures``: units per variation counted as exposures
  arrive, with the SRM check against the experiment's current weights.
- ``GET /api/v1/events/live``: the same for every experiment the caller may read.
- ``GET /api/v1/events/status``: spool backlog and the loader's totals since start.

``POST /api/v1/events`` itself is a plain ASGI route (``liftkit.api.ingest``); its request and
response shapes are added to the OpenAPI document here so clients can be generated from it.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from liftkit.api.auth import Authenticator, Principal
from liftkit.api.errors import RESPONSES
from liftkit.events import EVENTS, LiveCounts
from liftkit.events.pipeline import Pipeline
from liftkit.registry import Registry


def live_router(pipeline: Pipeline, registry: Registry, auth: Authenticator) -> APIRouter:
    Caller = Annotated[Principal, Depends(auth)]  # noqa: N806 (a type alias, named like one)
    router = APIRouter(tags=["events"], responses=RESPONSES)

    def project_of(key: str) -> str | None:
        found = registry.find("experiments", key)
        return None if found is None else getattr(found, "project", None)

    @router.get(
        "/experiments/{key}/exposures",
        operation_id="live_exposures",
        summary="Units exposed per variation so far, with a live SRM check",
    )
    def experiment_exposures(key: str, principal: Caller) -> dict[str, Any]:
        experiment = registry.get("experiments", key)
        principal.require("viewer", getattr(experiment, "project", None), "reading exposures")
        for counts in pipeline.live():
            if counts.experiment == key:
                return counts.as_dict()
        split = pipeline.split_of(key)  # nothing seen yet: zeros against the configured split
        weights = None if split is None else split.weights
        since = None if split is None else split.phase_started_at
        zeros = (0,) * len(weights or ())
        return LiveCounts(key, zeros, 0, False, since, weights, None, False).as_dict()

    @router.get(
        "/events/live",
        operation_id="live_exposures_all",
        summary="Live exposure counts of every experiment seen since the server started",
    )
    def live(principal: Caller) -> dict[str, Any]:
        principal.require_anywhere("viewer", "reading exposures")
        items = [
            counts.as_dict()
            for counts in pipeline.live()
            if principal.can("viewer", project_of(counts.experiment))
        ]
        return {"items": items}

    @router.get(
        "/events/status",
        operation_id="events_status",
        summary="The ingest pipeline: backlog, loads, duplicates, rows stored",
    )
    def status(principal: Caller) -> dict[str, Any]:
        principal.require_anywhere("viewer", "reading the ingest status")
        return pipeline.status()

    return router


def document_ingest(api: FastAPI) -> None:
    """Add ``POST /api/v1/events`` (served outside FastAPI) to the OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        schema = get_openapi(
            title=api.title, version=api.version, description=api.description, routes=api.routes
        )
        defs = EVENTS.json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.pop("$defs", {}))
        rejected = {
            "type": "object",
            "properties": {
                "accepted": {"type": "integer"},
                "rejected": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
        error = {
            "type": "object",
            "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
        }
        text = {"application/json": {"schema": error}}
        schema["paths"]["/api/v1/events"] = {
            "post": {
                "tags": ["events"],
                "operationId": "ingest_events",
                "summary": "Send a batch of exposure and track events (ingest key)",
                "description": (
                    "A JSON array of events or NDJSON (Content-Type: application/x-ndjson), "
                    "optionally gzip (Content-Encoding: gzip). Valid events are kept; each "
                    "rejected one is listed with its index, field and reason. The answer comes "
                    "after the accepted events are on disk."
                ),
                "security": [{"HTTPBearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": defs}},
                },
                "responses": {
                    "200": {
                        "description": "Accepted (some may be rejected)",
                        "content": {"application/json": {"schema": rejected}},
                    },
                    "400": {"description": "Not events at all", "content": text},
                    "401": {"description": "No or unknown ingest key", "content": text},
                    "403": {"description": "Not an ingest key", "content": text},
                    "413": {"description": "Body or batch over the limit", "content": text},
                    "422": {
                        "description": "Every event rejected",
                        "content": {"application/json": {"schema": rejected}},
                    },
                    "429": {
                        "description": "Over the key's rate limit (Retry-After)",
                        "content": text,
                    },
                    "503": {"description": "Overloaded (Retry-After)", "content": text},
                },
            }
        }
        api.openapi_schema = schema
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


__all__ = ["document_ingest", "live_router"]
