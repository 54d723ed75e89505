"""How failures look over HTTP: one JSON shape, and the registry's errors mapped to statuses.

Every error body has ``detail``: a sentence saying what went wrong and, where it helps, what to
do instead. Validation errors (422) have a list in ``detail`` naming each field by its
location (``["body", "environments", "production", "rules", 0, "coverage"]``) and a one-line
``message`` for people. Submitted values are never echoed back (FastAPI's default ``input``
member is dropped), so a mistyped password or key cannot end up in a log of error responses.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError

from liftkit.registry.errors import (
    ApprovalRequired,
    Conflict,
    InvalidObject,
    NotFound,
    ReviewError,
)

log = logging.getLogger("liftkit.api")


class ErrorBody(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    detail: list[FieldError]
    message: str


#: Documented error responses, merged into each router's OpenAPI description.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No credentials, or unknown/revoked ones"},
    403: {"model": ErrorBody, "description": "Credentials of the wrong type, or too low a role"},
    404: {"model": ErrorBody, "description": "No such object, revision, key or user"},
    409: {"model": ErrorBody, "description": "Exists already, changed meanwhile, or review rules"},
    422: {"model": ValidationErrorBody, "description": "Invalid request; each field is named"},
}


def field_error(
    loc: list[str | int], msg: str, kind: str = "value_error"
) -> RequestValidationError:
    """A 422 naming one field, for checks that only the route can make (e.g. key ≠ path)."""
    return RequestValidationError([{"loc": tuple(loc), "msg": msg, "type": kind}])


def _named(error: dict[str, Any]) -> dict[str, Any]:
    """One error as returned, the field named even for whole-object checks.

    The registry's model validators say ``"attribute: a list group needs …"`` and pydantic
    reports them at the object (``["body"]``); the path before the colon is moved into ``loc``,
    as the registry does for objects it validates itself.
    """
    loc = list(error.get("loc", ()))
    msg = str(error.get("msg", "")).removeprefix("Value error, ")
    path, sep, rest = msg.partition(": ")
    if sep and path and " " not in path:
        loc += [int(p) if p.isdigit() else p for p in path.split(".")]
        msg = rest
    return {"loc": loc, "msg": msg, "type": str(error.get("type", ""))}


def _validation_response(errors: list[dict[str, Any]]) -> JSONResponse:
    detail = [_named(e) for e in errors] or [
        {"loc": [], "msg": "invalid request", "type": "value_error"}
    ]
    first = detail[0]
    where = ".".join(str(p) for p in first["loc"])
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    if len(detail) > 1:
        message += f" (and {len(detail) - 1} more)"
    return JSONResponse({"detail": detail, "message": message}, status_code=422)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def install(api: FastAPI) -> None:
    """Register the handlers that turn registry errors into the responses above."""

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return _error(404, str(exc))

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return _error(409, str(exc))

    async def approval_required(_: Request, exc: Exception) -> JSONResponse:
        return _error(
            409,
            f"{exc}: POST …/revisions/{{version}}/request-review, have another editor POST "
            "…/revisions/{version}/approve, then POST …/revisions/{version}/publish",
        )

    async def review_error(_: Request, exc: Exception) -> JSONResponse:
        return _error(409, str(exc))

    async def invalid_object(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidObject)
        errors = [
            {"loc": ["body", *e.get("loc", [])], "msg": e.get("msg", ""), "type": "invalid"}
            for e in exc.errors
        ]
        return _validation_response(errors)

    async def request_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_response(list(exc.errors()))

    async def data_error(request: Request, exc: Exception) -> JSONResponse:
        # The database refused a value the models let through (a NUL character in PostgreSQL
        # text, an integer beyond its column). Its message may quote the value, so it is
        # neither logged nor returned; the type of error is enough to find the cause.
        log.warning("database refused a value on %s %s", request.method, request.url.path)
        return _error(
            422, "a value could not be stored (a NUL character, or a number out of range?)"
        )

    api.add_exception_handler(NotFound, not_found)
    api.add_exception_handler(Conflict, conflict)
    api.add_exception_handler(ApprovalRequired, approval_required)
    api.add_exception_handler(ReviewError, review_error)
    api.add_exception_handler(InvalidObject, invalid_object)
    api.add_exception_handler(RequestValidationError, request_invalid)
    api.add_exception_handler(DataError, data_error)
