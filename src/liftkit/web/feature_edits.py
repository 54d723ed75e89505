"""The feature pages' edits, apart from HTTP: reading form values and making the next version.

Each edit takes a feature body (the JSON dict the registry stores) and returns a new one; the
registry validates and records it. Nothing here writes or checks roles, so the page routes stay
the one place where permissions and the registry meet, and these rules can be tested alone.
"""

import json
import math
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from liftkit.registry import Registry, Revision
from liftkit.registry.errors import NotFound
from liftkit.registry.features import Feature
from liftkit.registry.revisions import OPEN_STATUSES
from liftkit.web._core import FormError

#: The rule the kill switch puts first in an environment: everyone gets ``true``.
KILL_RULE = "kill-switch"
#: Revision states that still wait for a decision (shown as drafts).

Body = dict[str, Any]


# -- form values ------------------------------------------------------------------------------


def parse_value(value_type: str, raw: str, field: str) -> Any:
    """A flag value typed in a form, read as the feature's ``value_type`` says."""
    text = raw.strip()
    if value_type == "boolean":
        if text.lower() in ("true", "on", "1", "yes"):
            return True
        if text.lower() in ("false", "off", "0", "no"):
            return False
        raise FormError(field, "must be true or false")
    if value_type == "number":
        try:
            number = float(text)
        except ValueError:
            raise FormError(field, f"{text!r} is not a number") from None
        if not math.isfinite(number):
            raise FormError(field, "must be a finite number")
        whole = number.is_integer() and not any(c in text.lower() for c in ".e")
        return int(number) if whole else number
    if value_type == "string":
        return raw
    if not text:
        raise FormError(field, "enter a JSON value")
    return parse_json(text, field)


def parse_json(raw: str, field: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FormError(field, f"not valid JSON ({exc.msg}, line {exc.lineno})") from None


def parse_condition(raw: str, field: str = "condition") -> dict[str, Any]:
    """A targeting condition: empty means everyone, else a JSON object."""
    if not raw.strip():
        return {}
    found = parse_json(raw, field)
    if not isinstance(found, dict):
        raise FormError(field, 'must be a JSON object, e.g. {"country": "GB"}')
    return found


def parse_coverage(raw: str, field: str = "coverage") -> float:
    """A percentage typed by a person (``25`` or ``25%``) as a fraction."""
    text = raw.strip().removesuffix("%").strip() or "100"
    try:
        percent = float(text)
    except ValueError:
        raise FormError(field, "must be a percentage between 0 and 100") from None
    if not 0 <= percent <= 100:
        raise FormError(field, "must be a percentage between 0 and 100")
    return percent / 100


def parse_tags(raw: str) -> list[str]:
    """Comma-separated tags, trimmed, without empties or repeats."""
    out: list[str] = []
    for part in raw.split(","):
        tag = part.strip()
        if tag and tag not in out:
            out.append(tag)
    return out


# -- versions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Versions:
    """A feature's live object and revisions, and which body the next edit starts from."""

    key: str
    live: Feature | None
    history: list[Revision]

    @classmethod
    def load(cls, registry: Registry, key: str) -> "Versions":
        live = registry.find("features", key)
        try:
            history = registry.revisions("features", key)
        except NotFound:
            history = []
        if live is None and not [r for r in history if r.status in OPEN_STATUSES]:
            raise NotFound(f"Feature {key!r} not found")
        return cls(key, live if isinstance(live, Feature) else None, history)

    @property
    def live_version(self) -> int:
        return max((r.version for r in self.history if r.status == "published"), default=0)

    @property
    def open(self) -> list[Revision]:
        """Drafts and reviews, newest first."""
        return [r for r in reversed(self.history) if r.status in OPEN_STATUSES]

    def own_draft(self, actor: str) -> Revision | None:
        """The actor's newest draft made from the live version: edits add to it."""
        for r in self.open:
            if (
                r.status == "draft"
                and r.author == actor
                and r.base_version == self.live_version
                and r.body is not None
            ):
                return r
        return None

    def working(self, actor: str) -> tuple[Body, Revision | None]:
        """The body the next edit starts from, and the draft it replaces (if any)."""
        mine = self.own_draft(actor)
        if mine is not None and mine.body is not None:
            return deepcopy(mine.body), mine
        if self.live is not None:
            return self.live.model_dump(mode="json"), None
        for r in self.open:  # never published: build on the newest proposal
            if r.body is not None:
                return deepcopy(r.body), None
        raise NotFound(f"Feature {self.key!r} not found")

    def shown(self, actor: str) -> tuple[Feature, Revision | None]:
        """What the environment cards show: the actor's working draft, else the live object."""
        body, draft = self.working(actor)
        if draft is None and self.live is not None:
            return self.live, None
        if draft is None:
            draft = next(r for r in self.open if r.body is not None)
        return Feature.model_validate(body), draft


# -- edits ------------------------------------------------------------------------------------


def _environment(body: Body, env: str) -> Body:
    envs = body.setdefault("environments", {})
    return envs.setdefault(env, {"enabled": False, "rules": []})  # type: ignore[no-any-return]


def _new_id(env: str, rules: list[Body]) -> str:
    used = {r.get("id") for r in rules}
    n = 1
    while f"{env}-{n}" in used:
        n += 1
    return f"{env}-{n}"


def set_enabled(body: Body, env: str, enabled: bool) -> Body:
    _environment(body, env)["enabled"] = enabled
    return body


def add_rule(body: Body, env: str, rule: Body, *, first: bool = False) -> Body:
    """Add ``rule`` (a rule body without an id) at the end, or first in priority."""
    rules = _environment(body, env).setdefault("rules", [])
    rule = {**rule, "id": rule.get("id") or _new_id(env, rules)}
    rules.insert(0 if first else len(rules), rule)
    return body


def remove_rule(body: Body, env: str, rule_id: str) -> Body:
    rules = _environment(body, env).get("rules", [])
    kept = [r for r in rules if r.get("id") != rule_id]
    if len(kept) == len(rules):
        raise FormError("rule", f"{env} has no rule {rule_id!r}")
    _environment(body, env)["rules"] = kept
    return body


def replace_rules(body: Body, env: str, rules: Any, enabled: bool) -> Body:
    """The advanced editor: the environment's whole rule list as JSON."""
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise FormError("rules", "must be a JSON list of rule objects")
    setting = _environment(body, env)
    setting["enabled"] = enabled
    setting["rules"] = rules
    return body


def set_details(
    body: Body, *, default_value: Any, owner: str, description: str, tags: list[str]
) -> Body:
    body.update(default_value=default_value, owner=owner, description=description, tags=tags)
    return body


def kill_active(feature: Feature, env: str) -> bool:
    """Whether the kill switch is on in ``env``: enabled, with the kill rule in force."""
    setting = feature.environments.get(env)
    return bool(
        setting and setting.enabled and any(r.id == KILL_RULE and r.enabled for r in setting.rules)
    )


def set_kill(body: Body, env: str, active: bool) -> Body:
    """Activate (kill rule first, environment on) or release a kill-switch flag in ``env``."""
    setting = _environment(body, env)
    rules = [r for r in setting.get("rules", []) if r.get("id") != KILL_RULE]
    if active:
        rule = {"id": KILL_RULE, "type": "force", "value": True, "description": "kill switch"}
        rules.insert(0, rule)
        setting["enabled"] = True
    setting["rules"] = rules
    return body
