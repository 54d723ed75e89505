"""The demo organisation's standing objects, its people, and the clock its story runs on.

Everything here exists from the story's first day (four months ago): the projects, attributes,
saved groups, metrics, and the long-lived flags. Experiments, playbooks and briefs arrive later in
the story (``_story``), at the moment a team would have created them, so revision dates, the audit
log and flag hygiene look like four months of real use.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from liftkit.platform import Platform
from liftkit.registry.accounts import Role

ADMIN_EMAIL = "admin@example.com"
ACTOR = f"user:{ADMIN_EMAIL}"
#: How long ago the story starts: old enough for flags to go stale (hygiene looks at 30 days).
HISTORY_DAYS = 120
#: The organisation's people: short name → (email, display name, role everywhere).
PEOPLE: dict[str, tuple[str, str, Role]] = {
    "maya": ("maya@example.com", "Maya Okafor", "editor"),
    "sam": ("sam@example.com", "Sam Lindqvist", "editor"),
    "chen": ("chen@example.com", "Chen Wei", "analyst"),
    "dana": ("dana@example.com", "Dana Ruiz", "analyst"),
    "priya": ("priya@example.com", "Priya Nair", "viewer"),
}


def actor(person: str) -> str:
    """The audit-log actor of one of the demo's people (``user:<email>``)."""
    return f"user:{PEOPLE[person][0]}"


def email(person: str) -> str:
    return PEOPLE[person][0]


@dataclass
class DemoClock:
    """A clock the story moves forward: ``at(days_ago)`` sets it relative to the story's end."""

    end: datetime
    now: datetime

    @classmethod
    def ending(cls, end: datetime) -> DemoClock:
        return cls(end=end, now=end - timedelta(days=HISTORY_DAYS))

    def __call__(self) -> datetime:
        return self.now

    def at(self, days_ago: float) -> datetime:
        moment = self.end - timedelta(days=days_ago)
        if moment < self.now:
            raise ValueError(f"the demo's story cannot go back in time ({days_ago} days ago)")
        self.now = moment
        return moment

    def advance(self, days: float) -> datetime:
        self.now += timedelta(days=days)
        return self.now


@dataclass(frozen=True)
class DemoCredentials:
    admin_email: str
    admin_password: str
    admin_key: str
    sdk_key: str
    ingest_key: str


def everywhere(enabled: bool, *rules: dict[str, Any]) -> dict[str, Any]:
    """The same setting in every environment."""
    setting = {"enabled": enabled, "rules": list(rules)}
    return {env: setting for env in ("development", "staging", "production")}


def objects(platform: Platform) -> list[tuple[str, dict[str, Any]]]:
    """The standing organisation, in dependency order, as (collection, body) pairs."""
    del platform  # kept for callers that pass it; the bodies need nothing from it
    return [
        ("projects", {"key": "checkout", "name": "Checkout",
                      "description": "Cart, delivery and payment: the checkout team's area."}),
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
        ("saved-groups", {
            "key": "staff", "name": "Support staff", "type": "list",
            "attribute": "id", "values": ["dana", "support-1", "support-2"],
        }),
        ("fact-tables", {
            "key": "orders", "name": "Orders",
            "description": "Purchases and refunds from the web shop's track events.",
            "sql": "SELECT user_id, timestamp, name, value AS amount FROM events "
                   "WHERE name IN ('purchase', 'refund')",
            "columns": [{"name": "amount", "datatype": "number"}],
        }),
        ("fact-tables", {
            "key": "errors", "name": "Checkout errors",
            "description": "Client-side errors reported on the checkout pages.",
            "sql": "SELECT user_id, timestamp FROM events WHERE name = 'checkout_error'",
        }),
        ("metrics", {"key": "purchase", "name": "Purchase", "type": "proportion",
                     "description": "Share of users who bought anything.",
                     "numerator": {"fact_table": "orders", "filters": ["name = 'purchase'"]}}),
        ("metrics", {"key": "revenue", "name": "Revenue per user", "type": "mean",
                     "numerator": {"fact_table": "orders", "column": "amount",
                                   "filters": ["name = 'purchase'"]},
                     "capping": {"type": "percentile", "value": 0.99}}),
        ("metrics", {"key": "refunds", "name": "Refunds", "type": "proportion", "inverse": True,
                     "numerator": {"fact_table": "orders", "filters": ["name = 'refund'"]}}),
        ("metrics", {"key": "error-rate", "name": "Checkout error rate", "type": "proportion",
                     "inverse": True, "owner": "ops", "tags": ["reliability"],
                     "description": "Share of users who hit a checkout error.",
                     "numerator": {"fact_table": "errors"}}),
        ("features", {
            "key": "checkout-kill-switch", "kind": "kill-switch", "owner": "ops",
            "tags": ["checkout", "incident"],
            "description": "Turn on to take checkout offline instantly.",
            "environments": everywhere(True),
        }),
        ("features", {
            "key": "recommendations-kill-switch", "kind": "kill-switch", "owner": "chen",
            "tags": ["recommendations", "incident"],
            "description": "Hides product recommendations when the recommender misbehaves.",
            "environments": everywhere(True),
        }),
        ("features", {
            "key": "dark-mode", "kind": "release", "owner": "sam", "tags": ["ui"],
            "description": "Dark colour scheme, out to paying customers first.",
            "environments": everywhere(True, {"type": "force", "value": True,
                                              "saved_groups": [{"ids": ["paying"]}]}),
        }),
        ("features", {
            "key": "new-search", "kind": "release", "owner": "chen", "tags": ["search"],
            "description": "The rewritten search backend, rolled out gradually.",
            "environments": everywhere(True, {"type": "rollout", "value": True, "coverage": 0.5}),
        }),
        ("features", {
            "key": "new-navigation", "kind": "release", "owner": "chen", "tags": ["ui"],
            "description": "The redesigned top navigation; everyone has had it since launch.",
            "environments": everywhere(True, {"type": "force", "value": True}),
        }),
        ("features", {
            "key": "winter-sale-banner", "kind": "release", "owner": "maya",
            "tags": ["marketing"], "description": "The banner of last winter's sale.",
            "environments": everywhere(False, {"type": "force", "value": True}),
        }),
        ("features", {
            "key": "min-app-version-banner", "kind": "operational", "owner": "ops",
            "tags": ["mobile"],
            "description": "Asks users of old app versions to update.",
            "environments": everywhere(True, {
                "type": "force", "value": True, "condition": {"appVersion": {"$vlt": "3.0.0"}}
            }),
        }),
        ("features", {
            "key": "api-rate-limit", "kind": "operational", "owner": "ops",
            "value_type": "number", "default_value": 600, "tags": ["api", "incident"],
            "description": "Requests per minute per API client; lowered during incidents.",
            "environments": everywhere(True, {"type": "force", "value": 300,
                                              "condition": {"plan": "free"}}),
        }),
        ("features", {
            "key": "beta-dashboard", "kind": "permission", "owner": "maya",
            "description": "The new analytics dashboard, for beta testers only.",
            "environments": everywhere(True, {"type": "force", "value": True,
                                              "saved_groups": [{"ids": ["beta-testers"]}]}),
        }),
        ("features", {
            "key": "admin-impersonation", "kind": "permission", "owner": "ops",
            "tags": ["support"],
            "description": "Lets support staff see the shop as a customer sees it.",
            "environments": everywhere(True, {"type": "force", "value": True,
                                              "saved_groups": [{"ids": ["staff"]}]}),
        }),
    ]  # fmt: skip


def seed(platform: Platform) -> DemoCredentials:
    """Fill an empty registry with the standing organisation and return how to get in."""
    admin_key = (
        platform.bootstrap()
        or platform.accounts.create_key(
            "secret", created_by=ACTOR, role="admin", name="demo admin"
        )[0]
    )
    password = secrets.token_urlsafe(9)
    platform.accounts.create_user(ADMIN_EMAIL, password, name="Demo admin", roles={"*": "admin"})
    for address, name, role in PEOPLE.values():
        # Nobody logs in as them: they own, write, review and decide things in the story.
        platform.accounts.create_user(
            address, secrets.token_urlsafe(12), name=name, roles={"*": role}
        )
    for name, body in objects(platform):
        platform.registry.save(name, body, ACTOR, message="demo data")
    sdk_key, _ = platform.accounts.create_key(
        "sdk", created_by=ACTOR, name="web (production)", project=None, environment="production"
    )
    ingest_key, _ = platform.accounts.create_key("ingest", created_by=ACTOR, name="demo events")
    return DemoCredentials(ADMIN_EMAIL, password, admin_key, sdk_key, ingest_key)
