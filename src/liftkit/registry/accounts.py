"""People and keys: users with argon2 passwords, sessions, roles per project, API keys.

API keys are long random tokens, so they are stored as SHA-256 digests (a slow password hash
buys nothing against 190 bits of entropy and would cost milliseconds per request); passwords,
which people choose, get argon2. Plain keys exist only in the return value of ``create_key``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from liftkit.registry.database import bump_epoch
from liftkit.registry.errors import Conflict, InvalidObject, NotFound
from liftkit.registry.tables import api_keys, memberships, sessions, users

Role = Literal["admin", "editor", "analyst", "viewer"]
ROLES: tuple[Role, ...] = ("viewer", "analyst", "editor", "admin")
KeyType = Literal["secret", "sdk", "ingest"]
_PREFIX = {"secret": "lk_sec_", "sdk": "sdk-", "ingest": "lk_ing_"}
_ALPHABET = string.ascii_letters + string.digits
SESSION_LIFETIME = timedelta(days=14)


def rank(role: str | None) -> int:
    """Roles are ordered: a higher role can do everything a lower one can."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class User(BaseModel):
    id: int
    email: str
    name: str = ""
    disabled: bool = False
    #: Project key (``*`` for all projects) → role.
    roles: dict[str, Role] = {}

    def role(self, project: str | None) -> Role | None:
        found = [self.roles.get("*"), self.roles.get(project or "*")]
        return max((r for r in found if r), key=rank, default=None)


class ApiKey(BaseModel):
    """A key's record (never its secret). SDK keys are SDK connections: project + environment."""

    id: int
    type: KeyType
    prefix: str
    name: str = ""
    role: Role | None = None
    project: str | None = None
    environment: str | None = None
    config: dict[str, Any] = {}
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.prefix}"


class Accounts:
    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        session_lifetime: timedelta = SESSION_LIFETIME,
    ) -> None:
        from argon2 import PasswordHasher

        self.engine = engine
        self.clock = clock
        self.session_lifetime = session_lifetime
        self.hasher = PasswordHasher()

    # -- users ---------------------------------------------------------------------------------

    def create_user(
        self, email: str, password: str, *, name: str = "", roles: dict[str, Role] | None = None
    ) -> User:
        if "@" not in email:
            raise InvalidObject(
                "email: not an email address", [{"loc": ["email"], "msg": "invalid"}]
            )
        if len(password) < 8:
            raise InvalidObject(
                "password: at least 8 characters", [{"loc": ["password"], "msg": "too short"}]
            )
        try:
            with self.engine.begin() as conn:
                user_id = conn.execute(
                    insert(users).values(
                        email=email.lower(),
                        name=name,
                        disabled=False,
                        created_at=self.clock(),
                        password_hash=self.hasher.hash(password),
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                for project, role in (roles or {}).items():
                    conn.execute(
                        insert(memberships).values(user_id=user_id, project=project, role=role)
                    )
        except IntegrityError:
            raise Conflict(f"a user with email {email!r} exists already") from None
        return self.user(int(user_id))

    def user(self, user_id: int) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
            if row is None:
                raise NotFound(f"user {user_id} not found")
            roles = {
                m.project: m.role
                for m in conn.execute(select(memberships).where(memberships.c.user_id == user_id))
            }
        return User(id=row.id, email=row.email, name=row.name, disabled=row.disabled, roles=roles)

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            ids = [row.id for row in conn.execute(select(users.c.id).order_by(users.c.id))]
        return [self.user(i) for i in ids]

    def set_role(self, user_id: int, project: str, role: Role | None) -> User:
        with self.engine.begin() as conn:
            conn.execute(
                delete(memberships).where(
                    memberships.c.user_id == user_id, memberships.c.project == project
                )
            )
            if role is not None:
                conn.execute(
                    insert(memberships).values(user_id=user_id, project=project, role=role)
                )
        return self.user(user_id)

    def set_disabled(self, user_id: int, disabled: bool) -> User:
        """Disable (or re-enable) a user. Disabling also ends their sessions at once."""
        with self.engine.begin() as conn:
            found = conn.execute(
                update(users).where(users.c.id == user_id).values(disabled=disabled)
            ).rowcount
            if disabled:
                conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        if not found:
            raise NotFound(f"user {user_id} not found")
        return self.user(user_id)

    def authenticate(self, email: str, password: str) -> User | None:
        """The user if the password matches (argon2 verify, constant-time), else None."""
        from argon2.exceptions import InvalidHashError, VerificationError

        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.email == email.lower())).first()
        if row is None or row.disabled:
            self.hasher.hash(password)  # same cost whether or not the user exists
            return None
        try:
            self.hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if self.hasher.check_needs_rehash(row.password_hash):
            with self.engine.begin() as conn:
                conn.execute(
                    update(users)
                    .where(users.c.id == row.id)
                    .values(password_hash=self.hasher.hash(password))
                )
        return self.user(row.id)

    # -- sessions ------------------------------------------------------------------------------

    def create_session(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                insert(sessions).values(
                    token_hash=token_digest(token),
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + self.session_lifetime,
                )
            )
        return token

    def session_user(self, token: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sessions).where(sessions.c.token_hash == token_digest(token))
            ).first()
        if row is None or row.expires_at <= self.clock():
            return None
        user = self.user(row.user_id)
        return None if user.disabled else user

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == token_digest(token)))

    # -- API keys ------------------------------------------------------------------------------

    def create_key(
        self, type: KeyType, *, created_by: str, name: str = "", role: Role | None = None,
        project: str | None = None, environment: str | None = None, encrypt: bool = False,
    ) -> tuple[str, ApiKey]:  # fmt: skip
        """A new key; the plain token is returned once and never stored."""
        if type == "secret" and role not in ROLES:
            raise InvalidObject(
                "role: a secret key needs a role", [{"loc": ["role"], "msg": "required"}]
            )
        if type == "sdk" and not environment:
            raise InvalidObject(
                "environment: an SDK key serves one environment",
                [{"loc": ["environment"], "msg": "required"}],
            )
        config: dict[str, Any] = {}
        if type == "sdk" and encrypt:
            config["encryption_key"] = base64.b64encode(secrets.token_bytes(16)).decode()
        token = _PREFIX[type] + "".join(secrets.choice(_ALPHABET) for _ in range(32))
        with self.engine.begin() as conn:
            key_id = conn.execute(
                insert(api_keys).values(
                    type=type,
                    token_hash=token_digest(token),
                    prefix=token[: len(_PREFIX[type]) + 4],
                    name=name,
                    role=role if type == "secret" else None,
                    project=project if type != "secret" or project else None,
                    environment=environment,
                    config=config,
                    created_by=created_by,
                    created_at=self.clock(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if type == "sdk":
                bump_epoch(conn)
        return token, self.key(int(key_id))

    def key(self, key_id: int) -> ApiKey:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"key {key_id} not found")
        return _api_key(row)

    def resolve_key(self, token: str) -> ApiKey | None:
        """The live (not revoked) key with this token, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_keys).where(api_keys.c.token_hash == token_digest(token))
            ).first()
        return None if row is None or row.revoked_at is not None else _api_key(row)

    def keys(self, type: KeyType | None = None, *, include_revoked: bool = False) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.id)
        if type is not None:
            query = query.where(api_keys.c.type == type)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_api_key(row) for row in conn.execute(query)]

    def sdk_digests(self) -> dict[str, ApiKey]:
        """Live SDK keys by token digest: the payload cache's index."""
        query = select(api_keys).where(api_keys.c.type == "sdk", api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return {row.token_hash: _api_key(row) for row in conn.execute(query)}

    def revoke_key(self, key_id: int) -> ApiKey:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            ).rowcount
            bump_epoch(conn)
        if not done:
            raise NotFound(f"no live key {key_id}")
        return self.key(key_id)


def _api_key(row: Any) -> ApiKey:
    values = {name: getattr(row, name) for name in ApiKey.model_fields}
    return ApiKey.model_validate(values)
