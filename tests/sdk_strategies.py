"""Hypothesis strategies for the differential tests of liftkit's SDK engine (test_sdk_differential).

The oracle, the ``growthbook`` Python package 4.x, has drifted from the GrowthBook specification
(the JavaScript reference SDK) in a few places; see ``test_sdk_differential.py`` for the list. The
strategies here stay inside the region where the specification and the oracle agree, so any
disagreement they find is a real difference worth a look:

* attributes are drawn first and conditions are built knowing the value each path holds, so an
  operator whose result depends on JS type coercion (literals, ``$gt`` & co., ``$regex``,
  ``$elemMatch`` over falsy elements, version operators on mixed types) is only generated where
  both sides of the comparison have the same JSON type;
* ``$all`` never pairs a null element with 0 or "null" (JS coerces ``null * 1 === 0``);
* hash attributes are non-empty strings or non-zero numbers (JS also hashes ``true`` and arrays);
* coverages never fall exactly on a hash bucket boundary (the oracle's ``n < coverage`` versus the
  spec's ``n <= coverage``);
* an experiment is forced (context or URL) only when no rule with its key has a condition, force
  values are never null, filter lists never empty and meta keys never "".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

JSON = Any

# -- primitives -----------------------------------------------------------------------------

UNICODE = st.characters(exclude_categories=())
"""Any code point, astral characters and lone surrogates included (JSON can carry both)."""
TEXT = st.text(UNICODE, max_size=8)

WORDS = ("alpha", "Alpha", "beta", "BETA", "gamma", "été", "Été", "日本", "x", "a b", "")
words = st.sampled_from(WORDS)
strings = words | TEXT
ints = st.integers(min_value=-1000, max_value=1000)
floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
numbers = ints | floats | st.sampled_from((0, 1, -1, 0.5, 1.0, 2.5))
bools = st.booleans()
primitives = st.none() | bools | numbers | strings
"""JSON scalars; no NaN or Infinity, which JSON cannot carry."""

VERSIONS = ("1.0.0", "1.2.3", "1.10.0", "v1.2.3", "1.2.3-beta", "1.2.3-beta.1", "1.2.3+build", "2")
versions = st.sampled_from(VERSIONS) | st.builds(
    lambda parts: ".".join(str(p) for p in parts),
    st.lists(st.integers(0, 12), min_size=1, max_size=4),
)

TYPE_NAMES = ("string", "number", "boolean", "array", "object", "null", "undefined")
REGEXES = (
    "^a",
    "a$",
    "ph",
    "[A-Z]",
    "^$",
    "e.a",
    "(?i)beta",
    "\\s",
    "日",
    "^(alpha|beta)$",
    "[",
    "u",
    "\\d",
)
"""Patterns that mean the same in Python and JS; "[" does not compile in either."""


def _json_values(max_leaves: int) -> st.SearchStrategy[JSON]:
    scalar = bools | ints | words | st.sampled_from((0.5, 1.5, -2.0))
    return st.recursive(
        scalar,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(("a", "b", "color")), inner, max_size=2)
        ),
        max_leaves=max_leaves,
    )


json_values = _json_values(4)
"""Feature values: any JSON but null (a forced null is a known divergence)."""
small_json_values = _json_values(2)


# -- attributes -----------------------------------------------------------------------------

HASH_ATTRIBUTES = ("id", "company", "deviceId")
GROUP_IDS = ("g1", "g2", "g3", "missing-group")


hash_values = (
    st.text(UNICODE, min_size=1, max_size=10)
    | st.integers(-(2**60), 2**60).filter(bool)
    | st.floats(allow_nan=False, allow_infinity=False).filter(bool)
)
"""Values a user can be hashed on in every SDK: non-empty strings, non-zero finite numbers."""

_profile = st.fixed_dictionaries(
    {"plan": words, "seats": ints},
    optional={"beta": bools, "address": st.fixed_dictionaries({"city": strings})},
)
_item = st.fixed_dictionaries({"sku": words, "qty": ints})

ATTRIBUTE_SCHEMA: dict[str, st.SearchStrategy[JSON]] = {
    "id": hash_values,
    "company": hash_values,
    "deviceId": hash_values,
    "name": strings,
    "country": st.sampled_from(("US", "us", "FR", "Fr", "DE")),
    "age": ints,
    "score": numbers,
    "premium": bools,
    "version": versions,
    "tags": st.lists(words | st.none(), max_size=4),
    "nums": st.lists(numbers | st.none(), max_size=4),
    "mixed": st.lists(primitives, max_size=4),
    "items": st.lists(_item, max_size=3),
    "profile": _profile,
}
PATHS = (
    *ATTRIBUTE_SCHEMA,
    "profile.plan",
    "profile.seats",
    "profile.beta",
    "profile.address",
    "profile.address.city",
    "profile.nope.deeper",
    "tags.0",
    "tags.1",
    "tags.length",
    "nums.0",
    "nums.length",
    "items.0.sku",
    "items.00",
    "missing",
)

_maybe = {name: st.none() | strategy for name, strategy in ATTRIBUTE_SCHEMA.items()}
attributes = st.fixed_dictionaries(
    {"id": ATTRIBUTE_SCHEMA["id"]}, optional={k: v for k, v in _maybe.items() if k != "id"}
) | st.fixed_dictionaries({}, optional=_maybe)
"""A user: every attribute of the schema may be absent or null (usually with an id)."""


@st.composite
def saved_groups(draw: st.DrawFn, members: Sequence[JSON] = ()) -> dict[str, JSON]:
    """Saved groups (id → list of values), sometimes holding some of ``members``."""
    scalars = [m for m in members if kind_of(m) not in ("array", "object")]
    groups: dict[str, JSON] = {}
    for group_id in GROUP_IDS[:-1]:
        if draw(bools):
            size = draw(st.integers(0, 4))
            groups[group_id] = [_pick(draw, scalars, primitives) for _ in range(size)]
    return groups


def scalar_values(obj: JSON) -> list[JSON]:
    """Every scalar inside ``obj`` (to put some of a user's values in saved groups)."""
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in scalar_values(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in scalar_values(x)]
    return [obj]


def get_path(obj: JSON, path: str) -> JSON:
    """The spec's ``getPath``: own keys only, so a list exposes its indices and ``length``."""
    current = obj
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part == "length":
            current = len(current)
        elif (
            isinstance(current, list)
            and part.isdigit()
            and (part == "0" or part[0] != "0")
            and int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            return None
    return current


def kind_of(value: JSON) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _pick(draw: st.DrawFn, samples: Sequence[JSON], fallback: st.SearchStrategy[JSON]) -> JSON:
    """One of the tested values (so that operators are sometimes true), or any value."""
    use_sample: bool = draw(bools)
    if samples and use_sample:
        return draw(st.sampled_from(samples))
    return draw(fallback)


def _not_null_like(value: JSON) -> bool:
    return bool(value != 0 and str(value).lower() != "null")


def _recase(draw: st.DrawFn, value: JSON) -> JSON:
    """A string in another case, sometimes (for the case-insensitive operators)."""
    if isinstance(value, str) and draw(bools):
        return draw(st.sampled_from((value.upper(), value.lower(), value.swapcase())))
    return value


def _lookalike(draw: st.DrawFn, value: JSON) -> JSON:
    """Sometimes a value that loose equality would confuse with ``value`` (1, True, "1", "A")."""
    if not draw(bools):
        return value
    if isinstance(value, bool):
        return draw(st.sampled_from((int(value), float(value), str(value).lower())))
    if isinstance(value, (int, float)):
        return draw(st.sampled_from((value == 1, float(value), str(value))))
    if isinstance(value, str):
        return draw(st.sampled_from((value.upper(), value.lower(), value.swapcase())))
    return value


def _element_kind(values: Sequence[JSON]) -> str:
    kinds = {kind_of(v) for v in values if v is not None}
    return kinds.pop() if len(kinds) == 1 else "any"


# -- conditions -----------------------------------------------------------------------------

ROBUST_OPERATORS = (
    "$eq",
    "$ne",
    "$in",
    "$nin",
    "$ini",
    "$nini",
    "$exists",
    "$type",
    "$inGroup",
    "$notInGroup",
    "$size",
    "$in-not-array",
)
"""Operators whose result the spec and the oracle agree on for a value of any type."""
ORDERING = ("$gt", "$gte", "$lt", "$lte")
VERSION_OPERATORS = ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte")
strings_or_versions = strings | versions


def _applicable(kind: str, samples: Sequence[JSON], depth: int) -> list[str]:
    ops = list(ROBUST_OPERATORS)
    if kind == "number":
        ops += [*ORDERING, "$gte+$lt", *VERSION_OPERATORS]
    elif kind == "string":
        ops += [*ORDERING, "$regex", "$regexi", *VERSION_OPERATORS]
    elif kind == "array":
        element_kind = _element_kind(samples)
        if not any(v is not None and not v for v in samples):
            ops.append("$elemMatch")  # the spec skips falsy elements, the oracle only null ones
        if element_kind in ("string", "number"):
            ops.append("$all")
        if element_kind == "string":
            ops.append("$alli")
    if depth > 0:
        ops.append("$not")
    return ops


def operator_object(
    draw: st.DrawFn, kind: str, samples: Sequence[JSON], depth: int = 2
) -> dict[str, JSON]:
    """A condition value for a value of JSON type ``kind`` (``samples``: the actual values).

    Only operators on which the spec and the oracle agree for that type are generated; "any"
    means the value's type is unknown (a prerequisite's parent value, a mixed array's element).
    """
    ops = _applicable(kind, samples, depth)
    typed = [op for op in ops if op not in ROBUST_OPERATORS]
    out: dict[str, JSON] = {}
    for _ in range(draw(st.integers(1, 2))):
        # The operators specific to the value's type are fewer, so they get half the draws.
        prefer_typed: bool = draw(bools)
        op = draw(st.sampled_from(typed if typed and prefer_typed else ops))
        out.update(_operator(draw, op, kind, samples, depth))
    return out


def _operator(
    draw: st.DrawFn, op: str, kind: str, samples: Sequence[JSON], depth: int
) -> dict[str, JSON]:
    """``{op: argument}`` with an argument suited to the values (sometimes equal to one)."""
    scalars = [s for s in samples if kind_of(s) not in ("array", "object")]
    arg: JSON
    if op in ("$eq", "$ne"):
        arg = _lookalike(draw, _pick(draw, scalars, primitives))
    elif op in ("$in", "$nin", "$ini", "$nini"):
        arg = [
            _lookalike(draw, _pick(draw, scalars, primitives))
            for _ in range(draw(st.integers(0, 3)))
        ]
        with_sample: bool = draw(bools)
        if scalars and with_sample:  # one of the values, or a lookalike of one
            arg.insert(
                draw(st.integers(0, len(arg))), _lookalike(draw, draw(st.sampled_from(scalars)))
            )
    elif op == "$in-not-array":
        return {"$in": _pick(draw, scalars, primitives)}  # never matches
    elif op == "$exists":
        arg = draw(bools)
    elif op == "$type":
        arg = draw(st.sampled_from(TYPE_NAMES))
    elif op in ("$inGroup", "$notInGroup"):
        arg = draw(st.sampled_from(GROUP_IDS))
    elif op == "$size":
        size = _pick(draw, [len(samples)] if kind == "array" else [], st.integers(0, 4))
        comparison: bool = draw(bools)
        arg = {draw(st.sampled_from(ORDERING)): size} if comparison else size
    elif op == "$gte+$lt":
        return {"$gte": _pick(draw, samples, numbers), "$lt": _pick(draw, samples, numbers)}
    elif op in ORDERING or op in VERSION_OPERATORS:
        arg = _pick(draw, samples, numbers if kind == "number" else strings_or_versions)
    elif op in ("$regex", "$regexi"):
        derived = [re.escape(s[:2]) for s in samples if isinstance(s, str) and s]
        arg = _recase(draw, _pick(draw, derived, st.sampled_from(REGEXES)))
    elif op == "$elemMatch":
        arg = _element_condition(draw, _element_kind(samples), samples, depth)
    elif op in ("$all", "$alli"):
        elements = [v for v in samples if v is not None]
        element_kind = _element_kind(samples)
        base: st.SearchStrategy[JSON] = strings if element_kind == "string" else numbers
        if None in samples:  # the spec matches a null element to 0 or "null" (`null * 1 === 0`)
            base = base.filter(_not_null_like)
        arg = [_pick(draw, elements, base) for _ in range(draw(st.integers(0, 3)))]
        if op == "$alli":
            arg = [_recase(draw, a) for a in arg]
    else:  # $not
        arg = value_condition(draw, kind, samples, depth - 1)
    return {op: arg}


def _element_condition(draw: st.DrawFn, kind: str, samples: Sequence[JSON], depth: int) -> JSON:
    """An ``$elemMatch`` argument: operators on elements, or a condition on object elements."""
    elements = [v for v in samples if v is not None]
    if kind == "object":
        fields = sorted({k for e in elements if isinstance(e, dict) for k in e} or {"sku"})
        out: dict[str, JSON] = {}
        for _ in range(draw(st.integers(1, 2))):
            key = draw(st.sampled_from(fields))
            values = [e.get(key) for e in elements if isinstance(e, dict)]
            out[key] = value_condition(draw, _element_kind(values), values, depth - 1)
        return out
    return operator_object(draw, kind, elements, depth - 1)


def value_condition(draw: st.DrawFn, kind: str, samples: Sequence[JSON], depth: int = 2) -> JSON:
    """An operator object, or (one time in four) a literal of the value's own type, or null."""
    if draw(st.integers(0, 3)) != 0:
        return operator_object(draw, kind, samples, depth)
    if draw(st.integers(0, 3)) == 0:
        return None
    if kind == "string":
        return _pick(draw, samples, strings)
    if kind == "number":
        return _pick(draw, samples, numbers)
    if kind == "boolean":
        return draw(bools)
    if kind == "array":  # ``samples`` is the array itself
        return list(samples) if draw(bools) else []
    if kind == "object":
        return draw(st.sampled_from(samples))
    return None


def _conditions(
    draw: st.DrawFn, attrs: dict[str, JSON], depth: int, min_size: int
) -> dict[str, JSON]:
    paths = PATHS
    present = [p for p in paths if get_path(attrs, p) is not None]
    out: dict[str, JSON] = {}
    kinds = ["leaf", "leaf", "leaf"] + (["$or", "$and", "$nor", "$not"] if depth > 0 else [])
    for _ in range(draw(st.integers(min_size, 3))):
        kind = draw(st.sampled_from(kinds))
        if kind == "leaf":
            prefer_present: bool = draw(bools)
            path = draw(st.sampled_from(present if present and prefer_present else paths))
            value = get_path(attrs, path)
            samples = value if isinstance(value, list) else [value]
            out[path] = value_condition(draw, kind_of(value), samples, depth)
        elif kind == "$not":
            out["$not"] = _conditions(draw, attrs, depth - 1, 0)
        else:
            out[kind] = [
                _conditions(draw, attrs, depth - 1, 0) for _ in range(draw(st.integers(0, 3)))
            ]
    return out


ALL_OPERATORS = (
    *ROBUST_OPERATORS,
    *ORDERING,
    "$gte+$lt",
    *VERSION_OPERATORS,
    "$regex",
    "$regexi",
    "$elemMatch",
    "$all",
    "$alli",
    "$not",
)
"""Every operator the generators produce ("$gte+$lt" and "$in-not-array" are variants)."""
_VALUES_BY_KIND: dict[str, st.SearchStrategy[JSON]] = {
    "null": st.none(),
    "boolean": bools,
    "number": numbers,
    "string": st.one_of(words, words, TEXT, versions),
    "array": st.one_of(
        ATTRIBUTE_SCHEMA["tags"],
        ATTRIBUTE_SCHEMA["nums"],
        ATTRIBUTE_SCHEMA["mixed"],
        ATTRIBUTE_SCHEMA["items"],
    ),
    "object": _profile,
}


def _kinds_for(op: str) -> list[str]:
    if op in ("$elemMatch", "$all", "$alli"):
        return ["array"]
    if op in ("$regex", "$regexi"):
        return ["string"]
    if op in (*ORDERING, *VERSION_OPERATORS, "$gte+$lt"):
        return ["number", "string"]
    if op in ("$in", "$nin", "$ini", "$nini"):  # mostly strings, where case matters
        return ["string", "string", "string", "array", *_VALUES_BY_KIND]
    if op == "$size":  # mostly arrays, where it can match
        return ["array", "array", "array", *_VALUES_BY_KIND]
    return list(_VALUES_BY_KIND)


@st.composite
def single_operator_cases(
    draw: st.DrawFn, op: str, count: int = 6
) -> tuple[JSON, list[dict[str, JSON]]]:
    """A value of a type ``op`` is generated for, and ``count`` operator objects using ``op``.

    Several arguments per value: hypothesis explores small examples in clumps, and arguments
    are cheap to vary.
    """
    kind = draw(st.sampled_from(_kinds_for(op)))
    value = draw(_VALUES_BY_KIND[kind])
    samples = value if isinstance(value, list) else [value]
    assume(op in _applicable(kind, samples, 1))
    return value, [_operator(draw, op, kind, samples, 1) for _ in range(count)]


@st.composite
def conditions(
    draw: st.DrawFn, attrs: dict[str, JSON], depth: int = 2, min_size: int = 0
) -> dict[str, JSON]:
    """A condition over the attribute vocabulary, well-typed for the user ``attrs``."""
    return _conditions(draw, attrs, depth, min_size)


# -- payloads -------------------------------------------------------------------------------

FEATURE_KEYS = ("f0", "f1", "f2", "f3", "f4")
coverages = st.sampled_from((0, 1, 1.5, -0.5)) | st.integers(0, 9999).map(
    lambda k: (k + 0.5) / 10000
)
"""Never exactly on a bucket boundary (hash v1 steps by 0.001, v2 by 0.0001)."""
unit = st.floats(min_value=0, max_value=1)
seeds = st.none() | words | TEXT
hash_versions = st.sampled_from((1, 2, 2, 3))


def _sorted_range(pair: Sequence[float]) -> list[float]:
    return sorted(pair)


ranges_1 = st.lists(unit, min_size=2, max_size=2).map(_sorted_range)


@st.composite
def weights(draw: st.DrawFn, n: int) -> list[float]:
    if draw(st.integers(0, 4)) == 0:  # invalid: wrong length or sum; both use equal weights
        return draw(st.lists(st.sampled_from((0.1, 0.3, 0.5, 1.0)), min_size=1, max_size=5))
    parts = draw(st.lists(st.integers(0, 10), min_size=n, max_size=n).filter(any))
    total = sum(parts)
    return [p / total for p in parts]


@st.composite
def explicit_ranges(draw: st.DrawFn, n: int) -> list[list[float]]:
    cuts = sorted(draw(st.lists(unit, min_size=2 * n, max_size=2 * n)))
    return [[cuts[2 * i], cuts[2 * i + 1]] for i in range(n)]


filters = st.lists(
    st.fixed_dictionaries(
        {"seed": words, "ranges": st.lists(ranges_1, min_size=1, max_size=2)},
        optional={
            "attribute": st.sampled_from(HASH_ATTRIBUTES),
            "hashVersion": st.sampled_from((1, 2)),
        },
    ),
    min_size=1,
    max_size=2,
)
namespaces = st.builds(lambda name, r: [name, *r], words, ranges_1)


@st.composite
def prerequisite_condition(draw: st.DrawFn) -> JSON:
    """A condition on ``{"value": <parent value>}``, whose type is unknown when generating."""
    return {"value": operator_object(draw, "any", [], depth=1)}


@st.composite
def parent_conditions(draw: st.DrawFn, feature_key: str) -> list[dict[str, JSON]]:
    """Prerequisites, mostly on later features (one time in five on any, cycles included)."""
    later = FEATURE_KEYS[FEATURE_KEYS.index(feature_key) + 1 :]
    anywhere = draw(st.integers(0, 4)) == 0
    parents = st.sampled_from((*(FEATURE_KEYS if anywhere else later), "unknown-feature"))
    return draw(
        st.lists(
            st.fixed_dictionaries(
                {"id": parents, "condition": prerequisite_condition()},
                optional={"gate": bools},
            ),
            min_size=1,
            max_size=2,
        )
    )


def _optional(draw: st.DrawFn, rule: dict[str, JSON], key: str, strategy: Any) -> None:
    if draw(bools):
        rule[key] = draw(strategy)


@st.composite
def force_rule(draw: st.DrawFn, attrs: dict[str, JSON], feature_key: str) -> dict[str, JSON]:
    rule: dict[str, JSON] = {"force": draw(json_values)}
    _optional(draw, rule, "id", words)
    _optional(draw, rule, "condition", conditions(attrs, depth=1, min_size=1))
    _optional(draw, rule, "coverage", coverages)
    _optional(draw, rule, "range", ranges_1)
    _optional(draw, rule, "hashVersion", hash_versions)
    _optional(draw, rule, "seed", seeds)
    _optional(draw, rule, "hashAttribute", st.sampled_from(HASH_ATTRIBUTES))
    if draw(st.integers(0, 4)) == 0:
        rule["filters"] = draw(filters)
    if draw(st.integers(0, 3)) == 0:
        rule["parentConditions"] = draw(parent_conditions(feature_key))
    return rule


@st.composite
def experiment_rule(draw: st.DrawFn, attrs: dict[str, JSON], feature_key: str) -> dict[str, JSON]:
    n = draw(st.integers(2, 4))
    rule: dict[str, JSON] = {
        "variations": draw(st.lists(small_json_values, min_size=n, max_size=n))
    }
    _optional(draw, rule, "key", st.sampled_from(("exp-a", "exp-b", "f0")))
    _optional(draw, rule, "id", words)
    _optional(draw, rule, "weights", weights(n))
    _optional(draw, rule, "coverage", st.sampled_from((0, 1, 0.5)) | unit)
    _optional(draw, rule, "hashAttribute", st.sampled_from(HASH_ATTRIBUTES))
    _optional(draw, rule, "hashVersion", hash_versions)
    _optional(draw, rule, "seed", seeds)
    _optional(draw, rule, "name", words)
    if draw(bools):
        metas = []
        for _ in range(n):
            meta: dict[str, JSON] = {"key": draw(st.text("abcdef", min_size=1, max_size=3))}
            if draw(st.integers(0, 5)) == 0:
                meta["passthrough"] = True
            metas.append(meta)
        rule["meta"] = metas
    if draw(st.integers(0, 3)) == 0:
        rule["ranges"] = draw(explicit_ranges(n))
    if draw(st.integers(0, 3)) == 0:
        rule["namespace"] = draw(namespaces)
    if draw(st.integers(0, 3)) == 0:
        rule["filters"] = draw(filters)
    if draw(st.integers(0, 2)) == 0:
        rule["condition"] = draw(conditions(attrs, depth=1, min_size=1))
    if draw(st.integers(0, 3)) == 0:
        rule["parentConditions"] = draw(parent_conditions(feature_key))
    return rule


@st.composite
def payloads(draw: st.DrawFn, attrs: dict[str, JSON]) -> dict[str, JSON]:
    """``{"features": ..., "savedGroups": ...}`` with 1-5 features of 0-4 rules each."""
    count = draw(st.integers(1, len(FEATURE_KEYS)))
    features: dict[str, JSON] = {}
    for key in FEATURE_KEYS[:count]:
        rules = draw(
            st.lists(st.one_of(force_rule(attrs, key), experiment_rule(attrs, key)), max_size=4)
        )
        features[key] = {"defaultValue": draw(st.none() | json_values), "rules": rules}
    return {"features": features, "savedGroups": draw(saved_groups(scalar_values(attrs)))}


def experiment_keys(payload: dict[str, JSON], *, without_condition: bool) -> list[str]:
    """The experiment keys of the payload's rules (optionally only of rules without a condition).

    A key used by any rule with a condition is left out when ``without_condition``: forcing such
    an experiment is one of the oracle's known divergences.
    """
    keys: dict[str, bool] = {}
    for feature_key, feature in payload["features"].items():
        for rule in feature["rules"]:
            if "variations" in rule:
                key = rule.get("key") or feature_key
                keys[key] = keys.get(key, True) and "condition" not in rule
    return sorted(k for k, ok in keys.items() if ok or not without_condition)
