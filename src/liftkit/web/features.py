"""The Features pages: the list with its filters, creating a flag, and a flag's detail page.

The detail page shows a flag as the viewer will next publish it: their own open draft when they
have one (edits add to it), otherwise the live object, so a person adding two rules sees both
before publishing. What is live is never hidden: every draft shows its diff against it. Changes
are made by ``feature_actions`` (drafts, reviews, the kill switch).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Request, Response

from liftkit.api.auth import approve_role, write_role
from liftkit.registry import DiffEntry, Registry, Revision, collection
from liftkit.registry.errors import Conflict
from liftkit.registry.features import Feature, FlagKind, ValueType
from liftkit.registry.hygiene import StaleFlag, stale_flags
from liftkit.registry.revisions import diff_entries
from liftkit.registry.store import MAX_PAGE
from liftkit.registry.targeting import Environment
from liftkit.web import feature_actions
from liftkit.web._core import FormError, Viewer, Web, form
from liftkit.web.feature_edits import Versions, kill_active, parse_tags, parse_value

SPEC = collection("features")
KINDS: tuple[str, ...] = get_args(FlagKind)
VALUE_TYPES: tuple[str, ...] = get_args(ValueType)
STALE_CATEGORIES = (
    "unchanging",
    "off-everywhere",
    "experiment-ended",
    "archived-referenced",
    "broken-reference",
)
#: What ``?done=`` (set after an action) tells the person, by the revision's new status.
NOTICES = {
    "draft": ("good", "Saved as a draft: nothing changes for users until it is published."),
    "review": (
        "warn",
        "Waiting for review: someone other than its author must approve it before it is published.",
    ),
    "approved": ("good", "Approved: it can be published now."),
    "published": ("good", "Published: SDKs get the change with their next payload."),
    "discarded": ("good", "Draft discarded."),
}


@dataclass(frozen=True)
class Filters:
    q: str = ""
    kind: str = ""
    tag: str = ""
    owner: str = ""
    stale: str = ""

    @property
    def active(self) -> bool:
        return any((self.q, self.kind, self.tag, self.owner, self.stale))


@dataclass(frozen=True)
class Row:
    feature: Feature
    on: bool
    stale: list[StaleFlag]
    changed: datetime | None


def visible(registry: Registry, viewer: Viewer, **filters: str | None) -> list[Feature]:
    """Live features the viewer may read in the switcher's project, via the registry's filters."""
    found: list[Feature] = []
    offset = 0
    while True:
        page = registry.page(
            "features", project=viewer.project, limit=MAX_PAGE, offset=offset, **filters
        )
        found += [f for f in page.items if isinstance(f, Feature)]
        offset += page.limit
        if offset >= page.total:
            break
    return [f for f in found if viewer.can("viewer", f.project)]


def matches(feature: Feature, q: str) -> bool:
    """Search text in the key, name or description (case-insensitive)."""
    text = q.strip().lower()
    return not text or any(
        text in s.lower() for s in (feature.key, feature.name, feature.description)
    )


def stale_matches(findings: list[StaleFlag], wanted: str) -> bool:
    if not wanted:
        return True
    if wanted == "stale":
        return bool(findings)
    if wanted == "fresh":
        return not findings
    return any(f.category == wanted for f in findings)


def last_changes(registry: Registry, keys: Iterable[str]) -> dict[str, datetime | None]:
    """When each feature was last published: one audit read, history only for older ones."""
    out: dict[str, datetime | None] = {}
    for entry in registry.audit(collection_name="features", limit=MAX_PAGE):
        if entry.key and entry.action in ("create", "update", "delete"):
            out.setdefault(entry.key, entry.at)
    for key in keys:
        if key not in out:
            history = registry.revisions("features", key)
            out[key] = max((r.published_at for r in history if r.published_at), default=None)
    return out


def unpublished(registry: Registry, viewer: Viewer) -> list[Revision]:
    """Newest open draft of each feature never published (the list above shows live ones)."""
    newest: dict[str, Revision] = {}
    for draft in registry.open_drafts("features"):
        if draft.body is not None:
            newest[draft.key] = draft
    out = []
    for key, draft in sorted(newest.items()):
        project = str((draft.body or {}).get("project", "default"))
        if viewer.sees(project) and registry.find("features", key) is None:
            out.append(draft)
    return out


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    registry = web.platform.registry
    writer, approver = write_role(SPEC), approve_role(SPEC)
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    @r.get("/features")
    def list_features(
        request: Request,
        viewer: Current,
        q: str = "",
        kind: str = "",
        tag: str = "",
        owner: str = "",
        stale: str = "",
    ) -> Response:
        chosen = Filters(q, kind, tag, owner, stale)
        listed = visible(
            registry, viewer, status=kind or None, tag=tag or None, owner=owner or None
        )
        everything = visible(registry, viewer) if kind or tag or owner else listed
        findings: dict[str, list[StaleFlag]] = {}
        for finding in stale_flags(registry, web.platform.clock()):
            findings.setdefault(finding.key, []).append(finding)
        listed = [
            f for f in listed if matches(f, q) and stale_matches(findings.get(f.key, []), stale)
        ]
        changed = last_changes(registry, [f.key for f in listed])
        rows = []
        for f in listed:
            setting = f.environments.get(viewer.environment)
            on = bool(setting and setting.enabled and not f.archived)
            rows.append(Row(f, on, findings.get(f.key, []), changed.get(f.key)))
        return web.render(
            request,
            "features/list.html",
            viewer,
            rows=rows,
            filters=chosen,
            total=len(everything),
            kinds=KINDS,
            value_types=VALUE_TYPES,
            categories=STALE_CATEGORIES,
            tags=sorted({t for f in everything for t in f.tags}),
            owners=sorted({f.owner for f in everything if f.owner}),
            writable=[p for p in viewer.projects if viewer.can(writer, p)],
            unpublished=unpublished(registry, viewer),
        )

    @r.post("/features")
    async def create(request: Request, viewer: Current) -> Response:
        data = await form(request)
        key = data.get("key", "").strip()
        if not key:
            raise FormError("key", "required: the name code uses to read the flag")
        project = data.get("project") or viewer.project or "default"
        viewer.principal.require(writer, project, "creating a Feature")
        if registry.find("features", key) is not None:
            raise Conflict(f"Feature {key!r} exists already")
        value_type = data.get("value_type", "boolean")
        if value_type not in VALUE_TYPES:
            raise FormError("value_type", f"must be one of {', '.join(VALUE_TYPES)}")
        body = {
            "key": key,
            "kind": data.get("kind", "release"),
            "value_type": value_type,
            "default_value": parse_value(
                value_type, data.get("default_value", ""), "default_value"
            ),
            "owner": data.get("owner", "").strip(),
            "description": data.get("description", "").strip(),
            "tags": parse_tags(data.get("tags", "")),
            "project": project,
        }
        revision = registry.save(
            "features",
            body,
            viewer.actor,
            message="created in the dashboard",
            publish=data.get("publish") == "on",
        )
        return web.redirect(request, feature_actions.after(revision))

    @r.get("/features/{key}")
    def detail(request: Request, viewer: Current, key: str, done: str = "") -> Response:
        versions = Versions.load(registry, key)
        feature, working = versions.shown(viewer.actor)
        live = versions.live
        for project in {feature.project, live.project if live else feature.project}:
            viewer.principal.require("viewer", project, f"reading Feature {key!r}")
        envs = {e.key: e for e in registry.all("environments") if isinstance(e, Environment)}
        drafts = [
            {
                "revision": rev,
                "diff": readable_diff(registry.diff("features", key, rev.version)),
                "needs_approval": registry.needs_approval("features", key, rev.version),
                "outdated": rev.base_version != versions.live_version,
            }
            for rev in versions.open
        ]
        experiments = {e.key for e in registry.all("experiments")}
        groups = [
            g for g in registry.all("saved-groups") if g.project in (feature.project, "default")
        ]
        return web.render(
            request,
            "features/detail.html",
            viewer,
            feature=feature,
            live=live,
            working=working,
            live_version=versions.live_version,
            history=list(reversed(versions.history)),
            drafts=drafts,
            environments=[envs[k] for k in viewer.environments if k in envs],
            kill={e: live is not None and kill_active(live, e) for e in viewer.environments},
            live_on={
                e: bool(live and (s := live.environments.get(e)) and s.enabled)
                for e in viewer.environments
            },
            stale=[s for s in stale_flags(registry, web.platform.clock()) if s.key == key],
            experiments=experiments,
            groups=groups,
            can_edit=viewer.can(writer, feature.project),
            can_approve=viewer.can(approver, feature.project),
            notice=NOTICES.get(done),
            recent=registry.audit(collection_name="features", key=key, limit=50),
            json_rules=json_rules,
        )

    r.include_router(feature_actions.router(web, route_class))
    return r


def readable_diff(changes: list[DiffEntry]) -> list[DiffEntry]:
    """A new feature's diff is one "added" entry for the whole body: show it field by field."""
    if len(changes) == 1 and changes[0].path == "" and isinstance(changes[0].after, dict):
        return diff_entries({}, changes[0].after)
    return changes


def json_rules(feature: Feature, env: str) -> str:
    """An environment's rules as the advanced editor shows them (ids kept, defaults left out)."""
    setting = feature.environments.get(env)
    rules: list[Any] = []
    if setting is not None:
        rules = [
            {"type": r.type} | r.model_dump(mode="json", exclude_defaults=True)
            for r in setting.rules
        ]
    return json.dumps(rules, indent=2)
