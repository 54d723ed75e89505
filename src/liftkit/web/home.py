"""Logging in and out, the project/environment switcher, and the overview page."""

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from liftkit.api.session import end_session, start_session
from liftkit.web._core import ENVIRONMENT_COOKIE, PROJECT_COOKIE, FormError, Viewer, Web, form


def _local(target: str | None) -> str:
    """Only same-site paths are followed after login, so ``next`` cannot send people away."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    # Browsers read "\\" as "/" and drop tabs and newlines, so "/\\evil.example" would leave.
    if "\\" in target or any(c.isspace() or not c.isprintable() for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    accounts, registry = web.platform.accounts, web.platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    @r.get("/login")
    def login_page(request: Request, next: str | None = None) -> Response:
        return web.render(request, "login.html", next=_local(next))

    @r.post("/login")
    async def login(request: Request) -> Response:
        data = await form(request)
        email, password = data.get("email", "").strip(), data.get("password", "")
        if not email:
            raise FormError("email", "enter the email address you log in with")
        if not password:
            raise FormError("password", "enter your password")
        if len(email) > 320 or len(password) > 1024:  # the API's limits (argon2 costs time)
            return web.error(request, 401, "Wrong email or password, or the account is disabled.")
        user = accounts.authenticate(email, password)
        if user is None:
            return web.error(request, 401, "Wrong email or password, or the account is disabled.")
        response = web.redirect(request, _local(data.get("next")))
        start_session(web.platform, user, request, response, via="dashboard")
        return response

    @r.post("/logout")
    def logout(request: Request) -> Response:
        response = web.redirect(request, "/login")
        end_session(web.platform, request, response)
        return response

    @r.get("/switch")
    def switch(
        viewer: Current, project: str = "", environment: str = "", next: str = "/"
    ) -> Response:
        """Remember the switcher's choice in cookies (a plain GET form: works without JS)."""
        response = RedirectResponse(_local(next), status_code=303)
        if project in viewer.projects or project == "":
            response.set_cookie(PROJECT_COOKIE, project, samesite="lax", httponly=True)
        if environment in viewer.environments:
            response.set_cookie(ENVIRONMENT_COOKIE, environment, samesite="lax", httponly=True)
        return response

    @r.get("/")
    def overview(request: Request, viewer: Current) -> Response:
        features = [f for f in registry.all("features") if viewer.sees(f.project)]
        experiments = [e for e in registry.all("experiments") if viewer.sees(e.project)]
        playbooks = [p for p in registry.all("playbooks") if viewer.sees(p.project)]
        by_status: dict[str, int] = {}
        for e in experiments:
            by_status[e.status] = by_status.get(e.status, 0) + 1
        running = [e for e in experiments if e.status == "running"]
        # Entries without a project (logins, users, keys, shared objects) are the whole
        # organisation's: the API shows them only to viewers of every project, and so do we.
        everywhere = viewer.principal.can("viewer", None)
        recent = [
            a
            for a in registry.audit(limit=40)
            if (everywhere if a.project is None else viewer.sees(a.project))
        ][:15]
        return web.render(
            request,
            "overview.html",
            viewer,
            features=features,
            experiments=experiments,
            by_status=by_status,
            running=running,
            playbooks=playbooks,
            recent=recent,
        )

    return r
