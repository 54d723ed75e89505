"""API keys and SDK connections on the settings page: list, create (secret shown once), revoke.

The rules are the REST API's (``liftkit.api.keys``): keys are managed by admins of the key's
project, a secret key needs a role, an SDK key serves one project and environment. Keys are
stored as SHA-256 digests, so a key's secret exists only in the response that creates it; the
lists show the public prefix, and the SDK connection URLs show it with the rest elided.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from liftkit.api.auth import Principal
from liftkit.api.keys import KeyId, issue_key, public, revoke
from liftkit.registry.accounts import ROLES, ApiKey, KeyType
from liftkit.web._core import FormError, Viewer, Web, form

KEY_TYPES: tuple[KeyType, ...] = ("secret", "sdk", "ingest")


def may_list_keys(principal: Principal) -> bool:
    """Admins of at least one project see the keys of the projects they administer."""
    return principal.best_role() == "admin"


def keys_context(web: Web, viewer: Viewer) -> dict[str, Any]:
    """What ``settings/_keys.html`` and ``settings/_sdk.html`` show to ``viewer``."""
    principal = viewer.principal
    accounts = web.platform.accounts
    listed: dict[str, list[ApiKey]] = {t: [] for t in KEY_TYPES}
    if may_list_keys(principal):
        for key in accounts.keys(include_revoked=True):
            if principal.can("admin", key.project):
                listed[key.type].append(public(key))
    connections = [public(k) for k in accounts.keys("sdk") if viewer.sees(k.project)]
    return {
        "keys": listed,
        "can_keys": may_list_keys(principal),
        "connections": connections,
        "key_types": KEY_TYPES,
        "roles": ROLES,
        "base_url": web.platform.settings.base_url,
        "admin_projects": [p for p in viewer.projects if principal.can("admin", p)],
        "every_project": principal.can("admin", None),
    }


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    accounts, registry = web.platform.accounts, web.platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    def fragment(request: Request, viewer: Viewer, **extra: Any) -> Response:
        return web.render(
            request, "settings/_keys.html", viewer, **keys_context(web, viewer), oob=True, **extra
        )

    @r.post("/settings/keys")
    async def create_key(request: Request, viewer: Current) -> Response:
        data = await form(request)
        principal = viewer.principal
        kind = data.get("type", "")
        if kind not in KEY_TYPES:
            raise FormError("type", f"must be one of {', '.join(KEY_TYPES)}")
        name = data.get("name", "").strip()[:200]
        project = data.get("project", "").strip() or None
        options: dict[str, Any] = {"name": name}
        if kind == "sdk":
            project = project or "default"
            environment = data.get("environment", "").strip()
            principal.require("admin", project, "creating SDK connections")
            if registry.find("environments", environment) is None:
                raise FormError("environment", f"choose an environment (no {environment!r})")
            options |= {
                "project": project,
                "environment": environment,
                "encrypt": data.get("encrypt") in ("on", "true", "1"),
            }
        else:
            role = data.get("role", "").strip() or None
            principal.require("admin", project, "creating keys")
            if kind == "ingest" and role is not None:
                raise FormError("role", "only secret keys have a role")
            if kind == "secret" and role not in ROLES:
                raise FormError("role", "a secret key needs a role")
            options |= {"project": project, "role": role}
        if project is not None and registry.find("projects", project) is None:
            raise FormError("project", f"no project {project!r}")
        created = issue_key(web.platform, viewer.actor, kind, **options)
        return fragment(
            request,
            viewer,
            created=created.key,
            secret=created.secret,
            decryption_key=created.decryption_key,
        )

    @r.post("/settings/keys/{key_id}/revoke")
    def revoke_key(key_id: KeyId, request: Request, viewer: Current) -> Response:
        revoked = revoke(web.platform, viewer.principal, accounts.key(key_id))
        return fragment(request, viewer, revoked=revoked)

    return r
