"""Logging in and out of the dashboard: ``/api/v1/session``.

A login sets an HttpOnly, SameSite=Lax cookie holding a random session token (stored only as
its digest, like API keys). The login itself also needs the CSRF header: without it a hostile
page could log a visitor's browser into the attacker's account and watch what they do there.
"""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from liftkit.api.auth import (
    SESSION_COOKIE,
    Authenticator,
    Principal,
    Unauthenticated,
    check_csrf,
)
from liftkit.api.errors import RESPONSES
from liftkit.api.keys import public
from liftkit.platform import Platform
from liftkit.registry.accounts import ApiKey, Role, User

log = logging.getLogger("liftkit.api.session")


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    #: SecretStr: the password shows as ``**********`` in any repr, traceback or log line.
    password: SecretStr = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    """Who the API thinks the caller is, and the roles it will act with."""

    actor: str
    roles: dict[str, Role]
    user: User | None = None
    key: ApiKey | None = None


def me(principal: Principal) -> Me:
    key = public(principal.key) if principal.key is not None else None
    return Me(actor=principal.actor, roles=dict(principal.roles), user=principal.user, key=key)


def start_session(
    platform: Platform, user: User, request: Request, response: Response, *, via: str = ""
) -> Principal:
    """Open a session for an authenticated ``user``: the cookie on ``response``, an audit record.

    The API's login and the dashboard's login form both end here, so the cookie's attributes
    are decided once: HttpOnly, SameSite=Lax, Secure when the public URL or the request is HTTPS
    (behind a TLS-terminating proxy the request looks like plain HTTP; the public URL says what
    browsers really use).
    """
    accounts = platform.accounts
    token = accounts.create_session(user.id)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(accounts.session_lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=platform.settings.base_url.startswith("https://") or request.url.scheme == "https",
    )
    principal = Principal.of_user(user)
    platform.registry.record(principal.actor, "login", via)
    log.info("%s logged in", principal.actor)
    return principal


def end_session(platform: Platform, request: Request, response: Response) -> None:
    """End the request's session in the database (not just in this browser), audited, and
    clear the cookie on ``response``; without a session there is nothing to end."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user = platform.accounts.session_user(token)
        platform.accounts.end_session(token)
        if user is not None:
            platform.registry.record(f"user:{user.email}", "logout")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def session_router(platform: Platform, auth: Authenticator) -> APIRouter:
    Caller = Annotated[Principal, Depends(auth)]  # noqa: N806 (a type alias, named like one)
    accounts = platform.accounts
    router = APIRouter(prefix="/session", tags=["session"], responses=RESPONSES)

    @router.post("", response_model=Me, operation_id="login", summary="Log in (sets a cookie)")
    def login(body: Credentials, request: Request, response: Response) -> Any:
        check_csrf(request)
        user = accounts.authenticate(body.email, body.password.get_secret_value())
        if user is None:
            log.info("failed login for %s", body.email)
            raise Unauthenticated("wrong email or password (or the account is disabled)")
        principal = start_session(platform, user, request, response)
        return me(principal)

    @router.get("", response_model=Me, operation_id="whoami", summary="Who am I")
    def whoami(principal: Caller) -> Any:
        return me(principal)

    @router.delete("", status_code=204, operation_id="logout", summary="Log out")
    def logout(request: Request) -> Response:
        """Ends the session in the database (not just in this browser) and clears the cookie.

        Idempotent: without a session there is nothing to end, which is what was asked.
        """
        if request.cookies.get(SESSION_COOKIE):
            check_csrf(request)
        response = Response(status_code=204)
        end_session(platform, request, response)
        return response

    return router
