"""Fact tables: the list, one table with its SQL, columns, metrics, and a sample of its rows.

The sample is fetched by a fragment the page loads after it is shown, so a slow or broken
warehouse never holds up the page: the fragment says what went wrong instead.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from liftkit.registry.metrics import FactTable, Metric
from liftkit.web._core import Viewer, Web
from liftkit.web.sql_preview import PREVIEW_ROWS, fact_rows


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    registry = web.platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    def fact(key: str, viewer: Viewer) -> FactTable:
        found = registry.get("fact-tables", key)
        assert isinstance(found, FactTable)
        viewer.principal.require("viewer", found.project, f"reading FactTable {key!r}")
        return found

    def users(key: str) -> list[Metric]:
        return [
            m
            for m in registry.all("metrics")
            if key in (m.numerator.fact_table, getattr(m.denominator, "fact_table", None))
        ]

    @r.get("/fact-tables")
    def fact_list(request: Request, viewer: Current, q: str = "") -> Response:
        found = registry.page("fact-tables", q=q or None, limit=500).items
        shown = [f for f in found if isinstance(f, FactTable) and viewer.sees(f.project)]
        counts: dict[str, int] = {}
        for m in registry.all("metrics"):
            for src in (m.numerator, m.denominator):
                if src is not None:
                    counts[src.fact_table] = counts.get(src.fact_table, 0) + 1
        return web.render(
            request, "metrics/fact_tables.html", viewer, facts=shown, counts=counts, q=q
        )

    @r.get("/fact-tables/{key}")
    def fact_detail(key: str, request: Request, viewer: Current) -> Response:
        found = fact(key, viewer)
        return web.render(
            request,
            "metrics/fact_table.html",
            viewer,
            fact=found,
            metrics=[m for m in users(key) if viewer.sees(m.project)],
            limit=PREVIEW_ROWS,
            recent=registry.audit(collection_name="fact-tables", key=key, limit=10),
        )

    @r.get("/fact-tables/{key}/rows")
    def fact_preview(key: str, request: Request, viewer: Current) -> Response:
        """The first rows of the table (read-only, bounded), as a fragment."""
        rows = fact_rows(web.platform, fact(key, viewer))
        return web.render(request, "metrics/_rows.html", viewer, rows=rows, limit=PREVIEW_ROWS)

    return r
