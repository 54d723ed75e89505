"""Targeting helpers shared by feature rules and experiments: hash attributes (with fallback),
hash-range filters and prerequisites on parent features."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from liftkit.sdk._conditions import Condition, compile_condition
from liftkit.sdk._hashing import BucketRange, hash_value
from liftkit.sdk._jsvalues import to_string, truthy

ParentCheck = tuple[str, Condition, bool]
"""A prerequisite: (parent feature key, condition on ``{"value": parent value}``, is a gate)."""
EvaluateParent = Callable[[str], tuple[Any, bool]]
"""Evaluates a parent feature: (value, cyclic?)."""


class Filter:
    """A hash-range filter: the user is kept when the hash falls in one of the ranges."""

    __slots__ = ("attribute", "hash_version", "ranges", "seed")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.attribute = str(raw.get("attribute") or "id")
        self.seed = str(raw.get("seed", ""))
        self.hash_version = int(raw.get("hashVersion") or 2)
        self.ranges: tuple[BucketRange, ...] = tuple(
            (float(r[0]), float(r[1])) for r in raw.get("ranges", ())
        )


def compile_filters(raw: Any) -> tuple[Filter, ...] | None:
    if not isinstance(raw, list):
        return None
    return tuple(Filter(f) for f in raw if isinstance(f, dict))


def filtered_out(filters: Sequence[Filter], attributes: Mapping[str, Any]) -> bool:
    for f in filters:
        value = attributes.get(f.attribute)
        if not truthy(value):
            return True
        n = hash_value(f.seed, to_string(value), f.hash_version)
        if n is None or not any(lo <= n < hi for lo, hi in f.ranges):
            return True
    return False


def compile_parents(raw: Any, saved_groups: Mapping[str, Any]) -> tuple[ParentCheck, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        (
            str(p.get("id")),
            compile_condition(p.get("condition") or {}, saved_groups),
            bool(p.get("gate")),
        )
        for p in raw
        if isinstance(p, dict)
    )


def hash_attribute(
    attributes: Mapping[str, Any], attribute: str, fallback: str | None
) -> tuple[str, Any]:
    """The attribute to hash on and its value ("" when missing), using the fallback if set."""
    value = attributes.get(attribute)
    if not truthy(value):
        value = ""
        if fallback:
            alt = attributes.get(fallback)
            if truthy(alt):
                return fallback, alt
    return attribute, value
