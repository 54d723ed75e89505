"""Targeting conditions (GrowthBook's MongoDB-like syntax), compiled once into closures.

``compile_condition(condition, saved_groups)`` turns the JSON condition into a function of the
user's attributes. Compilation happens when a payload is loaded; evaluation then does no parsing,
no regex compilation and no saved-group lookups, which keeps per-request evaluation cheap.

Malformed conditions never raise: a part that cannot be understood evaluates to False
("fail closed"), so a bad payload hides a rule rather than showing it to everyone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from liftkit.sdk._jsvalues import (
    compare,
    js_type,
    json_equal,
    strict_equal,
    to_number,
    to_string,
    truthy,
)

Condition = Callable[[Any], bool]
"""A compiled condition: attributes (or any JSON value) → bool."""
ValueTest = Callable[[Any], bool]
SavedGroups = Mapping[str, Any]


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def compile_condition(condition: Any, saved_groups: SavedGroups | None = None) -> Condition:
    """Compile a condition object; ``{}`` (or None) matches everyone."""
    groups = saved_groups or {}
    if condition is None:
        return _always
    compiled = _compile_object(condition, groups)

    def run(attributes: Any) -> bool:
        try:
            return compiled(attributes)
        except (TypeError, ValueError, RecursionError, AttributeError):
            return False

    return run


def eval_condition(
    attributes: Any, condition: Any, saved_groups: SavedGroups | None = None
) -> bool:
    """Evaluate a condition once (compile and run); for tests and one-off use."""
    return compile_condition(condition, saved_groups)(attributes)


def _compile_object(condition: Any, groups: SavedGroups) -> Condition:
    if not isinstance(condition, dict):
        return _never
    parts: list[Condition] = []
    for key, value in condition.items():
        if key == "$or":
            parts.append(_any_of(value, groups))
        elif key == "$nor":
            parts.append(_negate(_any_of(value, groups)))
        elif key == "$and":
            parts.append(_all_of(value, groups))
        elif key == "$not":
            parts.append(_negate(_compile_object(value, groups)))
        else:
            parts.append(_on_path(key, _compile_value(value, groups)))
    return _conjunction(parts)


def _conjunction(parts: Sequence[Condition]) -> Condition:
    if not parts:
        return _always
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda v: first(v) and second(v)
    items = tuple(parts)
    return lambda v: all(p(v) for p in items)


def _negate(test: Condition) -> Condition:
    return lambda v: not test(v)


def _any_of(conditions: Any, groups: SavedGroups) -> Condition:
    if not isinstance(conditions, list):
        return _never
    if not conditions:
        return _always
    items = tuple(_compile_object(c, groups) for c in conditions)
    return lambda v: any(p(v) for p in items)


def _all_of(conditions: Any, groups: SavedGroups) -> Condition:
    if not isinstance(conditions, list):
        return _never
    return _conjunction([_compile_object(c, groups) for c in conditions])


def _on_path(path: str, test: ValueTest) -> Condition:
    """Read ``path`` (dotted, JS ``in`` semantics) from the attributes, then test the value."""
    if "." not in path:

        def single(attributes: Any) -> bool:
            if isinstance(attributes, dict):
                return test(attributes.get(path))
            return test(_get_path(attributes, (path,)))

        return single
    parts = tuple(path.split("."))
    return lambda attributes: test(_get_path(attributes, parts))


def _get_path(obj: Any, parts: Sequence[str]) -> Any:
    current = obj
    for part in parts:
        if isinstance(current, dict):
            if part not in current:
                return None
            current = current[part]
        elif isinstance(current, list):  # JS: every array is truthy, even []
            if part == "length":
                current = len(current)
            elif part.isdigit() and (part == "0" or part[0] != "0") and int(part) < len(current):
                current = current[int(part)]
            else:
                return None
        else:
            return None
    return current


def is_operator_object(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(str(k).startswith("$") for k in value)


def _compile_value(expected: Any, groups: SavedGroups, insensitive: bool = False) -> ValueTest:
    """A test of one attribute value against a condition value (literal or operator object)."""
    if is_operator_object(expected):
        return _conjunction([_compile_operator(op, arg, groups) for op, arg in expected.items()])
    if isinstance(expected, str):
        if insensitive:
            folded = expected.lower()
            return lambda v: to_string(v).lower() == folded
        return lambda v: v == expected if isinstance(v, str) else to_string(v) == expected
    if isinstance(expected, bool):
        return lambda v: v is not None and truthy(v) == expected
    if isinstance(expected, (int, float)):
        return lambda v: to_number(v) == expected
    if expected is None:
        return lambda v: v is None
    return lambda v: json_equal(v, expected)


def _compile_operator(op: str, arg: Any, groups: SavedGroups) -> ValueTest:
    builder = _OPERATORS.get(op)
    if builder is None:
        return _never
    return builder(arg, groups)


# Each operator builder takes (argument, saved groups) and returns a value test.
OperatorBuilder = Callable[[Any, SavedGroups], ValueTest]


def _strict_eq(arg: Any, _: SavedGroups) -> ValueTest:
    return lambda v: strict_equal(v, arg)


def _strict_ne(arg: Any, _: SavedGroups) -> ValueTest:
    return lambda v: not strict_equal(v, arg)


def _ordering(accept: Callable[[int], bool]) -> OperatorBuilder:
    def build(arg: Any, _: SavedGroups) -> ValueTest:
        def test(v: Any) -> bool:
            c = compare(v, arg)
            return c is not None and accept(c)

        return test

    return build


def _version_ordering(accept: Callable[[str, str], bool]) -> OperatorBuilder:
    def build(arg: Any, _: SavedGroups) -> ValueTest:
        expected = padded_version(arg)
        return lambda v: accept(padded_version(v), expected)

    return build


_VERSION_STRIP = re.compile(r"(^v|\+.*$)")
_VERSION_SPLIT = re.compile(r"[-.]")


def padded_version(value: Any) -> str:
    """A string that sorts like the semantic version it came from.

    Numeric parts are left-padded so "10" sorts after "9"; a release without a pre-release tag
    gets a trailing "~" so "1.0.0" sorts after "1.0.0-beta".
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = to_string(value)
    if not value or not isinstance(value, str):
        value = "0"
    return _padded(value)


@functools.lru_cache(maxsize=4096)
def _padded(value: str) -> str:
    """Cached: a user base has few distinct app versions, and this runs per evaluation."""
    parts = _VERSION_SPLIT.split(_VERSION_STRIP.sub("", value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5) if p.isdigit() else p for p in parts)


def _regex(flags: int, negate: bool = False) -> OperatorBuilder:
    def build(arg: Any, _: SavedGroups) -> ValueTest:
        try:
            pattern = re.compile(str(arg), flags)
        except re.error:
            return _never
        search = pattern.search
        if negate:
            return lambda v: search(to_string(v)) is None
        return lambda v: search(to_string(v)) is not None

    return build


def _member_key(value: Any) -> tuple[str, Any] | None:
    """A hashable key with JS ``includes`` equality: 1 == 1.0, but 1 != true != "1"."""
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", float(value))
    if value is None:
        return ("z", None)
    return None


def membership(values: Any, insensitive: bool = False) -> ValueTest:
    """``isIn``: the value (or any element, if it is an array) is one of ``values``.

    JS ``includes`` equality: 1 == 1.0, but 1, true and "1" are all different; arrays and
    objects never match. Strings get their own set because they are by far the common case.
    """
    if not isinstance(values, list):
        return _never
    fold: Callable[[Any], Any] = (
        (lambda x: x.lower() if isinstance(x, str) else x) if insensitive else (lambda x: x)
    )
    folded = [fold(x) for x in values]
    strings = frozenset(x for x in folded if isinstance(x, str))
    others = frozenset(k for k in (_member_key(x) for x in folded) if k is not None)

    def one(v: Any) -> bool:
        if v.__class__ is str:
            return (v.lower() if insensitive else v) in strings
        key = _member_key(fold(v))
        return key is not None and key in others

    def test(v: Any) -> bool:
        if v.__class__ is str and not insensitive:
            return v in strings
        if isinstance(v, list):
            return any(one(x) for x in v)
        return one(v)

    return test


def _in(insensitive: bool, negate: bool) -> OperatorBuilder:
    def build(arg: Any, _: SavedGroups) -> ValueTest:
        if not isinstance(arg, list):
            return _never
        test = membership(arg, insensitive)
        return _negate(test) if negate else test

    return build


def _in_group(negate: bool) -> OperatorBuilder:
    def build(arg: Any, groups: SavedGroups) -> ValueTest:
        members = groups.get(arg) if isinstance(arg, str) else None
        test = membership(members if isinstance(members, list) else [])
        return _negate(test) if negate else test

    return build


def _all(insensitive: bool) -> OperatorBuilder:
    def build(arg: Any, groups: SavedGroups) -> ValueTest:
        if not isinstance(arg, list):
            return _never
        tests = tuple(_compile_value(x, groups, insensitive) for x in arg)

        def test(v: Any) -> bool:
            if not isinstance(v, list):
                return False
            return all(any(t(item) for item in v) for t in tests)

        return test

    return build


def _elem_match(arg: Any, groups: SavedGroups) -> ValueTest:
    check = _compile_value(arg, groups) if is_operator_object(arg) else _compile_object(arg, groups)

    def test(v: Any) -> bool:
        if not isinstance(v, list):
            return False
        return any(truthy(item) and check(item) for item in v)

    return test


def _size(arg: Any, groups: SavedGroups) -> ValueTest:
    check = _compile_value(arg, groups)
    return lambda v: isinstance(v, list) and check(len(v))


def _exists(arg: Any, _: SavedGroups) -> ValueTest:
    if truthy(arg):
        return lambda v: v is not None
    return lambda v: v is None


def _type(arg: Any, _: SavedGroups) -> ValueTest:
    return lambda v: js_type(v) == arg


def _not(arg: Any, groups: SavedGroups) -> ValueTest:
    return _negate(_compile_value(arg, groups))


_OPERATORS: dict[str, OperatorBuilder] = {
    "$eq": _strict_eq,
    "$ne": _strict_ne,
    "$lt": _ordering(lambda c: c < 0),
    "$lte": _ordering(lambda c: c <= 0),
    "$gt": _ordering(lambda c: c > 0),
    "$gte": _ordering(lambda c: c >= 0),
    "$veq": _version_ordering(lambda a, b: a == b),
    "$vne": _version_ordering(lambda a, b: a != b),
    "$vlt": _version_ordering(lambda a, b: a < b),
    "$vlte": _version_ordering(lambda a, b: a <= b),
    "$vgt": _version_ordering(lambda a, b: a > b),
    "$vgte": _version_ordering(lambda a, b: a >= b),
    "$regex": _regex(0),
    "$regexi": _regex(re.IGNORECASE),
    "$notRegex": _regex(0, negate=True),
    "$notRegexi": _regex(re.IGNORECASE, negate=True),
    "$in": _in(insensitive=False, negate=False),
    "$nin": _in(insensitive=False, negate=True),
    "$ini": _in(insensitive=True, negate=False),
    "$nini": _in(insensitive=True, negate=True),
    "$inGroup": _in_group(negate=False),
    "$notInGroup": _in_group(negate=True),
    "$all": _all(insensitive=False),
    "$alli": _all(insensitive=True),
    "$elemMatch": _elem_match,
    "$size": _size,
    "$exists": _exists,
    "$type": _type,
    "$not": _not,
}
