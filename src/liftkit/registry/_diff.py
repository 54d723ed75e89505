"""A structural diff of two JSON documents, path by path, for drafts and the audit log."""

from __future__ import annotations

from typing import Any, NamedTuple

_MISSING: Any = object()


class Change(NamedTuple):
    """``path`` like ``environments.production.rules.0.value``; ``op`` added/removed/changed."""

    path: str
    op: str
    before: Any
    after: Any


def diff(before: Any, after: Any) -> list[Change]:
    """Changes turning ``before`` into ``after``; dicts and lists are walked, values compared."""
    out: list[Change] = []
    _walk("", _MISSING if before is None else before, _MISSING if after is None else after, out)
    return out


def _walk(path: str, a: Any, b: Any, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            _walk(_join(path, key), a.get(key, _MISSING), b.get(key, _MISSING), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(_join(path, index), x, y, out)
    elif a is _MISSING and b is not _MISSING:
        out.append(Change(path, "added", None, b))
    elif b is _MISSING and a is not _MISSING:
        out.append(Change(path, "removed", a, None))
    elif a != b or type(a) is not type(b):
        out.append(Change(path, "changed", a, b))


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
