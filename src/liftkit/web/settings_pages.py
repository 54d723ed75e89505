"""Settings: users and roles, API keys and SDK connections, webhooks and the notification outbox.

Everything here is organisation-wide, so it is an admin's page: people with the admin role on
every project manage users and the knowledge base's webhooks, admins of a project manage its
keys, and everyone else sees the SDK connections they may read and nothing more. The rules are
the REST API's (``liftkit.api.users``, ``liftkit.api.keys``), checked again on every action.
Key routes are in ``keys.py`` and the live counters in ``live.py``; both are included here.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from liftkit.api import users
from liftkit.api.auth import EVERY_PROJECT, write_role
from liftkit.api.users import UserId
from liftkit.automation.notify import Delivery, Notifier
from liftkit.knowledge.base import SETTINGS_KEY
from liftkit.registry import collection
from liftkit.registry.accounts import ROLES, Role
from liftkit.registry.briefs import KnowledgeSettings
from liftkit.registry.playbooks import Webhook
from liftkit.web import keys, live
from liftkit.web._core import FormError, Viewer, Web, form, form_lists

WEBHOOK_FORMATS = ("liftkit", "slack")
OUTBOX_ROWS = 30


def webhooks_from_form(data: dict[str, list[str]], current: list[Webhook]) -> list[Webhook]:
    """Rows of url/format/secret fields; a blank URL drops a row, a blank secret keeps the one
    the same URL had (secrets are never sent back to the browser)."""
    secrets = {str(h.url): h.secret for h in current}
    urls, formats, given = data.get("url", []), data.get("format", []), data.get("secret", [])
    hooks: list[Webhook] = []
    for i, raw in enumerate(urls):
        url = raw.strip()
        if not url:
            continue
        fmt = formats[i] if i < len(formats) else "liftkit"
        secret = given[i].strip() if i < len(given) else ""
        try:
            hook = Webhook.model_validate({"url": url, "format": fmt, "secret": secret})
        except ValidationError as error:
            reason = error.errors()[0]["msg"]
            raise FormError("url", f"webhook {i + 1} ({url!r}): {reason}") from None
        if not secret:
            hook = hook.model_copy(update={"secret": secrets.get(str(hook.url), "")})
        hooks.append(hook)
    return hooks


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    accounts, registry = web.platform.accounts, web.platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias
    kb_writer = write_role(collection("knowledge-settings"))

    def knowledge_settings() -> KnowledgeSettings:
        found = registry.find("knowledge-settings", SETTINGS_KEY)
        return found if isinstance(found, KnowledgeSettings) else KnowledgeSettings(key="default")

    def outbox() -> list[Delivery]:
        if web.controller is not None:
            return web.controller.notifier.deliveries(limit=OUTBOX_ROWS)
        notifier = Notifier(web.platform.engine, clock=web.platform.clock)
        try:
            return notifier.deliveries(limit=OUTBOX_ROWS)
        finally:
            notifier.close()

    def users_fragment(request: Request, viewer: Viewer, **extra: Any) -> Response:
        return web.render(
            request, "settings/_users.html", viewer, users=accounts.users(), roles=ROLES, **extra
        )

    @r.get("/settings")
    def settings_page(request: Request, viewer: Current) -> Response:
        principal = viewer.principal
        is_admin = principal.can("admin", None)
        context: dict[str, Any] = {"is_admin": is_admin, **keys.keys_context(web, viewer)}
        if is_admin:
            context |= {
                "users": accounts.users(),
                "roles": ROLES,
                "knowledge": knowledge_settings(),
                "playbooks": [p for p in registry.all("playbooks") if p.notify],
                "outbox": outbox(),
                "formats": WEBHOOK_FORMATS,
            }
        return web.render(request, "settings/page.html", viewer, **context)

    # -- users (admins of every project, as /api/v1/users) ---------------------------------
    def known_project(project: str, field: str) -> None:
        if project != EVERY_PROJECT and registry.find("projects", project) is None:
            raise FormError(field, f"no project {project!r}")

    @r.post("/settings/users")
    async def create_user(request: Request, viewer: Current) -> Response:
        viewer.principal.require("admin", None, "managing users")
        data = await form(request)
        email, password = data.get("email", "").strip(), data.get("password", "")
        if not email:
            raise FormError("email", "enter the person's email address")
        if len(password) < 8:
            raise FormError("password", "at least 8 characters")
        project, role = data.get("project", EVERY_PROJECT) or EVERY_PROJECT, data.get("role", "")
        if role not in ROLES:
            raise FormError("role", f"must be one of {', '.join(ROLES)}")
        known_project(project, "project")
        name = data.get("name", "").strip()
        user = users.add_user(
            web.platform, viewer.principal, email, password, name, {project: role}
        )
        return users_fragment(request, viewer, notice=f"Created {user.email}.")

    @r.post("/settings/users/{user_id}/role")
    async def set_role(user_id: UserId, request: Request, viewer: Current) -> Response:
        viewer.principal.require("admin", None, "managing users")
        data = await form(request)
        project = data.get("project", EVERY_PROJECT) or EVERY_PROJECT
        raw = data.get("role", "")
        if raw not in (*ROLES, ""):
            raise FormError("role", f"must be one of {', '.join(ROLES)}, or none")
        role: Role | None = raw or None  # type: ignore[assignment]
        if role is not None:
            known_project(project, "project")
        user = users.set_role(web.platform, viewer.principal, user_id, project, role)
        what = f"{role} on {project}" if role else f"no role on {project}"
        return users_fragment(request, viewer, notice=f"{user.email} now has {what}.")

    @r.post("/settings/users/{user_id}/{action}")
    def set_disabled(user_id: UserId, action: str, request: Request, viewer: Current) -> Response:
        viewer.principal.require("admin", None, "managing users")
        if action not in ("disable", "enable"):
            raise FormError("action", "must be disable or enable")
        user = users.set_disabled(web.platform, viewer.principal, user_id, action == "disable")
        return users_fragment(request, viewer, notice=f"{user.email} is {action}d.")

    # -- webhooks and digest recipients of the knowledge base ------------------------------
    @r.post("/settings/notifications")
    async def save_notifications(request: Request, viewer: Current) -> Response:
        viewer.principal.require(kb_writer, None, "changing the knowledge settings")
        data = await form_lists(request)
        current = knowledge_settings()
        hooks = webhooks_from_form(data, current.notify)
        text = " ".join(data.get("digest_recipients", [""]))
        recipients = [a.strip() for a in text.replace(",", " ").split() if a.strip()]
        for address in recipients:
            if "@" not in address:
                raise FormError("digest_recipients", f"{address!r} is not an email address")
        updated = current.model_copy(update={"notify": hooks, "digest_recipients": recipients})
        registry.save(
            "knowledge-settings",
            KnowledgeSettings.model_validate(updated.model_dump()),
            viewer.actor,
            message="notifications changed in the dashboard",
        )
        return web.redirect(request, "/settings#notifications")

    r.include_router(keys.router(web, route_class))
    r.include_router(live.router(web, route_class))
    return r
