"""A realistic 100-feature SDK payload, shared by the SDK benchmarks.

The mix follows what production payloads look like: many plain defaults, forced values behind
targeting conditions, percentage rollouts and A/B experiments (some targeted), hash version 2.
Deterministic, so every run and every peer measures the same thing.
"""

from __future__ import annotations

import random
from typing import Any

COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "AU", "ES"]
PLANS = ["free", "basic", "pro", "enterprise"]


def make_payload(seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    features: dict[str, Any] = {}
    for i in range(30):  # defaults only
        features[f"default-{i}"] = {"defaultValue": rng.choice([True, False, "blue", 3, {"x": i}])}
    for i in range(30):  # forced values with conditions
        condition = rng.choice(
            [
                {"country": {"$in": rng.sample(COUNTRIES, 3)}},
                {"plan": rng.choice(PLANS)},
                {"$and": [{"plan": {"$ne": "free"}}, {"age": {"$gte": rng.randint(18, 40)}}]},
                {"appVersion": {"$vgte": f"2.{rng.randint(0, 9)}.0"}},
                {"email": {"$regex": "@example\\.com$"}},
            ]
        )
        features[f"targeted-{i}"] = {
            "defaultValue": False,
            "rules": [{"id": f"fr_{i}", "condition": condition, "force": True}],
        }
    for i in range(20):  # percentage rollouts
        features[f"rollout-{i}"] = {
            "defaultValue": False,
            "rules": [
                {
                    "id": f"ro_{i}",
                    "force": True,
                    # Off the 1/10000 hash grid: at n == coverage the JS reference includes the
                    # user (n <= coverage) while growthbook-python 4.x excludes them (n <
                    # coverage); the benchmark's agreement check should not trip on that tie.
                    "coverage": round(rng.uniform(0.05, 0.95), 2) + 0.00005,
                    "hashAttribute": "id",
                    "hashVersion": 2,
                    "seed": f"rollout-{i}",
                }
            ],
        }
    for i in range(20):  # experiments, half of them targeted
        n = rng.choice([2, 2, 3])
        rule: dict[str, Any] = {
            "id": f"ex_{i}",
            "key": f"exp-{i}",
            "variations": list(range(n)),
            "weights": [1 / n] * n,
            "coverage": 1,
            "hashAttribute": "id",
            "hashVersion": 2,
            "seed": f"exp-{i}",
            "meta": [{"key": str(v)} for v in range(n)],
        }
        if i % 2:
            rule["condition"] = {"country": {"$in": rng.sample(COUNTRIES, 5)}}
        features[f"experiment-{i}"] = {"defaultValue": 0, "rules": [rule]}
    return {"features": features, "savedGroups": {}}


def make_users(count: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"user-{i}",
            "country": rng.choice(COUNTRIES),
            "plan": rng.choice(PLANS),
            "age": rng.randint(16, 70),
            "appVersion": f"{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
            "email": f"u{i}@{rng.choice(['example.com', 'mail.test'])}",
        }
        for i in range(count)
    ]
