"""Planted-effect data for analysis tests: exposures and events with known true effects.

Each simulated user has a latent engagement ``z`` (mean 1) that drives both the pre-exposure
purchases and the post-exposure behaviour, so CUPED has a real covariate to use. Treatment
multiplies the purchase probability by ``1 + lift``; amounts and page views do not depend on the
variation, so purchase rate, revenue per user and revenue per page view all have a true
relative effect of exactly ``lift``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 10
END = START + timedelta(days=DAYS)
COUNTRIES = ("US", "GB", "DE", "FR")
BASE_RATE = 0.2


@dataclass(frozen=True)
class Planted:
    users: int = 4000
    lift: float = 0.0
    #: Real share of units in control (the experiment says 50/50): != 0.5 plants an SRM.
    control_share: float = 0.5
    #: Units also exposed to the other variation.
    both_arms: int = 0
    seed: int = 1


def _ts(values: np.ndarray[Any, Any]) -> pa.Array:
    micros = (values * 1e6).astype("int64")
    return pa.array(micros, type=pa.timestamp("us", tz="UTC"))


def simulate(p: Planted) -> dict[str, pa.Table]:
    """Tables ``exposures``, ``events`` and ``identities`` laid out like liftkit's store."""
    rng = np.random.default_rng(p.seed)
    n = p.users
    start = START.timestamp()
    arm = (rng.random(n) >= p.control_share).astype("int64")
    exposed = start + rng.random(n) * DAYS * 86400
    z = rng.gamma(0.7, 1 / 0.7, n)  # mean 1, variance 1.4: users differ a lot
    country = rng.choice(len(COUNTRIES), n, p=(0.4, 0.3, 0.2, 0.1))
    users = np.array([f"u{i}" for i in range(n)], dtype=object)

    exp_unit = list(users)
    exp_at = list(exposed)
    exp_arm = list(arm)
    exp_country = list(country)
    doubled = rng.choice(n, p.both_arms, replace=False) if p.both_arms else []
    for i in doubled:
        exp_unit.append(users[i])
        exp_at.append(max(start, exposed[i] - 3600))  # inside the phase, as the first one
        exp_arm.append(1 - arm[i])
        exp_country.append(country[i])
    m = len(exp_unit)
    exposures = pa.table(
        {
            "event_id": [f"x{i}" for i in range(m)],
            "timestamp": _ts(np.array(exp_at)),
            "received_at": _ts(np.array(exp_at)),
            "experiment_key": ["planted"] * m,
            "variation_id": pa.array(exp_arm, type=pa.int64()),
            "variation_key": [("control", "treatment")[a] for a in exp_arm],
            "feature_key": ["planted-flag"] * m,
            "hash_attribute": ["id"] * m,
            "hash_value": exp_unit,
            "attributes": [
                json.dumps({"id": u, "country": COUNTRIES[c]})
                for u, c in zip(exp_unit, exp_country, strict=True)
            ],
        }
    )

    rows: dict[str, list[Any]] = {
        k: [] for k in ("timestamp", "name", "value", "user_id", "anonymous_id")
    }

    def add(
        ts: np.ndarray[Any, Any],
        name: str,
        value: np.ndarray[Any, Any] | None,
        idx: np.ndarray[Any, Any],
        anonymous: bool = False,
    ) -> None:
        rows["timestamp"].extend(ts)
        rows["name"].extend([name] * len(idx))
        rows["value"].extend([None] * len(idx) if value is None else list(value))
        rows["user_id"].extend([None] * len(idx) if anonymous else list(users[idx]))
        rows["anonymous_id"].extend([f"a{i}" for i in idx] if anonymous else [None] * len(idx))

    # Pre-exposure purchases (the CUPED covariate), up to 7 days before exposure.
    pre = np.repeat(np.arange(n), rng.poisson(1.5 * z))
    before = exposed[pre] - rng.random(pre.size) * 7 * 86400
    add(before, "purchase", rng.lognormal(3.0, 0.6, pre.size), pre)
    # Post-exposure purchases; the treatment multiplies the probability by 1 + lift.
    rate = np.minimum(BASE_RATE * z * np.where(arm == 1, 1 + p.lift, 1.0), 1.0)
    post = np.flatnonzero(rng.random(n) < rate)
    bought = exposed[post] + rng.random(post.size) * 2 * 86400
    keep = bought < END.timestamp()
    post, bought = post[keep], bought[keep]
    add(bought, "purchase", rng.lognormal(3.0, 0.6, post.size), post)
    # Page views, logged with the anonymous id only (an identity table maps it to the user).
    views = rng.poisson(3 * z)
    viewers = np.repeat(np.arange(n), views)
    seen = exposed[viewers] + rng.random(viewers.size) * 3 * 86400
    keep = seen < END.timestamp()
    add(seen[keep], "page_view", None, viewers[keep], anonymous=True)

    k = len(rows["name"])
    ts = np.array(rows["timestamp"], dtype="float64")
    events = pa.table(
        {
            "event_id": [f"e{i}" for i in range(k)],
            "timestamp": _ts(ts),
            "received_at": _ts(ts),
            "name": rows["name"],
            "value": pa.array(rows["value"], type=pa.float64()),
            "user_id": pa.array(rows["user_id"], type=pa.string()),
            "anonymous_id": pa.array(rows["anonymous_id"], type=pa.string()),
            "properties": ["{}"] * k,
        }
    )
    identities = pa.table({"user_id": list(users), "anonymous_id": [f"a{i}" for i in range(n)]})
    return {"exposures": exposures, "events": events, "identities": identities}


ACTOR = "user:test"


def registry_objects(
    source_type: str = "duckdb", **analysis: Any
) -> list[tuple[str, dict[str, Any]]]:
    """Fact tables, metrics and the experiment ``planted`` over the simulated tables."""
    return [
        ("data-sources", {
            "key": "warehouse", "type": source_type,
            "identifier_joins": [{"sql": "SELECT user_id, anonymous_id FROM identities",
                                  "identifiers": ["user_id", "anonymous_id"]}],
        }),
        ("fact-tables", {
            "key": "orders", "datasource": "warehouse",
            "sql": "SELECT user_id, timestamp, value AS amount FROM events WHERE name = 'purchase'",
            "columns": [{"name": "amount"}],
        }),
        ("fact-tables", {
            "key": "views", "datasource": "warehouse",
            "sql": "SELECT anonymous_id, timestamp FROM events WHERE name = 'page_view'",
            "identifier_columns": ["anonymous_id"],
        }),
        ("metrics", {"key": "purchase", "numerator": {"fact_table": "orders"}}),
        ("metrics", {"key": "revenue", "type": "mean",
                     "numerator": {"fact_table": "orders", "column": "amount"}}),
        ("metrics", {"key": "revenue_per_view", "type": "ratio",
                     "numerator": {"fact_table": "orders", "column": "amount"},
                     "denominator": {"fact_table": "views"}}),
        ("metrics", {"key": "views", "type": "mean", "numerator": {"fact_table": "views"}}),
        ("experiments", {
            "key": "planted", "status": "running",
            "phases": [{"started_at": START.isoformat(), "ended_at": END.isoformat()}],
            "metrics": {"primary": ["purchase"], "secondary": ["revenue", "revenue_per_view"],
                        "guardrails": ["views"]},
            "analysis": {"datasource": "warehouse", "dimensions": ["country"], **analysis},
        }),
    ]  # fmt: skip
