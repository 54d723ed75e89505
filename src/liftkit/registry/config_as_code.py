"""Config as code: registry objects as YAML files in git, planned and applied like Terraform.

Teams want flag changes reviewed in pull requests and rolled out by CI rather than clicked into
production. The files use the registry's own models (declared once, in this package): one YAML
document per object, ``kind`` naming its collection and the model's fields beside it. ``plan``
compares files with the live registry, ``apply`` makes the registry match through
``Registry.save`` (so revisions, approvals and the audit log work as for any other change), and
``export`` writes live state back in the same format, leaving out fields at their default.
Everything here is I/O-free apart from reading the files and the registry calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from liftkit.registry._base import RegistryObject
from liftkit.registry._diff import Change as PathChange
from liftkit.registry._diff import diff
from liftkit.registry.collections import BY_KIND, collection
from liftkit.registry.errors import InvalidObject, NotFound, RegistryError
from liftkit.registry.features import ExperimentRule, Feature, FlagKind, ForceRule, RolloutRule
from liftkit.registry.revisions import Revision
from liftkit.registry.store import Registry

#: Dependency order: what an object may refer to is created before it (deletes run backwards).
ORDER = (
    "projects", "environments", "attributes", "namespaces", "saved-groups", "experiments",
    "holdouts", "features", "data-sources", "segments", "fact-tables", "metrics", "playbooks",
    "knowledge-settings", "brief-templates", "briefs",
)  # fmt: skip
#: Deleting these takes everything in them with it, so pruning them must be asked for by name.
PROTECTED = frozenset({"projects", "environments"})
SUFFIXES = (".yaml", ".yml")
#: ``kind`` names the document's collection, so a model field called ``kind`` (a feature's flag
#: kind: release, experiment, ...) is written under another name in the files.
RENAMED = {"Feature": {"flag_kind": "kind"}}
HEADER = "# liftkit registry objects; change them and run: liftkit apply -f THIS_FILE\n"

Action = Literal["create", "update", "unchanged", "delete", "pending"]


class ConfigError(Exception):
    """The files could not be read; ``problems`` names file, document and field for each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Desired:
    """One object as the files want it, and where it was written (for messages)."""

    collection: str
    obj: RegistryObject
    source: str = ""

    @property
    def key(self) -> str:
        return self.obj.key


@dataclass(frozen=True)
class Change:
    """What applying does to one object. ``pending``: the same change already awaits review."""

    action: Action
    collection: str
    key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    diff: tuple[PathChange, ...] = ()
    source: str = ""
    pending_version: int | None = None

    @property
    def kind(self) -> str:
        return collection(self.collection).kind


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def to_apply(self) -> list[Change]:
        return [c for c in self.changes if c.action in ("create", "update", "delete")]

    @property
    def has_changes(self) -> bool:
        return bool(self.to_apply)

    def summary(self) -> str:
        parts = [f"{self.count(a)} to {a}" for a in ("create", "update", "delete")]
        extra = [f"{self.count(a)} {a}" for a in ("unchanged", "pending") if self.count(a)]
        return ", ".join(parts + extra).replace("pending", "already awaiting review")


@dataclass
class ApplyResult:
    published: list[tuple[Change, Revision]] = field(default_factory=list)
    #: Changes that reach an environment requiring approval: drafted and sent for review.
    pending_review: list[tuple[Change, Revision]] = field(default_factory=list)


class ApplyError(RegistryError):
    """Applying stopped at one change; ``result`` holds what was applied before it."""

    def __init__(self, message: str, result: ApplyResult) -> None:
        super().__init__(message)
        self.result = result


# -- reading files ------------------------------------------------------------------------------


def yaml_files(paths: Iterable[Path | str]) -> list[Path]:
    """The files ``paths`` mean: files as given, folders as their *.yaml/*.yml (recursive)."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            files.extend(sorted(found))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(f"{path}: no such file or folder")
    if missing:
        raise ConfigError(missing)
    return files


def load(paths: Iterable[Path | str]) -> list[Desired]:
    """Every object in the files, validated; all problems are collected into one ConfigError."""
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    desired: list[Desired] = []
    for path in yaml_files(paths):
        for index, line, data in _documents(path, problems):
            where = f"{path}, document {index} (line {line})"
            item = parse_document(data, where, problems)
            if item is None:
                continue
            ident = (item.collection, item.key)
            if ident in seen:
                problems.append(f"{where}: {item.obj.__class__.__name__} {item.key!r} is also "
                                f"defined in {seen[ident]}")  # fmt: skip
                continue
            seen[ident] = where
            desired.append(item)
    if problems:
        raise ConfigError(problems)
    return desired


def parse_document(data: Any, where: str, problems: list[str]) -> Desired | None:
    """One YAML document to a validated object, or None with the reasons added to problems."""
    kinds = ", ".join(BY_KIND)
    if not isinstance(data, dict):
        problems.append(f"{where}: a document is a mapping with a 'kind' (one of {kinds})")
        return None
    body = dict(data)
    kind = body.pop("kind", None)
    spec = BY_KIND.get(str(kind))
    if spec is None:
        what = "'kind' is missing" if kind is None else f"unknown kind {kind!r}"
        hint = "; a feature's own kind is written flag_kind" if kind in _FLAG_KINDS else ""
        problems.append(f"{where}: {what} (known kinds: {kinds}{hint})")
        return None
    renamed = RENAMED.get(spec.kind, {})
    if any(field in body for field in renamed.values()):
        names = ", ".join(f"{field!r} (write {alias})" for alias, field in renamed.items())
        problems.append(f"{where}: {spec.kind} fields named {names} clash with the document kind")
        return None
    body = {renamed.get(name, name): value for name, value in body.items()}
    back = {field: alias for alias, field in renamed.items()}
    try:
        obj = Registry.validate(spec, body)
    except InvalidObject as exc:
        label = f"{spec.kind} {body.get('key')!r}" if body.get("key") else spec.kind
        for error in exc.errors:
            path = list(error["loc"])
            if path and path[0] in back:
                path[0] = back[path[0]]
            loc = ".".join(str(p) for p in path)
            problems.append(
                f"{where}, {label}: " + (f"field {loc}: " if loc else "") + _message(error["msg"])
            )
        return None
    return Desired(spec.name, obj, where)


class _Loader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; here a repeated key is an error, not a loss."""


def _no_duplicate_keys(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def _documents(path: Path, problems: list[str]) -> Iterator[tuple[int, int, Any]]:
    """(1-based index, first line, data) of each non-empty document of one file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read it: {exc}")
        return
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            index += 1
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is not None:
                yield index, node.start_mark.line + 1, data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(f"{path}, document {max(index, 1)}: invalid YAML{at}: {reason}")
    finally:
        loader.dispose()


# -- planning and applying ----------------------------------------------------------------------


def plan(
    registry: Registry,
    desired: Iterable[Desired],
    *,
    prune: bool = False,
    prune_also: Iterable[str] = (),
) -> Plan:
    """What ``apply`` would do, object by object, in the order it would do it.

    With ``prune``, live objects missing from the files are deleted, but only in collections the
    files contain, and never projects or environments unless ``prune_also`` names them.
    """
    wanted: dict[str, dict[str, Desired]] = {}
    for item in desired:
        wanted.setdefault(collection(item.collection).name, {})[item.key] = item
    allowed = {collection(name).name for name in prune_also}
    changes: list[Change] = []
    deletes: list[Change] = []
    for name in ORDER:
        if name not in wanted:
            continue
        live = {obj.key: _body(obj) for obj in registry.all(name)}
        for key in sorted(wanted[name]):
            item = wanted[name][key]
            before, after = live.get(key), _body(item.obj)
            if _equal(before, after):
                changes.append(Change("unchanged", name, key, before, after, source=item.source))
                continue
            action: Action = "create" if before is None else "update"
            change = Change(action, name, key, before, after, tuple(diff(before, after)),
                            item.source)  # fmt: skip
            changes.append(_awaiting_review(registry, change))
        if prune and (name not in PROTECTED or name in allowed):
            for key in sorted(set(live) - set(wanted[name])):
                change = Change("delete", name, key, live[key], None, tuple(diff(live[key], None)))
                deletes.append(_awaiting_review(registry, change))
    deletes.sort(key=lambda c: -ORDER.index(c.collection))
    return Plan(tuple(changes + deletes))


def apply(
    registry: Registry, plan: Plan, actor: str, *, message: str = "liftkit apply"
) -> ApplyResult:
    """Carry out a plan through the registry, refusing objects that moved since it was made.

    Changes reaching an environment that requires approval end up pending review (reported in
    the result), because nobody approves their own change; planning again then shows them as
    already awaiting review instead of drafting them twice.
    """
    result = ApplyResult()
    for change in plan.to_apply:
        where = f"{change.kind} {change.key!r}"
        try:
            live = registry.find(change.collection, change.key)
            if not _equal(None if live is None else _body(live), change.before):
                raise ApplyError(f"{where} changed since the plan was made; plan again", result)
            if change.action == "delete":
                revision = registry.delete(change.collection, change.key, actor, message=message)
            else:
                revision = registry.save(change.collection, change.after, actor, message=message)
        except ApplyError:
            raise
        except RegistryError as exc:
            raise ApplyError(f"{where}: {exc}", result) from exc
        bucket = result.pending_review if revision.status == "pending_review" else result.published
        bucket.append((change, revision))
    return result


def _body(obj: RegistryObject) -> dict[str, Any]:
    return obj.model_dump(mode="json")


def _equal(a: Any, b: Any) -> bool:
    """Equal as JSON: unlike ``==``, 0, 0.0 and false differ (a flag's value can be any)."""
    return not diff(a, b)


def _awaiting_review(registry: Registry, change: Change) -> Change:
    """The change marked ``pending`` when its latest revision is exactly it, awaiting review."""
    try:
        latest = registry.revisions(change.collection, change.key)[-1]
    except NotFound:
        return change
    if latest.status in ("pending_review", "approved") and _equal(latest.body, change.after):
        return Change("pending", change.collection, change.key, change.before, change.after,
                      change.diff, change.source, latest.version)  # fmt: skip
    return change


# -- exporting ----------------------------------------------------------------------------------


def export(registry: Registry, collections: Iterable[str] | None = None) -> str:
    """Live objects as YAML documents (in dependency order) that ``load`` reads back."""
    names = ORDER if collections is None else {collection(n).name for n in collections}
    docs = [to_document(name, obj) for name in ORDER if name in names for obj in registry.all(name)]
    return dump_documents(docs)


def to_document(name: str, obj: RegistryObject) -> dict[str, Any]:
    """One object as a YAML-ready document, fields at their default value left out."""
    body = _slim(obj)
    if isinstance(obj, Feature):
        for env, setting in body.get("environments", {}).items():
            for index, rule in enumerate(setting.get("rules", [])):
                if rule.get("id") == f"{env}-{index + 1}":  # derived again on load
                    del rule["id"]
    spec = collection(name)
    back = {field: alias for alias, field in RENAMED.get(spec.kind, {}).items()}
    key = body.pop("key")
    return {"kind": spec.kind, "key": key, **{back.get(k, k): v for k, v in body.items()}}


def dump_documents(docs: Iterable[dict[str, Any]]) -> str:
    texts = [yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100) for doc in docs]
    return HEADER + "---\n" + "---\n".join(texts) if texts else HEADER


_RULES = (ForceRule, RolloutRule, ExperimentRule)
_FLAG_KINDS = frozenset(get_args(FlagKind))
#: Fields a reader looks for first, in this order; the rest keep the model's order.
_FIRST = ("key", "type", "name", "description", "project", "owner", "tags")


def _slim(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        keep = info.is_required() or (name == "type" and isinstance(model, _RULES))
        default = info.get_default(call_default_factory=True, validated_data={})
        if not keep and _equal(to_jsonable_python(value), to_jsonable_python(default)):
            continue
        out[name] = _slim_value(value)
    first = [name for name in _FIRST if name in out]
    return {name: out[name] for name in [*first, *(n for n in out if n not in _FIRST)]}


def _slim_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _slim(value)
    if isinstance(value, list | tuple):
        return [_slim_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _slim_value(v) for k, v in value.items()}
    return to_jsonable_python(value)


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")
