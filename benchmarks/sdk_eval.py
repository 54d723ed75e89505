"""SDK evaluation speed: liftkit vs the `growthbook` package, side by side in one run.

Both evaluate the same 100-feature payload (``benchmarks/payload.py``: defaults, forced values
behind conditions, rollouts, experiments) for distinct users, the way a web app uses each SDK:
a new context per request, then every feature evaluated once.

    python benchmarks/sdk_eval.py [--users 10000]

Prints requests (full-payload evaluations) per second for both, the ratio, and a
single-experiment-flag rate; before timing it checks that both SDKs return the same values.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from growthbook import GrowthBook

import liftkit

try:
    from payload import make_payload, make_users
except ImportError:  # run from the repository root as a module path
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from payload import make_payload, make_users


def liftkit_request(client: liftkit.Client, keys: list[str]) -> Callable[[dict[str, Any]], Any]:
    def handle(attributes: dict[str, Any]) -> list[Any]:
        ctx = client.for_user(attributes)
        return [ctx.get(k) for k in keys]

    return handle


def growthbook_request(
    features: dict[str, Any], keys: list[str]
) -> Callable[[dict[str, Any]], Any]:
    def handle(attributes: dict[str, Any]) -> list[Any]:
        gb = GrowthBook(attributes=attributes, features=features)
        values = [gb.get_feature_value(k, None) for k in keys]
        gb.destroy()
        return values

    return handle


def rate(
    handle: Callable[[dict[str, Any]], Any], users: list[dict[str, Any]], seconds: float
) -> float:
    """Requests per second over at least ``seconds`` (whole passes over distinct users)."""
    done, start = 0, time.perf_counter()
    while True:
        for attributes in users:
            handle(attributes)
        done += len(users)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement")
    args = parser.parse_args()
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)

    payload = make_payload()
    features = payload["features"]
    keys = list(features)
    users = make_users(args.users)
    client = liftkit.Client(payload=payload, streaming=False)

    lk = liftkit_request(client, keys)
    gb = growthbook_request(features, keys)
    mismatches = sum(lk(u) != gb(u) for u in users[:500])
    print(f"agreement check: {500 - mismatches}/500 users identical across {len(keys)} features")
    if mismatches:
        raise SystemExit("the SDKs disagree; timings would be meaningless")

    gb_users = users[: max(200, args.users // 10)]  # the slower SDK needs fewer users per pass
    lk_rate = rate(lk, users, args.seconds)
    gb_rate = rate(gb, gb_users, args.seconds)
    print(f"\nfull payload ({len(keys)} features), new context per request, {args.users} users")
    print(f"  liftkit     {lk_rate:10,.0f} requests/s  ({1e6 / lk_rate:7.1f} µs each)")
    print(f"  growthbook  {gb_rate:10,.0f} requests/s  ({1e6 / gb_rate:7.1f} µs each)")
    print(f"  ratio       {lk_rate / gb_rate:10.1f}x")

    single = ["experiment-0"]
    lk1 = rate(liftkit_request(client, single), users, args.seconds)
    gb1 = rate(growthbook_request(features, single), users, args.seconds)
    print("\none experiment flag, new context per request")
    print(f"  liftkit     {lk1:10,.0f} requests/s")
    print(f"  growthbook  {gb1:10,.0f} requests/s")
    print(f"  ratio       {lk1 / gb1:10.1f}x")
    client.close()


if __name__ == "__main__":
    main()
