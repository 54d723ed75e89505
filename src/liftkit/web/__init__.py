"""The web dashboard: server-rendered pages (Jinja2) with htmx for interaction.

Every asset (htmx, the uPlot chart library, styles, the small ``liftkit.js``) ships inside the
package under ``static/``, so the dashboard works on networks without internet access.
``install`` adds the pages to the FastAPI app that ``app.py`` builds; each page module exposes
``router(web, route_class)`` over the one ``Web`` object.
"""

from fastapi import FastAPI
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


def static() -> Mount:
    """The packaged assets, served at ``/static``."""
    return Mount("/static", app=StaticFiles(directory=STATIC), name="static")


__all__ = ["FormError", "LoginRequired", "Viewer", "Web", "install", "static"]
