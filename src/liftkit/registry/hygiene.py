"""Flag hygiene: which flags have done their job, and where code still mentions them.

Every flag is a branch in somebody's code, and flags that no longer decide anything are how
codebases rot: a release flag that has served ``true`` to everyone for months, an experiment
that ended with a winner nobody hard-coded. ``stale_flags`` finds them from the registry alone
(rules, experiments, revision dates), each with the reason and what to do; ``find_refs`` scans
a source tree for the keys as string literals, so a flag nobody references can be archived
without fear and an archived flag still in code is caught before it serves null.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from liftkit.registry.errors import NotFound
from liftkit.registry.experiments import Experiment
from liftkit.registry.features import (
    ExperimentRule,
    Feature,
    FeatureEnvironment,
    ForceRule,
    RolloutRule,
)
from liftkit.registry.store import Registry

Category = Literal[
    "unchanging", "off-everywhere", "experiment-ended", "archived-referenced", "broken-reference"
]
#: Kinds meant to stay: a permission or kill switch serving one value for months is working.
LONG_LIVED = frozenset({"permission", "kill-switch"})
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".tox",
})  # fmt: skip
MAX_BYTES = 1_000_000
_VARIES = object()  # a rule that serves different users different values


@dataclass(frozen=True)
class StaleFlag:
    key: str
    kind: str
    category: Category
    reason: str
    action: str
    last_changed: datetime | None = None
    #: Environment → the one value it serves to everyone (for the "unchanging" kind).
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["last_changed"] = self.last_changed.isoformat() if self.last_changed else None
        return out


@dataclass(frozen=True)
class Hit:
    """One mention of a key: file (relative to the scanned root), 1-based line, the line."""

    path: str
    line: int
    key: str
    text: str


@dataclass(frozen=True)
class RefReport:
    hits: list[Hit]
    #: Keys no scanned file mentions.
    unreferenced: list[str]
    files_scanned: int

    def by_key(self) -> dict[str, list[Hit]]:
        out: dict[str, list[Hit]] = {}
        for hit in self.hits:
            out.setdefault(hit.key, []).append(hit)
        return out


def stale_flags(
    registry: Registry,
    now: datetime,
    days: int = 30,
    *,
    references: Mapping[str, Sequence[Hit]] | None = None,
) -> list[StaleFlag]:
    """Flags to clean up, ordered by key. ``references`` (from ``find_refs``) adds code hits.

    Age-based findings need the flag unchanged (or its experiments stopped) for ``days``; the
    others (archived yet depended on, rules pointing at missing objects) are reported at once.
    """
    cutoff = now - timedelta(days=days)
    features: list[Feature] = registry.all("features")
    experiments: dict[str, Experiment] = {e.key: e for e in registry.all("experiments")}
    groups = {g.key for g in registry.all("saved-groups")}
    dependents = _dependents(features, experiments.values())
    out: list[StaleFlag] = []
    for feature in features:
        if feature.archived:
            users = dependents.get(feature.key, []) + [
                f"{h.path}:{h.line}" for h in (references or {}).get(feature.key, [])
            ]
            if users:
                out.append(StaleFlag(
                    feature.key, feature.kind, "archived-referenced",
                    f"archived (SDKs get null for it) but still used by {_some(users)}",
                    "remove those uses, or unarchive it until they are gone",
                ))  # fmt: skip
            continue
        missing = _missing(feature, experiments, groups)
        if missing:
            out.append(StaleFlag(
                feature.key, feature.kind, "broken-reference",
                f"its rules refer to {_some(missing)}, which do not exist (those rules are "
                "left out of payloads)", "fix or delete those rules",
            ))  # fmt: skip
        found = _age_based(registry, feature, experiments, now, cutoff)
        if found is not None:
            out.append(found)
    return sorted(out, key=lambda f: (f.key, f.category))


def _age_based(
    registry: Registry,
    feature: Feature,
    experiments: Mapping[str, Experiment],
    now: datetime,
    cutoff: datetime,
) -> StaleFlag | None:
    used = [experiments[k] for k in sorted(feature.experiments()) if k in experiments]
    if feature.kind == "experiment" and used:
        ended = [(e, _stopped_at(registry, e)) for e in used]
        if any(e.status != "stopped" or at is None or at > cutoff for e, at in ended):
            return None
        ended_at = max(at for _, at in ended if at is not None)
        done = "; ".join(_outcome(e) for e in used)
        return StaleFlag(feature.key, feature.kind, "experiment-ended",
                         f"its experiments ended {(now - ended_at).days} days ago: {done}",
                         _ship_action(feature, used), ended_at)  # fmt: skip
    if feature.kind in LONG_LIVED:
        return None
    last = _last_published(registry, "features", feature.key)
    if last is None or last > cutoff:
        return None
    age = f"unchanged for {(now - last).days} days"
    enabled = {env: s for env, s in sorted(feature.environments.items()) if s.enabled}
    if not enabled:
        return StaleFlag(feature.key, feature.kind, "off-everywhere",
                         f"off in every environment and {age}",
                         "remove the code behind it, then archive the flag", last)  # fmt: skip
    values = {env: _single_value(feature, s, experiments, now) for env, s in enabled.items()}
    if any(v is _VARIES for v in values.values()):
        return None
    distinct = {repr(v) for v in values.values()}
    if len(distinct) == 1:
        value = next(iter(values.values()))
        action = f"hard-code {value!r} where the code reads it, then archive the flag"
    else:
        action = "environments disagree: finish the rollout (or remove it), then archive"
    where = "every enabled environment serves one value to everyone"
    return StaleFlag(feature.key, feature.kind, "unchanging", f"{where}; {age}", action,
                     last, values)  # fmt: skip


def _single_value(
    feature: Feature, setting: FeatureEnvironment, experiments: Mapping[str, Experiment],
    now: datetime,
) -> Any:  # fmt: skip
    """The value everyone gets in one environment, or ``_VARIES`` (also when a change is due)."""
    for rule in setting.rules:
        if not rule.enabled:
            continue
        if rule.schedule is not None:
            moments = (rule.schedule.start_at, rule.schedule.end_at)
            if any(m is not None and m > now for m in moments):
                return _VARIES
            if not rule.schedule.is_live(now):
                continue
        targeted = bool(rule.condition or rule.saved_groups or rule.prerequisites)
        if isinstance(rule, ForceRule):
            return _VARIES if targeted else rule.value
        if isinstance(rule, RolloutRule):
            if rule.coverage == 0:
                continue
            return rule.value if rule.coverage >= 1 and not targeted else _VARIES
        served = _released_value(rule, experiments)
        if served is _VARIES:
            return _VARIES
        if served is not None:
            experiment = experiments[rule.experiment]
            everyone = not (targeted or experiment.condition or experiment.saved_groups
                            or experiment.prerequisites)  # fmt: skip
            return served[0] if everyone else _VARIES
    return feature.default_value


def _released_value(rule: ExperimentRule, experiments: Mapping[str, Experiment]) -> Any:
    """(value,) a stopped experiment releases; None when the rule serves nobody; else _VARIES."""
    experiment = experiments.get(rule.experiment)
    if experiment is None or experiment.archived or experiment.status == "draft":
        return None
    if experiment.status == "running":
        return _VARIES
    if experiment.released_variation is None:
        return None
    index = experiment.variation_index(experiment.released_variation)
    values = rule.values if rule.values is not None else [v.payload for v in experiment.variations]
    return (values[index],) if index < len(values) else None


def _dependents(
    features: Iterable[Feature], experiments: Iterable[Experiment]
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for feature in features:
        if feature.archived:
            continue
        for env, setting in feature.environments.items():
            for rule in setting.rules:
                for p in rule.prerequisites:
                    out.setdefault(p.feature, []).append(f"feature {feature.key} ({env})")
    for experiment in experiments:
        if not experiment.archived:
            for p in experiment.prerequisites:
                out.setdefault(p.feature, []).append(f"experiment {experiment.key}")
    return {k: sorted(set(v)) for k, v in out.items()}


def _missing(feature: Feature, experiments: Mapping[str, Any], groups: set[str]) -> list[str]:
    missing = set()
    for setting in feature.environments.values():
        for rule in setting.rules:
            if isinstance(rule, ExperimentRule) and rule.experiment not in experiments:
                missing.add(f"experiment {rule.experiment}")
            missing.update(f"saved group {g}" for t in rule.saved_groups for g in t.ids
                           if g not in groups)  # fmt: skip
    return sorted(missing)


def _last_published(registry: Registry, name: str, key: str) -> datetime | None:
    try:
        history = registry.revisions(name, key)
    except NotFound:
        return None
    dates = [r.published_at for r in history if r.published_at is not None]
    return max(dates) if dates else None


def _stopped_at(registry: Registry, experiment: Experiment) -> datetime | None:
    """When it stopped: the last phase's end, else when the stopped version was published."""
    phase = experiment.current_phase()
    if phase is not None and phase.ended_at is not None:
        return phase.ended_at
    return _last_published(registry, "experiments", experiment.key)


def _outcome(experiment: Experiment) -> str:
    result = experiment.result or "no result recorded"
    released = (
        f", released {experiment.released_variation!r}" if experiment.released_variation else ""
    )
    return f"{experiment.key} ({result}{released})"


def _ship_action(feature: Feature, used: list[Experiment]) -> str:
    released = [e for e in used if e.released_variation]
    if not released:
        return "nothing was released: remove the experiment's code paths, keep the default, archive"
    names = ", ".join(f"{e.released_variation!r} of {e.key}" for e in released)
    return f"hard-code the released variation ({names}), remove the flag, then archive it"


def _some(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# -- code references ----------------------------------------------------------------------------


def find_refs(root: Path | str, keys: Iterable[str], *, max_bytes: int = MAX_BYTES) -> RefReport:
    """Where each key appears as a whole quoted string literal ("key", 'key' or `key`).

    Quoting is the word boundary: ``"checkout"`` does not match ``"checkout-v2"`` nor a
    variable called checkout. Version-control and dependency folders, binary files and files
    over ``max_bytes`` are skipped.
    """
    wanted = sorted(set(keys), key=lambda k: (-len(k), k))
    if not wanted:
        return RefReport([], [], 0)
    alternatives = "|".join(re.escape(k) for k in wanted)
    pattern = re.compile(r"([\"'`])(" + alternatives + r")\1")
    base = Path(root)
    hits: list[Hit] = []
    scanned = 0
    for path in _source_files(base, max_bytes):
        text = _text(path)
        if text is None:
            continue
        scanned += 1
        lines = text.splitlines()
        rel = path.name if base.is_file() else path.relative_to(base).as_posix()
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            snippet = lines[line - 1].strip()[:200] if line <= len(lines) else ""
            hits.append(Hit(rel, line, match.group(2), snippet))
    hits.sort(key=lambda h: (h.path, h.line))
    seen = {h.key for h in hits}
    return RefReport(hits, sorted(k for k in wanted if k not in seen), scanned)


def _source_files(root: Path, max_bytes: int) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(folder, name)
            try:
                if path.is_file() and path.stat().st_size <= max_bytes:
                    yield path
            except OSError:
                continue


def _text(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")
