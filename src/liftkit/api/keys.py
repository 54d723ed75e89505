"""API keys and SDK connections: ``/api/v1/keys`` and ``/api/v1/sdk-connections``.

Three kinds of key share one table (see ``liftkit.registry.accounts``): secret keys (admin API,
with a role), ingest keys (``POST /api/v1/events``) and SDK keys. An SDK key *is* an SDK
connection, a project + environment whose payload it reads, so it gets its own friendlier
route; ``/keys`` lists every kind. A key's secret is returned once, by the request that creates
it, and nowhere else: lists show the public prefix only.
"""

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from liftkit.api.auth import Authenticator, Principal
from liftkit.api.errors import RESPONSES, field_error
from liftkit.platform import Platform
from liftkit.registry._base import Key
from liftkit.registry.accounts import ApiKey, KeyType, Role
from liftkit.registry.errors import NotFound

log = logging.getLogger("liftkit.api.keys")

KeyId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The key's id.")]


class KeyRequest(BaseModel):
    """A new secret key (with a role) or ingest key. SDK keys: ``/api/v1/sdk-connections``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["secret", "ingest"] = "secret"
    name: str = Field("", max_length=200)
    role: Role | None = Field(None, description="Required for secret keys; ingest keys have none.")
    project: Key | None = Field(None, description="Limit the key to one project (None: all).")


class SdkConnectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200)
    project: Key = "default"
    environment: Key
    encrypt: bool = Field(False, description="Serve the payload AES-encrypted.")


class CreatedKey(BaseModel):
    """The one response that carries a key's secret: store it now, it is never shown again."""

    key: ApiKey
    secret: str
    #: For encrypted SDK connections: what the SDK needs to decrypt the payload.
    decryption_key: str | None = None


def public(key: ApiKey) -> ApiKey:
    """A key's record as lists show it: the payload decryption key replaced by a flag."""
    config = {k: v for k, v in key.config.items() if k != "encryption_key"}
    if "encryption_key" in key.config:
        config["encrypted"] = True
    return key.model_copy(update={"config": config})


def issue_key(platform: Platform, actor: str, type: KeyType, **options: Any) -> CreatedKey:
    """Create a key and audit it; the caller has checked the admin role and the options.

    Shared by ``POST /keys``, ``POST /sdk-connections`` and the dashboard's settings page, so a
    key made anywhere leaves the same audit record.
    """
    secret, key = platform.accounts.create_key(type, created_by=actor, **options)
    platform.registry.record(
        actor,
        "key.create",
        f"{type} key {key.prefix}",
        key_id=key.id,
        type=type,
        prefix=key.prefix,
        project=key.project,
        role=key.role,
        environment=key.environment,
    )
    log.info("%s created %s key %s", actor, type, key.prefix)
    return CreatedKey(
        key=public(key), secret=secret, decryption_key=key.config.get("encryption_key")
    )


def revoke(platform: Platform, principal: Principal, key: ApiKey) -> ApiKey:
    """Revoke ``key`` if ``principal`` administers its project, and audit it (public record)."""
    principal.require("admin", key.project, f"revoking key {key.id}")
    revoked = platform.accounts.revoke_key(key.id)
    platform.registry.record(
        principal.actor, "key.revoke", f"{key.type} key {key.prefix}", key_id=key.id
    )
    log.info("%s revoked %s key %s", principal.actor, key.type, key.prefix)
    return public(revoked)


def keys_router(platform: Platform, auth: Authenticator) -> APIRouter:
    Caller = Annotated[Principal, Depends(auth)]  # noqa: N806 (a type alias, named like one)
    accounts, registry = platform.accounts, platform.registry
    router = APIRouter(responses=RESPONSES)

    def known_project(project: str | None, loc: list[str | int]) -> None:
        if project is not None and registry.find("projects", project) is None:
            raise field_error(loc, f"no project {project!r}")

    @router.get(
        "/keys",
        response_model=list[ApiKey],
        tags=["keys"],
        operation_id="list_keys",
        summary="API keys of every type (no secrets)",
    )
    def list_keys(
        principal: Caller,
        type: Annotated[KeyType | None, Query(description="Only keys of this type.")] = None,
        include_revoked: bool = False,
    ) -> Any:
        principal.require_anywhere("admin", "listing keys")
        found = accounts.keys(type, include_revoked=include_revoked)
        return [public(k) for k in found if principal.can("admin", k.project)]

    @router.post(
        "/keys",
        response_model=CreatedKey,
        status_code=201,
        tags=["keys"],
        operation_id="create_key",
        summary="Create a key (its secret is shown once)",
    )
    def create_key(body: KeyRequest, principal: Caller) -> Any:
        principal.require("admin", body.project, "creating keys")
        known_project(body.project, ["body", "project"])
        if body.type == "ingest" and body.role is not None:
            raise field_error(["body", "role"], "only secret keys have a role")
        return issue_key(
            platform,
            principal.actor,
            body.type,
            name=body.name,
            role=body.role,
            project=body.project,
        )

    @router.delete(
        "/keys/{key_id}",
        response_model=ApiKey,
        tags=["keys"],
        operation_id="revoke_key",
        summary="Revoke a key",
    )
    def revoke_key(key_id: KeyId, principal: Caller) -> Any:
        return revoke(platform, principal, accounts.key(key_id))

    @router.get(
        "/sdk-connections",
        response_model=list[ApiKey],
        tags=["sdk-connections"],
        operation_id="list_sdk_connections",
        summary="SDK connections (no keys)",
    )
    def list_connections(
        principal: Caller,
        project: Annotated[Key | None, Query(description="Only this project's.")] = None,
    ) -> Any:
        principal.require_anywhere("viewer", "listing SDK connections")
        return [
            public(k)
            for k in accounts.keys("sdk")
            if (project is None or k.project == project) and principal.can("viewer", k.project)
        ]

    @router.post(
        "/sdk-connections",
        response_model=CreatedKey,
        status_code=201,
        tags=["sdk-connections"],
        operation_id="create_sdk_connection",
        summary="Create an SDK connection (its client key is shown once)",
    )
    def create_connection(body: SdkConnectionRequest, principal: Caller) -> Any:
        principal.require("admin", body.project, "creating SDK connections")
        known_project(body.project, ["body", "project"])
        if registry.find("environments", body.environment) is None:
            raise field_error(["body", "environment"], f"no environment {body.environment!r}")
        return issue_key(
            platform,
            principal.actor,
            "sdk",
            name=body.name,
            project=body.project,
            environment=body.environment,
            encrypt=body.encrypt,
        )

    @router.delete(
        "/sdk-connections/{key_id}",
        response_model=ApiKey,
        tags=["sdk-connections"],
        operation_id="revoke_sdk_connection",
        summary="Revoke an SDK connection",
    )
    def revoke_connection(key_id: KeyId, principal: Caller) -> Any:
        key = accounts.key(key_id)
        if key.type != "sdk":
            raise NotFound(f"no SDK connection {key_id} (it is a {key.type} key: DELETE /keys/…)")
        return revoke(platform, principal, key)

    return router
