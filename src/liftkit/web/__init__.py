"""The web dashboard: server-rendered pages (Jinja2) with htmx for interaction.

Every asset (htmx, the uPlot chart library, styles, the small ``liftkit.js``) ships inside the
package under ``static/``, so the dashboard works on networks without internet access.
``install`` adds the pages to the FastAPI app that ``app.py`` builds; each page module exposes
``router(web, route_class)`` over the one ``Web`` object.
"""

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from liftkit.web import experiments, features, home, knowledge, metrics, settings_pages
from liftkit.web._core import STATIC, FormError, LoginRequired, Viewer, Web, page_route_class

MODULES = (home, features, experiments, metrics, knowledge, settings_pages)


def install(api: FastAPI, web: Web) -> None:
    """Add every dashboard page to ``api`` (hidden from the OpenAPI document)."""
    route_class = page_route_class(web)
    for module in MODULES:
        api.include_router(module.router(web, route_class))
    api.include_router(_not_found(web, route_class))


def _not_found(web: Web, route_class: type) -> APIRouter:
    """Last of all routes: an unknown page is a 404 page for people (the API keeps its JSON)."""
    router = APIRouter(route_class=route_class, include_in_schema=False)

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def not_found(request: Request, path: str) -> Response:
        if path.startswith("api/"):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return web.error(request, 404, f"There is no page at /{path}.")

    return router


def static() -> Mount:
    """The packaged assets, served at ``/static``."""
    return Mount("/static", app=StaticFiles(directory=STATIC), name="static")


__all__ = ["FormError", "LoginRequired", "Viewer", "Web", "install", "static"]
