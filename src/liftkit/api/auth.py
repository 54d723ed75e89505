"""Who is calling the admin API, and what they may do.

A request is made either by a **secret API key** (``Authorization: Bearer lk_sec_…``: scripts,
CI, config-as-code) or by a **person** logged in with a session cookie (the dashboard). Both
become a ``Principal``: an actor name for the audit log and roles per project.

Roles are ordered viewer < analyst < editor < admin, and a higher role may do everything a lower
one may. The policy is small enough to read in one place (``write_role``/``approve_role``):

* viewer reads everything in its projects;
* analyst also writes metrics and fact tables (what analyses are made of);
* editor writes the other project objects (features, experiments, saved groups, holdouts) and
  approves reviews;
* admin manages what is shared by every project (projects, environments, attributes,
  namespaces) and who may do what (keys, users).

CSRF: cookies are sent by browsers on their own, so a cookie-authenticated request that changes
anything must carry the ``X-Liftkit-Csrf`` header (any value). A hostile page cannot add a custom
header to a cross-origin request without a CORS preflight, which the admin API never grants.
Bearer keys are not ambient credentials, so they need no such header. docs/api.md has the
reasoning at length.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from liftkit.registry import Collection
from liftkit.registry.accounts import Accounts, ApiKey, Role, User, rank

log = logging.getLogger("liftkit.api.auth")

SESSION_COOKIE = "liftkit_session"
CSRF_HEADER = "X-Liftkit-Csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The role for all projects; memberships and keys without a project use it.
EVERY_PROJECT = "*"

#: Collections writable below the default role for their kind (see ``write_role``).
_WRITE_ROLE_OVERRIDES: dict[str, Role] = {
    "metrics": "analyst",
    "fact-tables": "analyst",
    "segments": "analyst",
    "briefs": "analyst",
}

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="secretKey",
    description="A secret API key: `Authorization: Bearer lk_sec_…`.",
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description=(
        "The dashboard's session cookie, set by `POST /api/v1/session`. Requests that change "
        f"data must also send the `{CSRF_HEADER}` header."
    ),
)


def write_role(spec: Collection) -> Role:
    """The role needed to create, change, delete or publish objects of a collection.

    Objects shared by every project default to admin, so a new shared collection added to the
    registry is locked down until someone decides otherwise; project objects default to editor.
    """
    if spec.name in _WRITE_ROLE_OVERRIDES:
        return _WRITE_ROLE_OVERRIDES[spec.name]
    return "editor" if spec.project_scoped else "admin"


def approve_role(spec: Collection) -> Role:
    """Approving a review needs editor, and never less than writing the object itself."""
    return max(write_role(spec), "editor", key=rank)


@dataclass(frozen=True)
class Principal:
    """The caller: an actor name for the audit log and a role per project.

    ``roles`` maps project keys (or ``*`` for every project) to a role, the same shape for a
    user's memberships and for a key (whose one role applies to its project, or to all).
    """

    actor: str
    roles: Mapping[str, Role] = field(default_factory=dict)
    user: User | None = None
    key: ApiKey | None = None

    @classmethod
    def of_user(cls, user: User) -> "Principal":
        return cls(f"user:{user.email}", dict(user.roles), user=user)

    @classmethod
    def of_key(cls, key: ApiKey) -> "Principal":
        roles: dict[str, Role] = {}
        if key.role is not None:
            roles[key.project or EVERY_PROJECT] = key.role
        return cls(key.actor, roles, key=key)

    def role(self, project: str | None) -> Role | None:
        """The role on ``project``; ``None`` asks for the role on every project at once."""
        found = [self.roles.get(EVERY_PROJECT)]
        if project is not None:
            found.append(self.roles.get(project))
        return max((r for r in found if r), key=rank, default=None)

    def best_role(self) -> Role | None:
        """The highest role anywhere (enough to read what every project shares)."""
        return max(self.roles.values(), key=rank, default=None)

    def can(self, role: Role, project: str | None) -> bool:
        return rank(self.role(project)) >= rank(role)

    def require(self, role: Role, project: str | None, action: str) -> None:
        """Raise 403 unless the caller has ``role`` on ``project`` (None: on every project)."""
        if self.can(role, project):
            return
        where = "every project" if project is None else f"project {project!r}"
        has = self.role(project)
        raise Forbidden(
            f"{action} needs the {role} role on {where}; {self.actor} has "
            f"{'the ' + has + ' role' if has else 'no role'} there"
        )

    def require_anywhere(self, role: Role, action: str) -> None:
        """Raise 403 unless the caller has ``role`` on at least one project."""
        best = self.best_role()
        if rank(best) < rank(role):
            has = f"the {best} role at most" if best else "no role at all"
            raise Forbidden(f"{action} needs the {role} role; {self.actor} has {has}")


class Forbidden(HTTPException):
    """403: the caller is known but may not do this. The message says what is missing."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=403, detail=message)


class Unauthenticated(HTTPException):
    """401 with the ``WWW-Authenticate`` challenge RFC 9110 asks for."""

    def __init__(self, message: str, *, invalid_token: bool = False) -> None:
        challenge = 'Bearer realm="liftkit"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        super().__init__(status_code=401, detail=message, headers={"WWW-Authenticate": challenge})


class Authenticator:
    """The FastAPI dependency that turns a request into a ``Principal`` (or a 401/403).

    An ``Authorization`` header wins over a session cookie, so a script that sends a key from a
    browser-like client is judged by its key. Tokens are looked up by digest and never logged:
    log lines name the key by its public prefix only.
    """

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def __call__(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        session: Annotated[str | None, Security(_cookie)],
    ) -> Principal:
        if bearer is not None:
            return self._by_key(bearer.credentials)
        if "authorization" in request.headers:
            raise Unauthenticated("the Authorization header must be 'Bearer <secret key>'")
        if session:
            principal = self._by_session(session)
            check_csrf(request)
            return principal
        raise Unauthenticated(
            "authentication required: send 'Authorization: Bearer <secret key>' or log in "
            "with POST /api/v1/session"
        )

    def optional(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        session: Annotated[str | None, Security(_cookie)],
    ) -> Principal | None:
        """The caller if the request has credentials, else None (for ``?key=`` feeds)."""
        if bearer is None and session is None and "authorization" not in request.headers:
            return None
        return self(request, bearer, session)

    def for_key(self, token: str) -> Principal:
        """The caller a secret key stands for, when it arrives outside the header."""
        return self._by_key(token)

    def _by_key(self, token: str) -> Principal:
        key = self.accounts.resolve_key(token)
        if key is None:
            log.info("rejected an unknown or revoked API key")
            raise Unauthenticated("unknown or revoked API key", invalid_token=True)
        if key.type != "secret":
            log.info("rejected %s key %s on the admin API", key.type, key.prefix)
            use = "SDK payload endpoints" if key.type == "sdk" else "POST /api/v1/events"
            raise Forbidden(
                f"{key.prefix}… is an {key.type} key, usable only on {use}; "
                "the admin API needs a secret key"
            )
        return Principal.of_key(key)

    def _by_session(self, token: str) -> Principal:
        user = self.accounts.session_user(token)
        if user is None:
            raise Unauthenticated("session expired or ended; log in again")
        return Principal.of_user(user)


def check_csrf(request: Request) -> None:
    """Refuse a cookie-authenticated unsafe request that lacks the custom CSRF header."""
    if request.method in SAFE_METHODS or request.headers.get(CSRF_HEADER):
        return
    raise Forbidden(
        f"requests authenticated by the session cookie that change data must send the "
        f"{CSRF_HEADER} header (any value); it proves the request was not forged by another site"
    )


__all__ = [
    "CSRF_HEADER",
    "EVERY_PROJECT",
    "SESSION_COOKIE",
    "Authenticator",
    "Forbidden",
    "Principal",
    "Unauthenticated",
    "approve_role",
    "check_csrf",
    "write_role",
]
