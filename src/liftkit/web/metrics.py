"""Metrics: the list, a metric with the SQL liftkit generates for it, and a simple editor.

The editor covers what most metrics need (type, fact table, column, aggregation, filters,
inverse); everything else a metric has (windows, capping, CUPED, retention days) is kept as it
is when a metric is edited here, and is changed through the API or config-as-code.
Fact tables and the settings-free warehouse preview live in ``fact_tables.py``.
"""

from typing import Annotated, Any

import sqlglot
from fastapi import APIRouter, Depends, Request, Response
from sqlglot.errors import SqlglotError

from liftkit.analysis.plan import PlanError
from liftkit.analysis.runner import data_source
from liftkit.api.auth import write_role
from liftkit.api.objects import require_on
from liftkit.registry import collection
from liftkit.registry.datasources import DIALECTS
from liftkit.registry.errors import Conflict
from liftkit.registry.metrics import FactTable, Metric
from liftkit.web import fact_tables
from liftkit.web._core import FormError, Viewer, Web, form
from liftkit.web.sql_preview import EXAMPLE_EXPERIMENT, PREVIEW_DAYS, metric_sql

TYPES = ("proportion", "mean", "ratio", "quantile", "retention")
AGGREGATIONS = ("sum", "count", "max", "count_distinct")
SPEC = collection("metrics")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _source(
    data: dict[str, str], prefix: str, facts: dict[str, FactTable], dialect: str
) -> dict[str, Any]:
    """A numerator or denominator from the form's ``{prefix}fact_table`` etc. fields."""
    fact_key = data.get(f"{prefix}fact_table", "").strip()
    if fact_key not in facts:
        raise FormError(f"{prefix}fact_table", f"choose a fact table (there is no {fact_key!r})")
    fact = facts[fact_key]
    column = data.get(f"{prefix}column", "").strip() or "$$count"
    declared = {c.name for c in fact.columns}
    known = declared | set(fact.identifier_columns) | {fact.timestamp_column, "$$count"}
    if declared and column not in known:
        raise FormError(
            f"{prefix}column",
            f"{column!r} is not a column of fact table {fact_key!r} "
            f"({', '.join(sorted(declared))}, or $$count to count rows)",
        )
    aggregation = data.get(f"{prefix}aggregation", "sum") or "sum"
    if aggregation not in AGGREGATIONS:
        raise FormError(f"{prefix}aggregation", f"must be one of {', '.join(AGGREGATIONS)}")
    filters = _lines(data.get(f"{prefix}filters", ""))
    for text in filters:
        try:
            sqlglot.condition(text, dialect=dialect)
        except SqlglotError as error:
            raise FormError(
                f"{prefix}filters", f"{text!r} is not a SQL condition: {error}"
            ) from None
    return {
        "fact_table": fact_key,
        "column": column,
        "aggregation": aggregation,
        "filters": filters,
    }


def metric_from_form(
    data: dict[str, str],
    existing: Metric | None,
    facts: dict[str, FactTable],
    dialect: str = "duckdb",
) -> Metric:
    """The metric the form describes (on top of ``existing``); FormError names a bad field."""
    body: dict[str, Any] = existing.model_dump(mode="json") if existing else {}
    if existing is None:
        key = data.get("key", "").strip()
        if not key:
            raise FormError("key", "give the metric a key (letters, digits, - _ . :)")
        body["key"] = key
    kind = data.get("type", "")
    if kind not in TYPES:
        raise FormError("type", f"must be one of {', '.join(TYPES)}")
    body.update(
        name=data.get("name", "").strip(),
        description=data.get("description", body.get("description", "")).strip(),
        project=data.get("project", "").strip() or body.get("project", "default"),
        owner=data.get("owner", "").strip(),
        tags=[t.strip() for t in data.get("tags", "").split(",") if t.strip()],
        type=kind,
        inverse=data.get("inverse") in ("on", "true", "1"),
        numerator=_source(data, "", facts, dialect),
    )
    body["denominator"] = _source(data, "denominator_", facts, dialect) if kind == "ratio" else None
    if kind == "quantile":
        raw = data.get("quantile", "").strip()
        try:
            body["quantile"] = float(raw)
        except ValueError:
            raise FormError("quantile", "a quantile metric needs a number such as 0.9") from None
    return Metric.model_validate(body)


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    registry = web.platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias
    writer = write_role(SPEC)

    def facts() -> dict[str, FactTable]:
        return {f.key: f for f in registry.all("fact-tables")}

    def dialect_of(data: dict[str, str], table: dict[str, FactTable]) -> str:
        """Filters are checked in the dialect of the chosen fact table's data source."""
        fact = table.get(data.get("fact_table", "").strip())
        try:
            return "duckdb" if fact is None else data_source(web.platform, fact.datasource).type
        except PlanError:
            return "duckdb"

    def metric(key: str) -> Metric:
        found = registry.get("metrics", key)
        assert isinstance(found, Metric)
        return found

    def list_page(request: Request, viewer: Viewer, q: str = "", type: str = "") -> Response:
        found = registry.page("metrics", q=q or None, status=type or None, limit=500).items
        shown = [m for m in found if isinstance(m, Metric) and viewer.sees(m.project)]
        return web.render(
            request, "metrics/list.html", viewer, metrics=shown, q=q, type=type, types=TYPES
        )

    # The list answers on /metrics/ too: the server's Prometheus endpoint owns /metrics itself.
    @r.get("/metrics")
    def metrics_list(request: Request, viewer: Current, q: str = "", type: str = "") -> Response:
        return list_page(request, viewer, q, type)

    @r.get("/metrics/")
    def metrics_list_slash(
        request: Request, viewer: Current, q: str = "", type: str = ""
    ) -> Response:
        return list_page(request, viewer, q, type)

    def form_page(request: Request, viewer: Viewer, existing: Metric | None) -> Response:
        projects = [p for p in viewer.projects if viewer.can(writer, p)]
        return web.render(
            request,
            "metrics/form.html",
            viewer,
            metric=existing,
            facts=sorted(facts()),
            projects=projects,
            types=TYPES,
            aggregations=AGGREGATIONS,
        )

    @r.get("/metrics/new")
    def new_metric(request: Request, viewer: Current) -> Response:
        viewer.principal.require_anywhere(writer, "creating metrics")
        return form_page(request, viewer, None)

    @r.post("/metrics")
    async def create_metric(request: Request, viewer: Current) -> Response:
        data = await form(request)
        table = facts()
        obj = metric_from_form(data, None, table, dialect_of(data, table))
        viewer.principal.require(writer, obj.project, "creating a Metric")
        if registry.find("metrics", obj.key) is not None:
            raise Conflict(f"metric {obj.key!r} exists already: edit it instead")
        registry.save("metrics", obj, viewer.actor, message=data.get("message", ""))
        return web.redirect(request, f"/metrics/{obj.key}")

    @r.get("/metrics/{key}/edit")
    def edit_metric(key: str, request: Request, viewer: Current) -> Response:
        existing = metric(key)
        viewer.principal.require(writer, existing.project, f"changing Metric {key!r}")
        return form_page(request, viewer, existing)

    @r.post("/metrics/{key}")
    async def update_metric(key: str, request: Request, viewer: Current) -> Response:
        existing = metric(key)
        data = await form(request)
        table = facts()
        obj = metric_from_form(data, existing, table, dialect_of(data, table))
        projects: set[str | None] = {existing.project, obj.project}  # a move: both
        require_on(viewer.principal, SPEC, writer, projects, f"changing Metric {key!r}")
        registry.save("metrics", obj, viewer.actor, message=data.get("message", ""))
        return web.redirect(request, f"/metrics/{key}")

    @r.get("/metrics/{key}")
    def metric_detail(key: str, request: Request, viewer: Current, dialect: str = "") -> Response:
        found = metric(key)
        viewer.principal.require("viewer", found.project, f"reading Metric {key!r}")
        if dialect and dialect not in DIALECTS:
            raise FormError("dialect", f"must be one of {', '.join(DIALECTS)}")
        preview, error = None, None
        try:
            preview = metric_sql(web.platform, found, dialect or None)
        except (PlanError, ValueError) as exc:
            error = str(exc)
        experiments = [
            (e, role)
            for e in registry.all("experiments")
            if viewer.sees(e.project)
            for role, keys in (
                ("primary", e.metrics.primary),
                ("secondary", e.metrics.secondary),
                ("guardrail", e.metrics.guardrails),
            )
            if key in keys
        ]
        return web.render(
            request,
            "metrics/detail.html",
            viewer,
            metric=found,
            facts=facts(),
            preview=preview,
            preview_error=error,
            dialects=DIALECTS,
            example=EXAMPLE_EXPERIMENT,
            example_days=PREVIEW_DAYS,
            experiments=experiments,
            recent=registry.audit(collection_name="metrics", key=key, limit=10),
            can_edit=viewer.can(writer, found.project),
        )

    r.include_router(fact_tables.router(web, route_class))
    return r
