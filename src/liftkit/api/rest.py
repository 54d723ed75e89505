"""The admin REST API under ``/api/v1``: what ``liftkit.app`` installs on its FastAPI app.

The routers live beside this module, one per concept (``objects``: every registry collection;
``audit``; ``session``; ``keys``; ``users``); auth is in ``auth`` and the error format in
``errors``. docs/api.md describes the whole API for its users.
"""

from fastapi import APIRouter, FastAPI

from liftkit.api import errors
from liftkit.api.analysis import analysis_router
from liftkit.api.audit import audit_router
from liftkit.api.auth import Authenticator
from liftkit.api.keys import keys_router
from liftkit.api.knowledge import knowledge_router
from liftkit.api.objects import routers as object_routers
from liftkit.api.session import session_router
from liftkit.api.users import users_router
from liftkit.platform import Platform

PREFIX = "/api/v1"


def install(api: FastAPI, platform: Platform) -> None:
    """Add the error handlers and every ``/api/v1`` route to ``api``."""
    errors.install(api)
    auth = Authenticator(platform.accounts)
    v1 = APIRouter(prefix=PREFIX)
    for router in (
        session_router(platform, auth),
        *object_routers(platform.registry, auth),
        audit_router(platform.registry, auth),
        keys_router(platform, auth),
        users_router(platform, auth),
        analysis_router(platform, auth),
        knowledge_router(platform, auth),
    ):
        v1.include_router(router)
    api.include_router(v1)
