"""Revision and audit records, and the rules for which changes need a reviewer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from liftkit.registry._diff import diff
from liftkit.registry.features import ExperimentRule, Feature

RevisionStatus = Literal["draft", "pending_review", "approved", "published", "discarded"]
#: Statuses of a revision still waiting to be published or discarded.
OPEN_STATUSES: tuple[RevisionStatus, ...] = ("draft", "pending_review", "approved")


class Revision(BaseModel):
    """One version of an object. ``body`` None means the object is deleted in this version."""

    collection: str
    key: str
    version: int
    base_version: int
    status: RevisionStatus
    author: str
    reviewer: str | None = None
    message: str = ""
    created_at: datetime
    published_at: datetime | None = None
    body: dict[str, Any] | None = None


class AuditEntry(BaseModel):
    """Who did what to which object, with the object before and after."""

    id: int
    at: datetime
    actor: str
    action: str
    collection: str | None = None
    key: str | None = None
    project: str | None = None
    version: int | None = None
    before: Any = None
    after: Any = None
    message: str = ""


class DiffEntry(BaseModel):
    path: str
    op: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None


def diff_entries(before: Any, after: Any) -> list[DiffEntry]:
    return [DiffEntry(**change._asdict()) for change in diff(before, after)]


def feature_environments(before: dict[str, Any] | None, after: dict[str, Any] | None) -> set[str]:
    """Environments whose served values a feature change can alter.

    A change inside one environment's section touches that environment; any other change
    (default value, archiving, creation, deletion) touches every environment the feature has.
    """
    envs_before = (before or {}).get("environments", {})
    envs_after = (after or {}).get("environments", {})
    every = set(envs_before) | set(envs_after)
    rest_before = {k: v for k, v in (before or {}).items() if k != "environments"}
    rest_after = {k: v for k, v in (after or {}).items() if k != "environments"}
    if before is None or after is None or _served(rest_before) != _served(rest_after):
        return every
    return {env for env in every if envs_before.get(env) != envs_after.get(env)}


_UNSERVED = {"name", "description", "owner", "tags", "kind", "project"}


def _served(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _UNSERVED}


def experiment_environments(key: str, features: list[Feature]) -> set[str]:
    """Environments where some enabled feature runs experiment ``key``."""
    return {
        env
        for feature in features
        for env, setting in feature.environments.items()
        if setting.enabled
        and any(isinstance(r, ExperimentRule) and r.experiment == key for r in setting.rules)
    }
