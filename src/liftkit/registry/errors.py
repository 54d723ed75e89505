"""Exceptions raised by the registry.

Hierarchy::

    RegistryError
    ├── NotFound            no such object, revision, user or key
    ├── Conflict            the object exists already, or live moved on since a draft was made
    ├── InvalidObject       a body failed validation; ``errors`` names each field
    └── ReviewError         an approval rule was not followed
        └── ApprovalRequired   publishing needs someone other than the author to approve

The API maps them to 404, 409, 422 and 403/409; the CLI prints their message.
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base class of the registry's errors."""


class NotFound(RegistryError):
    pass


class Conflict(RegistryError):
    pass


class InvalidObject(RegistryError):
    """``errors`` is a list of ``{"loc": [...], "msg": ...}`` like pydantic's."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [{"loc": [], "msg": message}]


class ReviewError(RegistryError):
    pass


class ApprovalRequired(ReviewError):
    pass
