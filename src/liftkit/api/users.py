"""People: ``/api/v1/users`` (admins only).

Users get roles per project (``*`` for every project). Managing them needs the admin role on
every project, because a user's memberships can span all of them. Users are disabled rather
than deleted, so the audit log's ``user:<email>`` entries keep pointing at someone.
"""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from liftkit.api.auth import EVERY_PROJECT, Authenticator, Principal
from liftkit.api.errors import RESPONSES, field_error
from liftkit.platform import Platform
from liftkit.registry.accounts import Role, User
from liftkit.registry.errors import Conflict

log = logging.getLogger("liftkit.api.users")

#: A project key, or ``*`` for every project.
ProjectRef = Annotated[
    str, StringConstraints(max_length=200, pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9_.:\-]*)$")
]
UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The user's id.")]
ProjectPath = Annotated[ProjectRef, Path(description="A project key, or `*` for every project.")]


class UserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: SecretStr = Field(min_length=8, max_length=1024)
    name: str = Field("", max_length=200)
    roles: dict[ProjectRef, Role] = Field(
        default_factory=dict, description="Project key (or `*`) → role."
    )


class RoleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


def add_user(
    platform: Platform,
    principal: Principal,
    email: str,
    password: str,
    name: str,
    roles: dict[str, Role],
) -> User:
    """Create a user and audit it; the caller has checked that the projects exist.

    These functions are the one place each change to people is made and audited, for the REST
    API and the dashboard's settings page alike.
    """
    principal.require("admin", None, "managing users")
    user = platform.accounts.create_user(email, password, name=name, roles=roles)
    platform.registry.record(principal.actor, "user.create", f"user:{user.email}", roles=user.roles)
    log.info("%s created user %s", principal.actor, user.email)
    return user


def set_role(
    platform: Platform, principal: Principal, user_id: int, project: str, role: Role | None
) -> User:
    """Give (or with None take) a user's role on a project (or ``*``), audited."""
    principal.require("admin", None, "managing users")
    platform.accounts.user(user_id)  # 404 before the membership's foreign key would fail
    user = platform.accounts.set_role(user_id, project, role)
    platform.registry.record(
        principal.actor, "user.role", f"user:{user.email}", project=project, role=role
    )
    return user


def set_disabled(platform: Platform, principal: Principal, user_id: int, disabled: bool) -> User:
    """Disable or enable a user, audited; nobody disables themselves (someone must be left)."""
    principal.require("admin", None, "managing users")
    if disabled and principal.user is not None and principal.user.id == user_id:
        raise Conflict("you cannot disable yourself; ask another admin")
    user = platform.accounts.set_disabled(user_id, disabled)
    action = "user.disable" if disabled else "user.enable"
    platform.registry.record(principal.actor, action, f"user:{user.email}")
    return user


def users_router(platform: Platform, auth: Authenticator) -> APIRouter:
    Caller = Annotated[Principal, Depends(auth)]  # noqa: N806 (a type alias, named like one)
    accounts, registry = platform.accounts, platform.registry
    router = APIRouter(prefix="/users", tags=["users"], responses=RESPONSES)

    def known_project(project: str, loc: list[str | int]) -> None:
        if project != EVERY_PROJECT and registry.find("projects", project) is None:
            raise field_error(loc, f"no project {project!r}")

    @router.get("", response_model=list[User], operation_id="list_users", summary="List users")
    def list_users(principal: Caller) -> Any:
        principal.require("admin", None, "managing users")
        return accounts.users()

    @router.post(
        "",
        response_model=User,
        status_code=201,
        operation_id="create_user",
        summary="Create a user with roles",
    )
    def create_user(body: UserRequest, principal: Caller) -> Any:
        principal.require("admin", None, "managing users")
        for project in body.roles:
            known_project(project, ["body", "roles", project])
        password = body.password.get_secret_value()
        return add_user(platform, principal, body.email, password, body.name, body.roles)

    @router.get("/{user_id}", response_model=User, operation_id="get_user", summary="One user")
    def read_user(user_id: UserId, principal: Caller) -> Any:
        principal.require("admin", None, "managing users")
        return accounts.user(user_id)

    @router.put(
        "/{user_id}/roles/{project}",
        response_model=User,
        operation_id="set_user_role",
        summary="Give a user a role on a project (or `*`)",
    )
    def put_role(
        user_id: UserId, project: ProjectPath, body: RoleRequest, principal: Caller
    ) -> Any:
        known_project(project, ["path", "project"])
        return set_role(platform, principal, user_id, project, body.role)

    @router.delete(
        "/{user_id}/roles/{project}",
        response_model=User,
        operation_id="remove_user_role",
        summary="Take a user's role on a project",
    )
    def delete_role(user_id: UserId, project: ProjectPath, principal: Caller) -> Any:
        return set_role(platform, principal, user_id, project, None)

    @router.post(
        "/{user_id}/disable",
        response_model=User,
        operation_id="disable_user",
        summary="Disable a user (ends their sessions)",
    )
    def disable(user_id: UserId, principal: Caller) -> Any:
        return set_disabled(platform, principal, user_id, True)

    @router.post(
        "/{user_id}/enable",
        response_model=User,
        operation_id="enable_user",
        summary="Enable a disabled user",
    )
    def enable(user_id: UserId, principal: Caller) -> Any:
        return set_disabled(platform, principal, user_id, False)

    return router
