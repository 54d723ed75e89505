"""Demo data: a small but realistic organisation, created through the registry's own operations.

``liftkit demo`` seeds a fresh data directory with this, simulates an A/B test through the SDK,
analyses it, and serves the platform. Everything is made the way a user would make it (saved and
published revisions with an actor), so the audit log and drafts look like real use.
"""

from __future__ import annotations

import random
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import liftkit
from liftkit.analysis import Snapshot, run
from liftkit.events import ExposureEvent, LoadResult, TrackEvent, open_store, to_lines
from liftkit.platform import Platform
from liftkit.registry.payload import compile_payload
from liftkit.sdk import EvalResult
from liftkit.settings import Settings

ACTOR = "user:admin@example.com"
ADMIN_EMAIL = "admin@example.com"


@dataclass(frozen=True)
class DemoCredentials:
    admin_email: str
    admin_password: str
    admin_key: str
    sdk_key: str
    ingest_key: str


def _everywhere(enabled: bool, *rules: dict[str, Any]) -> dict[str, Any]:
    setting = {"enabled": enabled, "rules": list(rules)}
    return {env: setting for env in ("development", "staging", "production")}


def objects(platform: Platform) -> list[tuple[str, dict[str, Any]]]:
    """The demo organisation, in dependency order, as (collection, body) pairs."""
    now = platform.clock()
    return [
        ("projects", {"key": "checkout", "name": "Checkout"}),
        ("attributes", {"key": "id", "datatype": "string", "hash_attribute": True}),
        ("attributes", {"key": "country", "datatype": "string"}),
        ("attributes", {"key": "plan", "datatype": "enum", "enum": ["free", "pro", "team"]}),
        ("attributes", {"key": "appVersion", "datatype": "string"}),
        ("attributes", {"key": "email", "datatype": "secureString"}),
        ("namespaces", {"key": "pricing", "name": "Pricing page tests"}),
        ("saved-groups", {
            "key": "beta-testers", "name": "Beta testers", "type": "list",
            "attribute": "id", "values": ["alice", "chen"],
        }),
        ("saved-groups", {
            "key": "paying", "name": "Paying customers", "type": "condition",
            "condition": {"plan": {"$in": ["pro", "team"]}},
        }),
        ("experiments", {
            "key": "pricing-2026", "name": "Annual plan first", "owner": "maya",
            "hypothesis": "We think showing the annual plan first for new visitors will raise "
            "paid conversion because the monthly price looks lower.",
            "variations": [{"key": "control", "payload": "control"},
                           {"key": "annual-first", "payload": "annual-first"}],
            "namespaces": [{"namespace": "pricing", "start": 0.0, "end": 0.5}],
            "status": "running", "tags": ["pricing"],
            "phases": [{"name": "main", "started_at": (now - timedelta(days=9)).isoformat()}],
            "metrics": {"primary": ["purchase"], "secondary": ["revenue"],
                        "guardrails": ["refunds"]},
            "analysis": {"dimensions": ["country"]},
        }),
        ("experiments", {
            "key": "one-click-checkout", "name": "One-click checkout", "owner": "sam",
            "project": "checkout", "status": "stopped", "result": "won",
            "released_variation": "treatment",
            "variations": [{"key": "control", "payload": False},
                           {"key": "treatment", "payload": True}],
        }),
        ("features", {
            "key": "checkout-kill-switch", "kind": "kill-switch", "owner": "ops",
            "description": "Turn on to take checkout offline instantly.",
            "environments": _everywhere(True),
        }),
        ("features", {
            "key": "dark-mode", "kind": "release", "owner": "sam", "tags": ["ui"],
            "environments": _everywhere(True, {"type": "force", "value": True,
                                               "saved_groups": [{"ids": ["paying"]}]}),
        }),
        ("features", {
            "key": "new-search", "kind": "release", "owner": "chen", "tags": ["search"],
            "environments": _everywhere(True, {"type": "rollout", "value": True, "coverage": 0.5}),
        }),
        ("features", {
            "key": "min-app-version-banner", "kind": "operational", "owner": "ops",
            "environments": _everywhere(True, {
                "type": "force", "value": True, "condition": {"appVersion": {"$vlt": "3.0.0"}}
            }),
        }),
        ("features", {
            "key": "beta-dashboard", "kind": "permission", "owner": "maya",
            "environments": _everywhere(True, {"type": "force", "value": True,
                                               "saved_groups": [{"ids": ["beta-testers"]}]}),
        }),
        ("features", {
            "key": "pricing-page", "kind": "experiment", "value_type": "string",
            "default_value": "control", "owner": "maya", "tags": ["pricing"],
            "environments": _everywhere(True, {"type": "experiment", "experiment": "pricing-2026"}),
        }),
        ("features", {
            "key": "one-click", "kind": "experiment", "project": "checkout", "owner": "sam",
            "environments": _everywhere(True, {"type": "experiment",
                                               "experiment": "one-click-checkout"}),
        }),
        ("fact-tables", {
            "key": "orders", "name": "Orders",
            "sql": "SELECT user_id, timestamp, name, value AS amount FROM events "
                   "WHERE name IN ('purchase', 'refund')",
            "columns": [{"name": "amount", "datatype": "number"}],
        }),
        ("metrics", {"key": "purchase", "name": "Purchase", "type": "proportion",
                     "numerator": {"fact_table": "orders", "filters": ["name = 'purchase'"]}}),
        ("metrics", {"key": "revenue", "name": "Revenue per user", "type": "mean",
                     "numerator": {"fact_table": "orders", "column": "amount",
                                   "filters": ["name = 'purchase'"]},
                     "capping": {"type": "percentile", "value": 0.99}}),
        ("metrics", {"key": "refunds", "name": "Refunds", "type": "proportion", "inverse": True,
                     "numerator": {"fact_table": "orders", "filters": ["name = 'refund'"]}}),
    ]  # fmt: skip


def seed(platform: Platform) -> DemoCredentials:
    """Fill an empty registry with the demo organisation and return how to get in."""
    admin_key = (
        platform.bootstrap()
        or platform.accounts.create_key(
            "secret", created_by=ACTOR, role="admin", name="demo admin"
        )[0]
    )
    password = secrets.token_urlsafe(9)
    platform.accounts.create_user(ADMIN_EMAIL, password, name="Demo admin", roles={"*": "admin"})
    for name, body in objects(platform):
        platform.registry.save(name, body, ACTOR, message="demo data")
    sdk_key, _ = platform.accounts.create_key(
        "sdk", created_by=ACTOR, name="web (production)", project=None, environment="production"
    )
    ingest_key, _ = platform.accounts.create_key("ingest", created_by=ACTOR, name="demo events")
    return DemoCredentials(ADMIN_EMAIL, password, admin_key, sdk_key, ingest_key)


class SimulatedTraffic:
    """Exposures and purchases of simulated users, spread over the running phase's nine days
    and stored through the same validation and load path as ``liftkit events import``."""

    def __init__(self, now: datetime, rng: random.Random) -> None:
        self.now = now
        self.rng = rng
        self.events: list[ExposureEvent | TrackEvent] = []

    def add(
        self,
        experiment: str,
        result: EvalResult,
        user: str,
        purchase: float | None,
        country: str = "US",
    ) -> None:
        seen = self.now - timedelta(days=9) * self.rng.random()
        self.events.append(
            ExposureEvent(
                type="exposure",
                event_id=f"{experiment}-{user}",
                timestamp=seen,
                experiment_key=experiment,
                variation_id=result.variation_id or 0,
                variation_key=str(result.value),
                feature_key=result.key,
                hash_value=user,
                attributes={"id": user, "country": country},
            )
        )
        if purchase is not None:
            bought = min(self.now, seen + timedelta(hours=self.rng.random() * 24))
            self.events.append(
                TrackEvent(
                    type="track",
                    event_id=f"purchase-{user}",
                    timestamp=bought,
                    name="purchase",
                    value=purchase,
                    user_id=user,
                )
            )
            if self.rng.random() < 0.05:
                self.events.append(
                    TrackEvent(
                        type="track",
                        event_id=f"refund-{user}",
                        timestamp=min(self.now, bought + timedelta(days=self.rng.random())),
                        name="refund",
                        value=-purchase,
                        user_id=user,
                    )
                )

    def store(self, settings: Settings) -> LoadResult:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "demo-events.ndjson"
            path.write_bytes(to_lines(self.events, self.now))
            return open_store(settings).load(path)


@dataclass(frozen=True)
class Demo:
    """What ``build`` made: how to get in, and what the simulation stored and analysed."""

    credentials: DemoCredentials
    exposures: int
    events: int
    snapshot: Snapshot


def build(settings: Settings, *, users: int = 20_000) -> Demo:
    """Seed an empty data directory with the whole demo: objects, traffic, analyses."""
    platform = Platform(settings)
    try:
        credentials = seed(platform)
        compiled = compile_payload(
            platform.registry.snapshot(), environment="production", now=platform.clock()
        )
        client = liftkit.Client(payload=compiled.payload, streaming=False)
        try:
            stored = simulate_pricing_test(platform, client, users)
        finally:
            client.close()
        snapshot = run(platform, "pricing-2026", actor="demo")
        return Demo(credentials, stored.exposures, stored.events, snapshot)
    finally:
        platform.close()


def simulate_pricing_test(platform: Platform, client: liftkit.Client, users: int) -> LoadResult:
    """Simulated traffic through the real SDK, stored as events."""
    rng = random.Random(2026)
    rate = {"control": 0.10, "annual-first": 0.115}
    countries = ("US", "GB", "DE", "FR", "IN", "BR", "JP")
    traffic = SimulatedTraffic(platform.clock(), rng)
    visitor = exposed = 0
    while exposed < users:
        user = f"user-{visitor}"
        country = rng.choices(countries, weights=(40, 15, 12, 10, 10, 8, 5))[0]
        evaluation = client.for_user({"id": user, "country": country}).evaluate("pricing-page")
        visitor += 1
        if not evaluation.in_experiment:
            continue  # outside the experiment's half of the "pricing" namespace
        exposed += 1
        converted = rng.random() < rate[str(evaluation.value)]
        amount = round(rng.lognormvariate(3.6, 0.5), 2) if converted else None
        traffic.add("pricing-2026", evaluation, user, purchase=amount, country=country)
    return traffic.store(platform.settings)
