"""Run GrowthBook SDK specification vectors against liftkit's engine.

Usage: ``python -m liftkit.sdk.conformance CASES.json [-v] [--section NAME]``

Prints one line per section and ends with ``N passed, N failed``; the exit status is 0 only when
nothing failed. The case format is described in ``docs/sdk.md`` (it is GrowthBook's
``cases.json``: the specification's own test vectors).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from liftkit.sdk._conditions import eval_condition
from liftkit.sdk._crypto import decrypt
from liftkit.sdk._engine import CompiledPayload
from liftkit.sdk._experiments import Experiment, run
from liftkit.sdk._hashing import (
    bucket_ranges,
    choose_variation,
    equal_weights,
    hash_value,
    in_namespace,
    query_string_override,
)
from liftkit.sdk._types import UserContext
from liftkit.sdk.errors import LiftkitError
from liftkit.sdk.sticky import InMemoryStickyBucketService, load_docs

Case = list[Any]


def same(a: Any, b: Any, places: int | None = None) -> bool:
    """Deep equality for JSON values; floats to ``places`` decimals or within 1e-9."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if places is not None:
            return round(a, places) == round(b, places)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, places) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], places) for k in a)
    return bool(a == b)


def _payload(ctx: Mapping[str, Any]) -> CompiledPayload:
    return CompiledPayload.from_dict(
        {
            "features": ctx.get("features") or {},
            "savedGroups": ctx.get("savedGroups") or {},
            "experiments": ctx.get("experiments") or [],
            "contextualBandits": ctx.get("contextualBandits") or {},
        }
    )


def _user(ctx: Mapping[str, Any], **extra: Any) -> UserContext:
    return UserContext(
        attributes=ctx.get("attributes") or {},
        url=ctx.get("url") or "",
        forced_variations=ctx.get("forcedVariations") or {},
        forced_features=ctx.get("forcedFeatures") or {},
        qa_mode=bool(ctx.get("qaMode")),
        enabled=ctx.get("enabled", True) is not False,
        **extra,
    )


def _eval_condition(c: Case) -> tuple[Any, Any]:
    groups = c[4] if len(c) > 4 else None
    return eval_condition(c[2], c[1], groups), c[3]


def _hash(c: Case) -> tuple[Any, Any]:
    return hash_value(c[0], c[1], c[2]), c[3]


def _bucket_range(c: Case) -> tuple[Any, Any]:
    n, coverage, weights = c[1]
    return [list(r) for r in bucket_ranges(n, coverage, weights)], c[2]


def _feature(c: Case) -> tuple[Any, Any]:
    payload = _payload(c[1])
    return payload.evaluate(c[2], _user(c[1])).to_dict(), c[3]


def _run(c: Case) -> tuple[Any, Any]:
    ctx, raw = c[1], c[2]
    payload = _payload(ctx)
    user = _user(ctx)

    def parent(pid: str) -> tuple[Any, bool]:
        r = payload.evaluate(pid, user)
        return r.value, r.source == "cyclicPrerequisite"

    result = run(Experiment(raw, payload.saved_groups), user, None, parent)
    return [result.value, result.in_experiment, result.hash_used], [c[3], c[4], c[5]]


def _sticky(c: Case) -> tuple[Any, Any]:
    ctx, initial, key = c[1], c[2], c[3]
    service = InMemoryStickyBucketService()
    for doc in initial:
        service.save_assignments(doc)
    payload = _payload(ctx)
    attributes = ctx.get("attributes") or {}
    wanted = {n: str(attributes[n]) for n in payload.sticky_attributes if attributes.get(n)}
    user = _user(ctx, sticky_docs=load_docs(service, wanted))
    user.on_sticky_change = service.save_assignments
    result = payload.evaluate(key, user).experiment_result
    got = result.to_dict() if result is not None else None
    return [got, dict(user.sticky_docs or {})], [c[4], c[5]]


def _decrypt(c: Case) -> tuple[Any, Any]:
    try:
        return decrypt(c[1], c[2]), c[3]
    except LiftkitError:
        return None, c[3]


def _redirect(c: Case) -> tuple[Any, Any]:
    ctx = c[1]
    r = _payload(ctx).redirect(_user(ctx))
    got = []
    if r is not None:
        found = {"inExperiment": r.result.in_experiment, "urlRedirect": r.url}
        got.append({**found, "urlWithParams": r.url_with_params})
    return got, c[2]


SECTIONS: dict[str, tuple[Callable[[Case], tuple[Any, Any]], int | None]] = {
    "evalCondition": (_eval_condition, None),
    "hash": (_hash, None),
    "getBucketRange": (_bucket_range, 6),
    "feature": (_feature, None),
    "run": (_run, None),
    "chooseVariation": (lambda c: (choose_variation(c[1], c[2]), c[3]), None),
    "getQueryStringOverride": (lambda c: (query_string_override(c[1], c[2], c[3]), c[4]), None),
    "inNamespace": (lambda c: (in_namespace(c[1], c[2]), c[3]), None),
    "getEqualWeights": (lambda c: (equal_weights(c[0]), c[1]), 6),
    "decrypt": (_decrypt, None),
    "stickyBucket": (_sticky, None),
    "urlRedirect": (_redirect, None),
    "contextualBandit": (_feature, None),
}


def run_cases(
    cases: Mapping[str, Any], *, only: str | None = None
) -> dict[str, list[tuple[str, Any, Any]]]:
    """Every section's failures, as (case name, got, expected); sections absent are skipped."""
    failures: dict[str, list[tuple[str, Any, Any]]] = {}
    for section, (check, places) in SECTIONS.items():
        if section not in cases or (only and section != only):
            continue
        failures[section] = []
        for case in cases[section]:
            name = (
                case[0]
                if isinstance(case[0], str) and section not in ("hash", "getEqualWeights")
                else json.dumps(case[:2])
            )
            try:
                got, expected = check(case)
            except Exception as exc:  # a crash is a failure of that case, not of the run
                got, expected = f"raised {exc!r}", None
            if not same(got, expected, places):
                failures[section].append((name, got, expected))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m liftkit.sdk.conformance", description=__doc__.split("\n")[0]
    )
    parser.add_argument("cases", help="a GrowthBook SDK cases.json file")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each failure")
    parser.add_argument("--section", help="run one section only")
    args = parser.parse_args(argv)
    try:
        with open(args.cases, encoding="utf-8") as f:
            cases = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.cases}: {exc}", file=sys.stderr)
        return 2
    failures = run_cases(cases, only=args.section)
    passed = failed = 0
    for section, bad in failures.items():
        total = len(cases[section])
        passed += total - len(bad)
        failed += len(bad)
        print(f"{section}: {total - len(bad)} passed, {len(bad)} failed")
        if args.verbose:
            for name, got, expected in bad:
                print(f"  FAIL {name}")
                print(f"    got:      {json.dumps(got, default=str)}")
                print(f"    expected: {json.dumps(expected)}")
    unknown = sorted(set(cases) - set(SECTIONS) - {"specVersion"})
    if unknown:
        print(f"sections not run (unknown to this runner): {', '.join(unknown)}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
