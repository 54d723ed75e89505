"""The experiment setup wizard: overview → traffic and variations → targeting → metrics.

The first step saves a draft experiment and each later step updates it, so the setup survives
a closed tab, every step is a revision in the audit log, and a draft's setup can be reopened
from its page. Only drafts are edited here: changing the variations or traffic of a running
experiment would mix users between arms, which takes a new phase (the API or config-as-code).
"""

import json
from itertools import zip_longest
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from liftkit.registry import Registry
from liftkit.registry._base import SavedGroupTarget
from liftkit.registry.errors import Conflict
from liftkit.registry.experiments import Experiment, ExperimentMetrics, NamespaceRange, Variation
from liftkit.web._core import FormError, Viewer, Web, form, form_lists
from liftkit.web.experiment_common import WRITER, changed, load, save

STEPS = (
    ("overview", "Overview"),
    ("traffic", "Traffic and variations"),
    ("targeting", "Targeting"),
    ("metrics", "Metrics"),
)
ROLES = ("none", "primary", "secondary", "guardrails")


def _percent(raw: str, field: str, *, low: float = 0.0, high: float = 100.0) -> float:
    """A percentage typed by a person, as a fraction."""
    try:
        value = float(raw.strip().rstrip("%"))
    except ValueError:
        raise FormError(field, f"{raw!r} is not a number") from None
    if not low <= value <= high:
        raise FormError(field, f"must be between {low:g}% and {high:g}%")
    return value / 100


def overview(data: dict[str, str], viewer: Viewer, draft: Experiment | None) -> dict[str, Any]:
    """Step 1's fields; the key is fixed once the draft exists."""
    key = draft.key if draft is not None else data.get("key", "").strip()
    if not key:
        raise FormError("key", "give the experiment a key: it is sent with every exposure")
    project = data.get("project", "").strip() or "default"
    if not viewer.can(WRITER, project):
        raise FormError("project", f"you cannot create experiments in project {project!r}")
    tags = [t.strip() for t in data.get("tags", "").split(",") if t.strip()]
    return {
        "key": key,
        "name": data.get("name", "").strip(),
        "hypothesis": data.get("hypothesis", "").strip(),
        "owner": data.get("owner", "").strip(),
        "project": project,
        "tags": tags,
    }


def traffic(lists: dict[str, list[str]], draft: Experiment) -> dict[str, Any]:
    """Step 2: variations (control first), weights in percent, coverage, hashing, namespace."""

    def one(name: str, default: str = "") -> str:
        return (lists.get(name) or [default])[-1].strip()

    columns = [lists.get(f"variation_{c}", []) for c in ("key", "name", "weight")]
    rows = [tuple(v.strip() for v in row) for row in zip_longest(*columns, fillvalue="")]
    rows = [row for row in rows if any(row)]
    if len(rows) < 2:
        raise FormError("variation_key", "an experiment needs at least two variations")
    for i, row in enumerate(rows):
        if not row[0]:
            raise FormError("variation_key", f"variation {i + 1} needs a key")
    given = [row[2] for row in rows if row[2]]
    weights: list[float | None] = [None] * len(rows)
    if given:
        if len(given) != len(rows):
            raise FormError("variation_weight", "give a weight to every variation or to none")
        weights = [_percent(row[2], "variation_weight") for row in rows]
        total = sum(w or 0.0 for w in weights)
        if abs(total - 1.0) > 1e-6:
            raise FormError("variation_weight", f"weights add up to {total:.1%}, not 100%")
    payloads = {v.key: v.payload for v in draft.variations}
    variations = [
        Variation(key=row[0], name=row[1], weight=w, payload=payloads.get(row[0], row[0]))
        for row, w in zip(rows, weights, strict=True)
    ]
    namespaces = []
    if one("namespace"):
        start = _percent(one("namespace_start", "0"), "namespace_start")
        end = _percent(one("namespace_end", "100"), "namespace_end")
        if start >= end:
            raise FormError("namespace_end", "the range must end above its start")
        namespaces = [NamespaceRange(namespace=one("namespace"), start=start, end=end)]
    hash_attribute = one("hash_attribute")
    if not hash_attribute:
        raise FormError("hash_attribute", "choose the attribute users are assigned by")
    return {
        "variations": variations,
        "coverage": _percent(one("coverage", "100"), "coverage", low=0.01),
        "hash_attribute": hash_attribute,
        "namespaces": namespaces,
    }


def targeting(lists: dict[str, list[str]], draft: Experiment) -> dict[str, Any]:
    """Step 3: a condition (JSON, as in the SDK payload) and saved groups users must be in."""
    raw = (lists.get("condition") or [""])[-1].strip() or "{}"
    try:
        condition = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FormError("condition", f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(condition, dict):
        raise FormError("condition", 'must be a JSON object, e.g. {"country": "US"}')
    groups = [g for g in lists.get("saved_group", []) if g]
    kept = [t for t in draft.saved_groups if t.match != "all"]
    targets = kept + ([SavedGroupTarget(match="all", ids=groups)] if groups else [])
    return {"condition": condition, "saved_groups": targets}


def metrics(data: dict[str, str], registry: Registry) -> dict[str, Any]:
    """Step 4: each metric's role (primary, secondary, guardrail or none) and the engine."""
    chosen: dict[str, list[str]] = {r: [] for r in ROLES}
    for metric in registry.all("metrics"):
        role = data.get(f"role-{metric.key}", "none")
        if role not in ROLES:
            raise FormError(f"role-{metric.key}", f"one of {', '.join(ROLES)}")
        chosen[role].append(metric.key)
    if not chosen["primary"]:
        raise FormError("primary", "choose at least one primary metric: it decides the test")
    engine = data.get("engine", "frequentist")
    if engine not in ("frequentist", "bayesian"):
        raise FormError("engine", "frequentist or bayesian")
    return {"primary": chosen["primary"], "secondary": chosen["secondary"],
            "guardrails": chosen["guardrails"], "engine": engine}  # fmt: skip


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    registry = web.platform.registry
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    def page(request: Request, viewer: Viewer, step: str, draft: Experiment | None) -> Response:
        writable = [p for p in viewer.projects if viewer.can(WRITER, p)]
        return web.render(
            request,
            "experiments/setup.html",
            viewer,
            step=step,
            steps=STEPS,
            e=draft,
            projects=writable,
            default_project=viewer.project if viewer.project in writable else "default",
            attributes=[a for a in registry.all("attributes") if not a.archived],
            namespaces=registry.all("namespaces"),
            groups=[g for g in registry.all("saved-groups") if viewer.sees(g.project)],
            metrics=[m for m in registry.all("metrics") if viewer.sees(m.project)],
        )

    def editable(viewer: Viewer, key: str) -> Experiment:
        draft = load(registry, viewer, key)
        viewer.principal.require(WRITER, draft.project, f"changing experiment {key!r}")
        if draft.status != "draft" or draft.archived:
            raise Conflict(f"experiment {key!r} is {draft.status}: only a draft's setup changes")
        return draft

    @r.get("/experiments/new")
    def new(request: Request, viewer: Current) -> Response:
        viewer.principal.require_anywhere(WRITER, "creating an experiment")
        return page(request, viewer, "overview", None)

    @r.post("/experiments/new")
    async def create(request: Request, viewer: Current) -> Response:
        viewer.principal.require_anywhere(WRITER, "creating an experiment")
        fields = overview(await form(request), viewer, None)
        if registry.find("experiments", fields["key"]) is not None:
            raise FormError("key", f"experiment {fields['key']!r} exists already")
        draft = Experiment.model_validate(fields)
        save(registry, viewer, draft, "created in the setup wizard")
        return web.redirect(request, f"/experiments/{draft.key}/setup/traffic")

    @r.get("/experiments/{key}/setup/{step}")
    def step_page(request: Request, viewer: Current, key: str, step: str) -> Response:
        if step not in dict(STEPS):
            raise FormError("step", f"one of {', '.join(dict(STEPS))}")
        return page(request, viewer, step, editable(viewer, key))

    @r.post("/experiments/{key}/setup/{step}")
    async def step_save(request: Request, viewer: Current, key: str, step: str) -> Response:
        draft = editable(viewer, key)
        lists = await form_lists(request)
        data = {k: v[-1] for k, v in lists.items()}
        if step == "overview":
            updated = changed(draft, **overview(data, viewer, draft))
        elif step == "traffic":
            updated = changed(draft, **traffic(lists, draft))
        elif step == "targeting":
            updated = changed(draft, **targeting(lists, draft))
        elif step == "metrics":
            chosen = metrics(data, registry)
            engine = chosen.pop("engine")
            analysis = draft.analysis.model_copy(update={"engine": engine})
            updated = changed(draft, metrics=ExperimentMetrics(**chosen), analysis=analysis)
        else:
            raise FormError("step", f"one of {', '.join(dict(STEPS))}")
        save(registry, viewer, updated, f"setup: {dict(STEPS)[step].lower()}", before=draft)
        order = [s for s, _ in STEPS]
        following = order.index(step) + 1
        if following < len(order):
            return web.redirect(request, f"/experiments/{key}/setup/{order[following]}")
        return web.redirect(request, f"/experiments/{key}")

    return r
