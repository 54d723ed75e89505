"""The dashboard's one core object and the request plumbing every page shares.

``Web`` is built once in ``app.py`` and handed to each page module's ``router(web)``, the way
Datasette passes its ``Datasette`` object: templates, the platform and the running pipeline and
controller are all reached through it, never through globals.

Pages are FastAPI routes with ``PageRoute`` as their route class, so a failure anywhere in a
page (not logged in, too low a role, a registry error, a bad form field) becomes HTML for a
person rather than the admin API's JSON: a login redirect, a full error page, or, for htmx
requests, a message swapped into the page's ``#flash`` region with a 4xx status.

Writes are made with the same policy as the REST API (``write_role``/``approve_role``), the
same registry operations and the same CSRF rule: every change is an htmx request, and htmx sends
the ``X-Liftkit-Csrf`` header the base template sets on ``<body>``.
"""

import html
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError

from liftkit.api.auth import SESSION_COOKIE, Principal, check_csrf
from liftkit.automation import Controller
from liftkit.events import Pipeline
from liftkit.platform import Platform
from liftkit.registry.accounts import Role
from liftkit.registry.errors import Conflict, InvalidObject, NotFound, RegistryError
from liftkit.web import _format

log = logging.getLogger("liftkit.web")

STATIC = Path(__file__).parent / "static"
PROJECT_COOKIE = "liftkit_project"
ENVIRONMENT_COOKIE = "liftkit_environment"


class LoginRequired(Exception):
    """Raised by ``Web.viewer`` when no valid session cookie came with the request."""


class FormError(Exception):
    """A form field a person filled in wrongly: shown next to the form, with a 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Viewer:
    """Who is looking, and at which project and environment (the switcher's choice)."""

    principal: Principal
    project: str | None
    environment: str
    projects: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)

    @property
    def actor(self) -> str:
        return self.principal.actor

    def can(self, role: Role, project: str | None = None) -> bool:
        """Whether to show an edit control; the action itself checks again."""
        return self.principal.can(role, project if project is not None else self.project)

    def sees(self, project: str | None) -> bool:
        """Whether an object of ``project`` belongs on a list: inside the switcher's choice and
        readable by the viewer, as the API decides (objects shared by every project, with no
        project of their own, need a role somewhere)."""
        if self.project is not None and project not in (None, self.project):
            return False
        if project is None:
            return self.principal.best_role() is not None
        return self.principal.can("viewer", project)


class Web:
    """The dashboard: templates plus the parts of the running platform pages need."""

    def __init__(
        self,
        platform: Platform,
        *,
        pipeline: Pipeline | None = None,
        controller: Controller | None = None,
    ) -> None:
        self.platform = platform
        self.pipeline = pipeline
        self.controller = controller
        self.env = Environment(
            loader=PackageLoader("liftkit.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        _format.install(self.env)

    # -- who is looking ------------------------------------------------------------------
    def viewer(self, request: Request) -> Viewer:
        """The logged-in person, or ``LoginRequired``; pages take it as a dependency."""
        token = request.cookies.get(SESSION_COOKIE)
        user = self.platform.accounts.session_user(token) if token else None
        if user is None:
            raise LoginRequired()
        principal = Principal.of_user(user)
        registry = self.platform.registry
        projects = sorted(p.key for p in registry.all("projects") if principal.can("viewer", p.key))
        environments = [e.key for e in registry.all("environments")]
        project = request.cookies.get(PROJECT_COOKIE) or None
        if project not in projects:
            project = None
        environment = request.cookies.get(ENVIRONMENT_COOKIE) or ""
        if environment not in environments:
            environment = environments[0] if environments else "production"
            if "production" in environments:
                environment = "production"
        return Viewer(principal, project, environment, projects, environments)

    # -- rendering -----------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        viewer: Viewer | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """Render a page (or, for a template starting with ``_``, a fragment)."""
        body = self.env.get_template(template).render(
            request=request,
            viewer=viewer,
            path=request.url.path,
            settings=self.platform.settings,
            **context,
        )
        return HTMLResponse(body, status_code=status_code, headers=headers)

    def redirect(self, request: Request, url: str) -> Response:
        """After a successful htmx action, send the browser to ``url`` (a normal 303 else)."""
        if request.headers.get("HX-Request"):
            return Response(status_code=204, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    def error(self, request: Request, status: int, message: str) -> Response:
        """A failure as a person sees it: a flash message for htmx, else a full page."""
        if request.headers.get("HX-Request"):
            return HTMLResponse(
                f'<p class="flash error" role="alert">{html.escape(message)}</p>',
                status_code=status,
                headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
            )
        try:
            viewer = self.viewer(request)
        except LoginRequired:
            viewer = None
        return self.render(
            request, "error.html", viewer, status_code=status, status=status, message=message
        )


async def form(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (the last value wins for repeated names)."""
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


async def form_lists(request: Request) -> dict[str, list[str]]:
    """The submitted form with every value of repeated names (checkbox groups)."""
    data = await request.form()
    out: dict[str, list[str]] = {}
    for k, v in data.multi_items():
        if isinstance(v, str):
            out.setdefault(k, []).append(v)
    return out


def _message(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, FormError):
        return 422, f"{exc.field}: {exc.message}"
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, InvalidObject | ValidationError | RequestValidationError):
        raw = getattr(exc, "errors", [])
        errors: list[Any] = list(raw() if callable(raw) else raw)
        if errors:
            parts = []
            for e in errors:
                loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
                msg = str(e.get("msg", "")).removeprefix("Value error, ")
                parts.append(f"{loc}: {msg}" if loc else msg)
            return 422, "; ".join(parts)
        return 422, str(exc)
    if isinstance(exc, Conflict | RegistryError):
        return 409, str(exc)
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    raise exc


class PageRoute(APIRoute):
    """A route whose failures are rendered for a person (see the module docstring)."""

    web: Web  # set by ``page_router``

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        web = self.web

        async def handle(request: Request) -> Response:
            try:
                if request.method not in ("GET", "HEAD"):
                    check_csrf(request)
                response = await handler(request)
                # No page may be framed by another site (clickjacking of one-click actions).
                response.headers.setdefault("X-Frame-Options", "DENY")
                response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
                return response
            except LoginRequired:
                if request.headers.get("HX-Request"):
                    return Response(status_code=401, headers={"HX-Redirect": "/login"})
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            except Exception as exc:
                status, message = _message(exc)
                if status >= 500:
                    log.exception("dashboard error on %s", request.url.path)
                return web.error(request, status, message)

        return handle


def page_route_class(web: Web) -> type[PageRoute]:
    """A ``PageRoute`` subclass bound to ``web`` (APIRouter takes a class, not an instance)."""
    return type("BoundPageRoute", (PageRoute,), {"web": web})
