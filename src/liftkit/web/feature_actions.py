"""What people change on a feature's page: drafts, the review steps, revert, the kill switch.

Editing records a DRAFT (the person's one working draft grows with each edit and replaces their
previous one), so nothing reaches users before someone presses publish. The kill switch and
"turn off now" are the exceptions on purpose: they publish at once (``Registry.save``), unless
the environment requires approval, in which case the registry puts them up for review.

Roles are checked as the REST API checks them (``write_role``/``approve_role`` on every project
the change involves), with the same registry operations.
"""

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response

from liftkit.api.auth import approve_role, write_role
from liftkit.api.objects import (
    MAX_INT,
    VersionPath,
    involved_projects,
    require_not_author,
    require_on,
)
from liftkit.registry import Revision, collection
from liftkit.registry.accounts import Role
from liftkit.registry.errors import NotFound
from liftkit.web._core import FormError, Viewer, Web, form
from liftkit.web.feature_edits import (
    Body,
    Versions,
    add_rule,
    parse_condition,
    parse_coverage,
    parse_json,
    parse_tags,
    parse_value,
    remove_rule,
    replace_rules,
    set_details,
    set_enabled,
    set_kill,
)

SPEC = collection("features")
STATUS_NOTICE = {"pending_review": "review"}
Step = Literal["publish", "request-review", "approve", "discard"]


def after(revision: Revision) -> str:
    """Where to send the browser after an action: the feature, saying what happened."""
    done = STATUS_NOTICE.get(revision.status, revision.status)
    return f"/features/{revision.key}?done={done}"


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    registry = web.platform.registry
    writer, approver = write_role(SPEC), approve_role(SPEC)
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    def require(viewer: Viewer, role: Role, versions: Versions, *bodies: Body | None) -> None:
        """``role`` on every project the change involves, as the REST API checks it."""
        key = versions.key
        projects = involved_projects(registry, SPEC, key, *bodies)
        require_on(viewer.principal, SPEC, role, projects, f"changing Feature {key!r}")

    def environment(viewer: Viewer, env: str) -> str:
        if env not in viewer.environments:
            raise NotFound(f"Environment {env!r} not found")
        return env

    def draft(viewer: Viewer, key: str, edit: Callable[[Body], Body], message: str) -> Revision:
        """Apply ``edit`` to the viewer's working copy and record it as their new draft."""
        versions = Versions.load(registry, key)
        body, replaced = versions.working(viewer.actor)
        require(viewer, writer, versions, body)
        changed = edit(body)
        require(viewer, writer, versions, changed)
        if replaced is not None and replaced.message:  # the draft's message lists every edit
            message = f"{replaced.message}; {message}"
        revision = registry.draft("features", changed, viewer.actor, message=message[-2000:])
        if replaced is not None:
            registry.discard("features", key, replaced.version, viewer.actor)
        return revision

    def publish_now(
        viewer: Viewer, key: str, edit: Callable[[Body], Body], message: str
    ) -> Revision:
        """Change the live object at once (the registry asks for review where required)."""
        versions = Versions.load(registry, key)
        if versions.live is None:
            raise NotFound(f"Feature {key!r} is not published yet; publish its draft first")
        body = versions.live.model_dump(mode="json")
        require(viewer, writer, versions, body)
        return registry.save("features", edit(body), viewer.actor, message=message)

    @r.post("/features/{key}/environments/{env}/enabled")
    async def toggle(request: Request, viewer: Current, key: str, env: str) -> Response:
        env = environment(viewer, env)
        on = (await form(request)).get("enabled") == "true"
        message = f"turn {'on' if on else 'off'} in {env}"
        revision = draft(viewer, key, lambda b: set_enabled(b, env, on), message)
        return web.redirect(request, after(revision))

    @r.post("/features/{key}/environments/{env}/rules")
    async def add(request: Request, viewer: Current, key: str, env: str) -> Response:
        env = environment(viewer, env)
        data = await form(request)
        value_type = Versions.load(registry, key).working(viewer.actor)[0].get("value_type", "")
        kind = data.get("type", "force")
        if kind not in ("force", "rollout"):
            raise FormError("type", "choose force or rollout")
        rule: Body = {
            "type": kind,
            "value": parse_value(value_type, data.get("value", ""), "value"),
            "condition": parse_condition(data.get("condition", "")),
            "description": data.get("description", "").strip(),
        }
        if kind == "rollout":
            rule["coverage"] = parse_coverage(data.get("coverage", ""))
        if data.get("saved_group"):
            rule["saved_groups"] = [{"match": "all", "ids": [data["saved_group"]]}]
        first = data.get("position") == "first"
        message = f"add a {kind} rule in {env}"
        revision = draft(viewer, key, lambda b: add_rule(b, env, rule, first=first), message)
        return web.redirect(request, after(revision))

    @r.post("/features/{key}/environments/{env}/rules/{rule_id}/remove")
    def remove(request: Request, viewer: Current, key: str, env: str, rule_id: str) -> Response:
        env = environment(viewer, env)
        message = f"remove rule {rule_id} in {env}"
        revision = draft(viewer, key, lambda b: remove_rule(b, env, rule_id), message)
        return web.redirect(request, after(revision))

    @r.post("/features/{key}/environments/{env}/json")
    async def edit_json(request: Request, viewer: Current, key: str, env: str) -> Response:
        env = environment(viewer, env)
        data = await form(request)
        rules = parse_json(data.get("rules", ""), "rules")
        on = data.get("enabled") == "on"
        message = f"edit the rules in {env}"
        revision = draft(viewer, key, lambda b: replace_rules(b, env, rules, on), message)
        return web.redirect(request, after(revision))

    @r.post("/features/{key}/details")
    async def details(request: Request, viewer: Current, key: str) -> Response:
        data = await form(request)
        value_type = Versions.load(registry, key).working(viewer.actor)[0].get("value_type", "")
        default = parse_value(value_type, data.get("default_value", ""), "default_value")

        def edit(body: Body) -> Body:
            return set_details(
                body,
                default_value=default,
                owner=data.get("owner", "").strip(),
                description=data.get("description", "").strip(),
                tags=parse_tags(data.get("tags", "")),
            )

        return web.redirect(request, after(draft(viewer, key, edit, "edit the details")))

    @r.post("/features/{key}/environments/{env}/off")
    def turn_off(request: Request, viewer: Current, key: str, env: str) -> Response:
        env = environment(viewer, env)
        message = f"turned off in {env} (quick off)"
        revision = publish_now(viewer, key, lambda b: set_enabled(b, env, False), message)
        return web.redirect(request, after(revision))

    @r.post("/features/{key}/environments/{env}/kill")
    async def kill(request: Request, viewer: Current, key: str, env: str) -> Response:
        env = environment(viewer, env)
        active = (await form(request)).get("active") == "true"
        live = Versions.load(registry, key).live
        if live is not None and (live.kind != "kill-switch" or live.value_type != "boolean"):
            raise FormError("active", "only boolean kill-switch flags have a kill switch")
        message = f"kill switch {'activated' if active else 'released'} in {env}"
        revision = publish_now(viewer, key, lambda b: set_kill(b, env, active), message)
        return web.redirect(request, after(revision))

    @r.post("/features/{key}/revisions/{version}/{step}")
    def review(
        request: Request, viewer: Current, key: str, version: VersionPath, step: Step
    ) -> Response:
        versions = Versions.load(registry, key)
        found = registry.revision("features", key, version)
        require(viewer, approver if step == "approve" else writer, versions, found.body)
        if step == "approve":
            require_not_author(viewer.principal, found)
        call = {
            "publish": registry.publish,
            "request-review": registry.request_review,
            "approve": registry.approve,
            "discard": registry.discard,
        }[step]
        return web.redirect(request, after(call("features", key, version, viewer.actor)))

    @r.post("/features/{key}/revert")
    async def revert(request: Request, viewer: Current, key: str) -> Response:
        raw = (await form(request)).get("version", "")
        if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_INT):
            raise FormError("version", "choose a published version")
        versions = Versions.load(registry, key)
        old = registry.revision("features", key, int(raw))
        require(viewer, writer, versions, old.body)
        revision = registry.revert("features", key, old.version, viewer.actor)
        return web.redirect(request, after(revision))

    return r
