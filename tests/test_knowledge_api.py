"""The knowledge base end to end: ``/api/v1/kb`` in-process and ``liftkit kb …`` on the CLI.

Briefs are written the way people write them, through the registry routes (``POST`` and ``PUT
/api/v1/briefs``); everything else is read back through the knowledge-base routes: search and
its filters, the brief view and checklist, near-duplicates, the lifecycle with its roles, the
ranked backlog, win rates, effects and impact, the calendar and its iCalendar feed, the digest
and reminders. Results come from real snapshots stored in the platform database.

The app runs on a platform whose clock the tests set (``World.clock``), on SQLite and
PostgreSQL (the conftest ``database_url`` fixture). The CLI tests run real commands against a
registry filled beforehand, with the real clock, since the commands open their own platform.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import delete
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from conftest import POSTGRES_ADMIN_URL, _admin_connection
from liftkit.analysis import store as snapshot_store
from liftkit.analysis.snapshot import Decision, Health, MetricResult, Snapshot, VariationResult
from liftkit.app import create_app
from liftkit.cli._app import app as cli_app
from liftkit.platform import Platform
from liftkit.registry.accounts import Role
from liftkit.registry.tables import snapshots
from liftkit.settings import Settings

API = "/api/v1"
KB = f"{API}/kb"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ACTOR = "user:setup@example.com"
Z95 = 1.959963984540054


# -- the platform, the app and what goes into them ---------------------------------------------


@dataclass
class Clock:
    """The platform's clock; tests move it (``world.clock.now = …``)."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


def hypothesis(change: str, audience: str, result: str, reason: str) -> dict[str, str]:
    return {"change": change, "audience": audience, "result": result, "reason": reason}


#: Six briefs with distinct words, teams, tags, metrics and dates (two have no date).
CORPUS: list[dict[str, Any]] = [
    {
        "key": "free-shipping",
        "name": "Free shipping threshold",
        "description": "Lower the free shipping threshold from 50 to 30 euros.",
        "hypothesis": hypothesis(
            "lower the free shipping threshold",
            "shoppers with small baskets",
            "place more orders",
            "delivery costs put them off",
        ),
        "team": "growth",
        "surface": "checkout",
        "funnel_stage": "purchase",
        "tags": ["pricing", "checkout"],
        "metrics": {"primary": ["orders"]},
        "owners": ["ann@example.com"],
        "stage": "planned",
        "planned_start": "2026-12-01",
        "planned_end": "2026-12-21",
    },
    {
        "key": "express-badge",
        "name": "Express badge",
        "description": "Tell shoppers we ship within a day.",
        "team": "growth",
        "surface": "product-page",
        "tags": ["delivery"],
        "metrics": {"primary": ["add-to-cart"]},
        "owners": ["bo@example.com"],
    },
    {
        "key": "annual-plan",
        "name": "Annual plan discount",
        "description": "Offer two months free on the annual plan.",
        "team": "monetisation",
        "surface": "pricing-page",
        "tags": ["pricing"],
        "metrics": {"primary": ["revenue"]},
        "stage": "planned",
        "planned_start": "2027-01-11",
    },
    {
        "key": "onboarding-quiz",
        "name": "Onboarding quiz",
        "description": "Ask three questions in a quiz during onboarding.",
        "team": "activation",
        "surface": "onboarding",
        "tags": ["onboarding"],
        "metrics": {"primary": ["activation"]},
        "planned_start": "2026-11-02",
    },
    {
        "key": "search-ranking",
        "name": "Personalised search ranking",
        "description": "Rank search results by past purchases.",
        "team": "discovery",
        "surface": "search",
        "tags": ["search"],
        "metrics": {"primary": ["orders"]},
    },
    {
        "key": "trust-badges",
        "name": "Trust badges",
        "description": "Show payment security badges next to the pay button.",
        "team": "growth",
        "surface": "checkout",
        "tags": ["checkout", "trust"],
        "metrics": {"primary": ["conversion"], "guardrails": ["orders"]},
        "planned_start": "2026-12-05",
    },
]


def launchable(key: str, **fields: Any) -> dict[str, Any]:
    """A brief whose checklist passes once ``World.prepare_launches`` ran (no dates: a warning)."""
    body: dict[str, Any] = {
        "key": key,
        "name": key.replace("-", " ").capitalize(),
        "hypothesis": hypothesis(
            f"try the {key} idea",
            "returning customers",
            "order more",
            f"{key} helps them",
        ),
        "metrics": {"primary": ["orders"], "guardrails": ["errors"]},
        "sizing": {"baseline": 0.1, "reach_per_month": 900_000},
        "owners": ["ann@example.com"],
        "stage": "planned",
    }
    return {**body, **fields}


def snapshot(
    experiment: str,
    effect: float,
    se: float = 0.01,
    *,
    metric: str = "orders",
    created_at: datetime = NOW,
    significance: Any = None,
) -> Snapshot:
    """A fixed-horizon frequentist result: ``effect`` ± 1.96·``se`` on ``metric``."""
    control = VariationResult(variation="control", units=5000, value=0.1)
    treatment = VariationResult(
        variation="treatment",
        units=5000,
        value=0.1 * (1 + effect),
        effect=effect,
        ci_low=effect - Z95 * se,
        ci_high=effect + Z95 * se,
        significance=significance,
    )
    return Snapshot(
        experiment=experiment,
        phase=0,
        created_at=created_at,
        created_by="test",
        start=created_at - timedelta(days=14),
        end=created_at,
        datasource="events",
        dialect="duckdb",
        engine="frequentist",
        sequential=False,
        correction="none",
        alpha=0.05,
        variations=["control", "treatment"],
        health=Health(
            units={"control": 5000, "treatment": 5000},
            expected_shares={"control": 0.5, "treatment": 0.5},
            srm_p_value=0.6,
            srm=False,
            multiple_exposures=0,
            multiple_exposure_share=0.0,
        ),
        decision=Decision(action="stop", reason="planted"),
        results=[
            MetricResult(
                metric=metric,
                name=metric,
                type="proportion",
                role="primary",
                inverse=False,
                cuped=False,
                variations=[control, treatment],
            )
        ],
    )


def save_snapshot(platform: Platform, snap: Snapshot) -> None:
    snapshot_store.save(platform.engine, snap)


def stopped(key: str, *, days: int = 14, ended: datetime = NOW, **fields: Any) -> dict[str, Any]:
    """An experiment that ran ``days`` days and stopped at ``ended``."""
    phase = {
        "started_at": (ended - timedelta(days=days)).isoformat(),
        "ended_at": ended.isoformat(),
    }
    return {"key": key, "status": "stopped", "phases": [phase], **fields}


def prepare_launches(platform: Platform, now: datetime) -> None:
    """What a passing checklist reads: known metrics and a healthy recent A/A test on ``id``."""
    registry = platform.registry
    registry.save(
        "fact-tables",
        {"key": "orders", "datasource": "events", "sql": "SELECT user_id, timestamp FROM orders"},
        ACTOR,
    )
    for metric in ("orders", "errors"):
        registry.save("metrics", {"key": metric, "numerator": {"fact_table": "orders"}}, ACTOR)
    registry.save("experiments", stopped("aa-id", ended=now, tags=["aa"]), ACTOR)
    save_snapshot(platform, snapshot("aa-id", 0.001, 0.01, created_at=now))


@dataclass
class World:
    """An app over a platform with a settable clock, and a secret key per role."""

    platform: Platform
    client: TestClient
    clock: Clock
    keys: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def secret(self, role: Role) -> str:
        if role not in self.keys:
            self.keys[role] = self.platform.accounts.create_key(
                "secret", created_by="test", role=role
            )
        return str(self.keys[role][0])

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret(role)}"}

    def actor(self, role: Role) -> str:
        self.secret(role)
        return str(self.keys[role][1].actor)

    def get(self, path: str, role: Role = "viewer", **params: Any) -> Any:
        return self.client.get(path, headers=self.auth(role), params=params)

    def post(self, path: str, body: Any = None, role: Role = "analyst") -> Any:
        return self.client.post(path, headers=self.auth(role), json=body)

    def brief(self, body: dict[str, Any], role: Role = "analyst") -> dict[str, Any]:
        response = self.post(f"{API}/briefs", body, role)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def edit(self, key: str, role: Role = "analyst", **changes: Any) -> dict[str, Any]:
        body = {**self.get(f"{API}/briefs/{key}").json(), **changes}
        response = self.client.put(f"{API}/briefs/{key}", headers=self.auth(role), json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def save(self, collection: str, body: dict[str, Any]) -> None:
        self.platform.registry.save(collection, body, ACTOR)

    def search(self, q: str = "", role: Role = "viewer", **params: Any) -> list[str]:
        response = self.get(f"{KB}/search", role, q=q, **params)
        assert response.status_code == 200, response.text
        found = response.json()
        assert found["total"] == len(found["items"])
        return [hit["key"] for hit in found["items"]]

    def view(self, key: str) -> dict[str, Any]:
        response = self.get(f"{KB}/briefs/{key}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def stage(self, key: str) -> str:
        return str(self.view(key)["stage"])

    def move(self, key: str, step: str, body: Any = None, role: Role = "analyst") -> Any:
        return self.post(f"{KB}/briefs/{key}/{step}", body, role)

    def reset(self) -> None:
        """Forget what an earlier test wrote (keys stay): a fresh knowledge base at ``NOW``."""
        self.clock.now = NOW
        self.client.cookies.clear()
        registry = self.platform.registry
        for collection in (
            "briefs",
            "brief-templates",
            "knowledge-settings",
            "playbooks",
            "experiments",
            "metrics",
            "fact-tables",
        ):
            for obj in registry.all(collection):
                registry.delete(collection, obj.key, ACTOR)
        for project in registry.all("projects"):
            if project.key != "default":
                registry.delete("projects", project.key, ACTOR)
        with self.platform.engine.begin() as conn:
            conn.execute(delete(snapshots))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One app per backend for the module (building one takes seconds); see ``world``."""
    tmp = tmp_path_factory.mktemp("kb-api")
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'registry.db'}"
    else:
        name = "liftkit_test_" + secrets.token_hex(6)
        with _admin_connection() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    clock = Clock()
    settings = Settings(data_dir=tmp / "data", database_url=url, controller=False)
    platform = Platform(settings, clock=clock)
    platform.bootstrap()
    try:
        with TestClient(create_app(platform)) as client:
            yield World(platform, client, clock)
    finally:
        platform.close()
        if name is not None:
            with _admin_connection() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def world(shared: World) -> World:
    """The module's app with an empty knowledge base and the clock at ``NOW``."""
    shared.reset()
    return shared


@pytest.fixture
def corpus(world: World) -> World:
    for body in CORPUS:
        world.brief(body)
    return world


def backend(world: World) -> str:
    return world.platform.engine.dialect.name


# -- search ------------------------------------------------------------------------------------


def test_search_stems_phrases_exclusions_and_alternatives(corpus: World) -> None:
    w = corpus
    # "shipping" and "ship" share a stem; so do "badge" and "badges".
    assert sorted(w.search("shipping")) == ["express-badge", "free-shipping"]
    assert sorted(w.search("ship")) == ["express-badge", "free-shipping"]
    assert sorted(w.search("badge")) == ["express-badge", "trust-badges"]
    # All words must match, in any order; a phrase must match in order.
    assert w.search("threshold shipping") == ["free-shipping"]
    assert w.search('"shipping threshold"') == ["free-shipping"]
    assert w.search('"threshold shipping"') == []
    assert w.search("shipping quiz") == []
    # -word excludes, OR offers alternatives.
    assert w.search("shipping -express") == ["free-shipping"]
    assert sorted(w.search("quiz OR ranking")) == ["onboarding-quiz", "search-ranking"]
    assert w.search("nothing-like-this") == []
    assert w.search("-shipping") == []  # only exclusions: nothing to rank
    # Hits carry what a result list shows, and the snippet marks the match.
    [hit] = w.get(f"{KB}/search", q="threshold").json()["items"]
    assert (hit["title"], hit["team"], hit["stage"]) == (
        "Free shipping threshold",
        "growth",
        "planned",
    )
    assert hit["tags"] == ["pricing", "checkout"] and hit["metrics"] == ["orders"]
    assert hit["date"].startswith("2026-12-01") and "**threshold**" in hit["snippet"]
    paged = w.get(f"{KB}/search", q="badge", limit=1, offset=1).json()
    assert paged["total"] == 2 and len(paged["items"]) == 1


def test_search_filters_narrow_the_results(corpus: World) -> None:
    w = corpus
    assert sorted(w.search(tag="pricing")) == ["annual-plan", "free-shipping"]
    assert sorted(w.search(tag="checkout")) == ["free-shipping", "trust-badges"]
    assert sorted(w.search(team="growth")) == ["express-badge", "free-shipping", "trust-badges"]
    # A metric matches as primary or guardrail.
    assert sorted(w.search(metric="orders")) == ["free-shipping", "search-ranking", "trust-badges"]
    assert sorted(w.search(stage="planned")) == ["annual-plan", "free-shipping"]
    assert w.search(outcome="won") == []
    assert w.search(project="default", team="discovery") == ["search-ranking"]
    assert w.search(project="elsewhere") == []
    # Dates: the planned start until something starts or is decided; the end is exclusive.
    december = {"date_from": "2026-12-01T00:00:00Z", "date_to": "2027-01-01T00:00:00Z"}
    assert sorted(w.search(**december)) == ["free-shipping", "trust-badges"]
    assert w.search(date_to="2026-12-01T00:00:00Z") == ["onboarding-quiz"]
    assert w.search(date_from="2027-01-11T00:00:00Z") == ["annual-plan"]
    # Filters combine with each other and with the words.
    assert w.search("badge", team="growth", tag="checkout") == ["trust-badges"]
    assert w.search("shipping", **december) == ["free-shipping"]
    bad = w.get(f"{KB}/search", outcome="great")
    assert bad.status_code == 422 and "outcome" in bad.text
    assert w.get(f"{KB}/search", date_from="soon").status_code == 422


def test_an_empty_query_lists_everything_newest_first(corpus: World) -> None:
    listed = corpus.search()
    assert sorted(listed) == sorted(b["key"] for b in CORPUS)
    dated = [k for k in listed if k not in ("express-badge", "search-ranking")]
    assert dated == ["annual-plan", "trust-badges", "free-shipping", "onboarding-quiz"]


def test_an_empty_query_lists_undated_briefs_after_dated_ones_on_every_backend(
    corpus: World, request: pytest.FixtureRequest
) -> None:
    assert corpus.search() == [
        "annual-plan",
        "trust-badges",
        "free-shipping",
        "onboarding-quiz",
        "express-badge",
        "search-ranking",
    ]


def test_date_filters_compare_instants_whatever_the_offset(
    corpus: World, request: pytest.FixtureRequest
) -> None:
    # 01:00 in UTC+2 is 23:00 UTC the day before: the brief planned for 1 December is after it.
    found = corpus.search(date_from="2026-12-01T01:00:00+02:00", tag="pricing")
    assert sorted(found) == ["annual-plan", "free-shipping"]
    before = corpus.search(date_to="2026-12-01T01:00:00+02:00", tag="pricing")
    assert before == []


def test_date_bounds_at_the_edge_of_the_calendar_and_huge_offsets_are_not_server_errors(
    corpus: World,
) -> None:
    """Found by fuzzing: a bound a few hours from datetime's range overflowed when converted to
    UTC, and an offset past SQLite's integers overflowed the query (both were 500s)."""
    assert len(corpus.search(date_to="9999-12-31T23:00:00-05:00", tag="pricing")) == 2
    assert corpus.search(date_from="0001-01-01T01:00:00+05:00", tag="pricing") != []
    response = corpus.get(f"{KB}/search", "viewer", offset=2**63)
    assert response.status_code == 422 and "offset" in response.text


def test_the_index_follows_edits_and_deletions_at_once(corpus: World) -> None:
    w = corpus
    assert w.search("courier") == []
    w.edit("express-badge", description="Tell shoppers a courier brings it the next day.")
    assert w.search("courier") == ["express-badge"]
    assert w.search("shipping") == ["free-shipping"]  # the old words are gone from the index
    w.edit("search-ranking", team="growth", tags=["search", "pricing"])
    assert "search-ranking" in w.search(team="growth") and "search-ranking" in w.search(
        tag="pricing"
    )
    deleted = w.client.delete(f"{API}/briefs/onboarding-quiz", headers=w.auth("analyst"))
    assert deleted.status_code == 204
    assert w.search("quiz") == [] and "onboarding-quiz" not in w.search()


def test_search_needs_credentials_and_a_role_on_the_project(corpus: World) -> None:
    w = corpus
    assert w.search("shipping", role="viewer") == w.search("shipping", role="admin")
    anonymous = w.client.get(f"{KB}/search", params={"q": "shipping"})
    assert anonymous.status_code == 401
    wrong = w.client.get(f"{KB}/search", headers={"Authorization": "Bearer lk_sec_nope"})
    assert wrong.status_code == 401
    sdk, _ = w.platform.accounts.create_key("sdk", created_by="test", environment="production")
    as_sdk = w.client.get(f"{KB}/search", headers={"Authorization": f"Bearer {sdk}"})
    assert as_sdk.status_code == 403 and "secret key" in as_sdk.json()["detail"]
    scoped, _ = w.platform.accounts.create_key(
        "secret", created_by="test", role="viewer", project="default"
    )
    headers = {"Authorization": f"Bearer {scoped}"}
    everywhere = w.client.get(f"{KB}/search", headers=headers)
    assert everywhere.status_code == 403 and "every project" in everywhere.json()["detail"]
    mine = w.client.get(f"{KB}/search", headers=headers, params={"project": "default"})
    assert mine.status_code == 200 and mine.json()["total"] == len(CORPUS)
    too_long = w.get(f"{KB}/search", q="x" * 501)
    assert too_long.status_code == 422 and "q" in too_long.text


def test_search_tag_filter_matches_the_tag_exactly(corpus: World) -> None:
    w = corpus
    w.edit("onboarding-quiz", tags=["new-user"])
    assert w.search(tag="new-user") == ["onboarding-quiz"]
    assert w.search(tag="new_user") == []


# -- a brief, its checklist and its near-duplicates ---------------------------------------------


def test_a_brief_view_has_its_stage_approval_and_experiment_dates(world: World) -> None:
    w = world
    w.brief(CORPUS[0])
    view = w.view("free-shipping")
    assert view["brief"]["key"] == "free-shipping" and view["brief"]["team"] == "growth"
    assert (view["stage"], view["approved"], view["outcome"]) == ("planned", False, None)
    assert view["started_at"] is None and view["effects"] == []
    w.save("experiments", stopped("fs-exp", days=14, ended=NOW - timedelta(days=1)))
    save_snapshot(w.platform, snapshot("fs-exp", 0.04, 0.01, significance="win"))
    w.edit("free-shipping", experiment="fs-exp")
    view = w.view("free-shipping")
    assert view["stage"] == "analysing"  # the linked experiment decides it now
    assert view["started_at"].startswith((NOW - timedelta(days=15)).date().isoformat())
    assert view["ended_at"].startswith((NOW - timedelta(days=1)).date().isoformat())
    [effect] = view["effects"]
    assert (effect["metric"], effect["variation"]) == ("orders", "treatment")
    assert effect["effect"] == pytest.approx(0.04) and effect["se"] == pytest.approx(0.01)
    missing = w.get(f"{KB}/briefs/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert w.client.get(f"{KB}/briefs/free-shipping").status_code == 401


def test_the_checklist_lists_items_and_is_ready_when_nothing_fails(world: World) -> None:
    w = world
    w.brief(CORPUS[0])
    found = w.get(f"{KB}/briefs/free-shipping/checklist").json()
    statuses = {item["key"]: item["status"] for item in found["items"]}
    assert list(statuses) == [
        "hypothesis",
        "template",
        "taxonomy",
        "metrics",
        "sample_size",
        "conflicts",
        "aa_test",
        "duplicates",
    ]
    assert statuses["hypothesis"] == "pass" and statuses["metrics"] == "fail"
    assert statuses["aa_test"] == "fail" and found["ready"] is False
    details = {item["key"]: item["detail"] for item in found["items"]}
    assert "metrics.guardrails" in details["metrics"] and "no A/A test" in details["aa_test"]
    assert all(item["label"] for item in found["items"])

    prepare_launches(w.platform, NOW)
    w.brief(launchable("one-page-checkout"))
    ready = w.get(f"{KB}/briefs/one-page-checkout/checklist").json()
    assert ready["ready"] is True, ready
    statuses = {item["key"]: item["status"] for item in ready["items"]}
    assert statuses == {
        "hypothesis": "pass",
        "template": "skip",
        "taxonomy": "pass",
        "metrics": "pass",
        "sample_size": "pass",
        "conflicts": "warn",
        "aa_test": "pass",
        "duplicates": "pass",
    }
    # The organisation's taxonomy is read as it is now.
    w.save("knowledge-settings", {"key": "default", "taxonomy": {"teams": ["growth"]}})
    w.edit("one-page-checkout", team="checkout-squad")
    blocked = w.get(f"{KB}/briefs/one-page-checkout/checklist").json()
    assert blocked["ready"] is False
    [taxonomy] = [i for i in blocked["items"] if i["key"] == "taxonomy"]
    assert taxonomy["status"] == "fail" and "checkout-squad" in taxonomy["detail"]


def test_similar_briefs_put_the_near_duplicate_first_and_flag_failures(corpus: World) -> None:
    w = corpus
    w.save(
        "experiments",
        stopped("delivery-minimum", ended=NOW - timedelta(days=200), result="lost"),
    )
    w.brief(
        {
            "key": "delivery-minimum",
            "name": "Minimum order for free delivery",
            "hypothesis": hypothesis(
                "reduce the minimum order for free delivery",
                "shoppers with small baskets",
                "place more orders",
                "postage puts them off",
            ),
            "surface": "checkout",
            "metrics": {"primary": ["orders"]},
            "experiment": "delivery-minimum",
        }
    )
    found = w.get(f"{KB}/briefs/free-shipping/similar").json()
    assert found[0]["key"] == "delivery-minimum"
    first = found[0]
    assert first["near_duplicate"] is True and first["failed"] is True
    assert first["outcome"] == "lost" and first["stage"] == "decided"
    assert "threshold" in first["shared_terms"] or "shipping" in first["shared_terms"]
    assert "free-shipping" not in [m["key"] for m in found]  # never itself
    assert [m["score"] for m in found] == sorted((m["score"] for m in found), reverse=True)
    assert len(w.get(f"{KB}/briefs/free-shipping/similar", limit=2).json()) == 2
    # The checklist blocks a re-run of a failed idea until it is justified.
    [dup] = [
        i
        for i in w.get(f"{KB}/briefs/free-shipping/checklist").json()["items"]
        if i["key"] == "duplicates"
    ]
    assert dup["status"] == "fail" and "delivery-minimum (lost" in dup["detail"]
    w.edit("free-shipping", justification="Postage prices changed since the last test.")
    [dup] = [
        i
        for i in w.get(f"{KB}/briefs/free-shipping/checklist").json()["items"]
        if i["key"] == "duplicates"
    ]
    assert dup["status"] == "warn" and "justified" in dup["detail"]


def test_a_draft_is_compared_without_being_saved(corpus: World) -> None:
    w = corpus
    draft = {
        "key": "signup-questionnaire",
        "name": "Questionnaire at signup",
        "hypothesis": hypothesis(
            "add a short questionnaire to onboarding",
            "new users",
            "activate more often",
            "the questions set them up",
        ),
        "surface": "onboarding",
    }
    response = w.post(f"{KB}/similar", draft, role="viewer")
    assert response.status_code == 200, response.text
    found = response.json()
    assert found[0]["key"] == "onboarding-quiz" and found[0]["near_duplicate"] is True
    assert found[0]["score"] > found[1]["score"]
    assert w.get(f"{API}/briefs/signup-questionnaire").status_code == 404
    assert w.search("questionnaire") == []
    bad = w.post(
        f"{KB}/similar", {**draft, "planned_start": "2027-01-02", "planned_end": "2027-01-01"}
    )
    assert bad.status_code == 422 and "planned_end" in bad.text
    assert w.client.post(f"{KB}/similar", json=draft).status_code == 401


def test_similar_briefs_stay_within_the_projects_the_caller_can_read(corpus: World) -> None:
    w = corpus
    w.save("projects", {"key": "secret-lab", "name": "Secret lab"})
    w.brief(
        {
            "key": "hidden-quiz",
            "project": "secret-lab",
            "name": "Onboarding quiz for the unannounced product",
            "description": "Ask three questions in a quiz during onboarding.",
            "surface": "onboarding",
        }
    )
    scoped, _ = w.platform.accounts.create_key(
        "secret", created_by="test", role="viewer", project="default"
    )
    headers = {"Authorization": f"Bearer {scoped}"}
    hidden = w.client.get(f"{API}/briefs/hidden-quiz", headers=headers)
    assert hidden.status_code == 403  # the brief itself is out of reach
    found = w.client.get(f"{KB}/briefs/onboarding-quiz/similar", headers=headers).json()
    assert "hidden-quiz" not in [m["key"] for m in found]


# -- the lifecycle over HTTP -------------------------------------------------------------------


def test_a_brief_goes_from_plan_to_shipped_with_the_right_roles(world: World) -> None:
    w = world
    prepare_launches(w.platform, NOW)
    w.save("experiments", {"key": "checkout-exp", "metrics": {"primary": ["orders"]}})
    key = "one-page-checkout"
    w.brief(launchable(key, experiment="checkout-exp"))
    assert w.move(key, "submit", role="viewer").status_code == 403
    submitted = w.move(key, "submit")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["stage"] == "in_review"
    assert submitted.json()["brief"]["submitted_by"] == w.actor("analyst")

    refused = w.move(key, "review", {"decision": "approve"}, role="analyst")
    assert refused.status_code == 403 and "editor" in refused.json()["detail"]
    early = w.move(key, "launch", role="editor")
    assert early.status_code == 409 and "needs an approval" in early.json()["detail"]
    bad = w.move(key, "review", {"decision": "maybe"}, role="editor")
    assert bad.status_code == 422 and "decision" in json.dumps(bad.json()["detail"])
    approved = w.move(key, "review", {"decision": "approve", "comment": "ok"}, role="editor")
    assert approved.status_code == 200 and approved.json()["approved"] is True
    assert approved.json()["brief"]["reviews"][-1]["reviewer"] == w.actor("editor")

    # An edit after the review needs a new approval.
    w.edit(key, description="Now with Apple Pay too.")
    assert w.view(key)["approved"] is False
    stale = w.move(key, "launch", role="editor")
    assert stale.status_code == 409 and "as it is now" in stale.json()["detail"]
    w.move(key, "review", {"decision": "approve"}, role="admin")
    assert w.move(key, "launch", role="analyst").status_code == 403
    w.clock.now = NOW + timedelta(hours=2)
    launched = w.move(key, "launch", role="editor")
    assert launched.status_code == 200, launched.text
    assert launched.json()["stage"] == "running"
    experiment = w.platform.registry.get("experiments", "checkout-exp")
    assert experiment.status == "running"
    assert experiment.phases[-1].started_at == NOW + timedelta(hours=2)
    assert launched.json()["started_at"].startswith((NOW + timedelta(hours=2)).date().isoformat())

    running = w.move(key, "conclude", {"outcome": "won"})
    assert running.status_code == 409 and "stop checkout-exp" in running.json()["detail"]
    phase = experiment.phases[-1].model_copy(update={"ended_at": NOW + timedelta(days=15)})
    w.platform.registry.save(
        "experiments",
        experiment.model_copy(update={"status": "stopped", "phases": [phase]}),
        ACTOR,
    )
    assert w.stage(key) == "analysing"
    wrong = w.move(key, "conclude", {"outcome": "great"})
    assert wrong.status_code == 422 and "outcome" in json.dumps(wrong.json()["detail"])
    w.clock.now = NOW + timedelta(days=16)
    concluded = w.move(key, "conclude", {"outcome": "won", "learnings": "One page wins."})
    assert concluded.status_code == 200, concluded.text
    view = concluded.json()
    assert (view["stage"], view["outcome"]) == ("decided", "won")
    assert view["decided_at"].startswith((NOW + timedelta(days=16)).date().isoformat())
    assert view["brief"]["conclusion"]["learnings"] == "One page wins."
    assert view["brief"]["conclusion"]["decided_by"] == w.actor("analyst")
    assert w.search("wins", outcome="won") == [key]

    assert w.move(key, "ship", role="analyst").status_code == 403
    shipped = w.move(key, "ship", role="editor")
    assert shipped.status_code == 200 and shipped.json()["stage"] == "shipped"
    back = w.move(key, "move", {"to": "idea"})
    assert back.status_code == 409 and "cannot move from shipped to idea" in back.json()["detail"]
    guarded = w.move(key, "move", {"to": "running"})
    assert guarded.status_code == 422 and "to" in json.dumps(guarded.json()["detail"])
    archived = w.move(key, "move", {"to": "archived"})
    assert archived.status_code == 200 and archived.json()["stage"] == "archived"
    history = w.get(f"{API}/briefs/{key}/revisions").json()
    assert len(history) >= 8  # every move is a revision of the brief


def test_lifecycle_refusals_are_409_with_the_reason(world: World) -> None:
    w = world
    prepare_launches(w.platform, NOW)
    w.brief(launchable("mine", owners=["ann@example.com"]))
    # The submitter may not review their own brief, even with the editor role.
    assert w.move("mine", "submit", role="editor").status_code == 200
    own = w.move("mine", "review", {"decision": "approve"}, role="editor")
    assert own.status_code == 409
    assert own.json()["detail"] == (
        "reviewer: a brief must be reviewed by someone other than its authors"
    )
    # Nor may an owner, logged in as a person.
    w.platform.accounts.create_user("ann@example.com", "correct horse", roles={"*": "editor"})
    csrf = {"X-Liftkit-Csrf": "1"}
    login = w.client.post(
        f"{API}/session",
        json={"email": "ann@example.com", "password": "correct horse"},
        headers=csrf,
    )
    assert login.status_code in (200, 201), login.text
    by_owner = w.client.post(f"{KB}/briefs/mine/review", json={"decision": "approve"}, headers=csrf)
    assert by_owner.status_code == 409 and "other than its authors" in by_owner.json()["detail"]
    w.client.cookies.clear()
    # Someone else asks for changes: back to planned, and it cannot launch.
    changes = w.move("mine", "review", {"decision": "changes", "comment": "why?"}, role="admin")
    assert changes.status_code == 200 and changes.json()["stage"] == "planned"
    assert changes.json()["approved"] is False
    planned = w.move("mine", "launch", role="editor")
    assert planned.status_code == 409 and "only a reviewed brief" in planned.json()["detail"]
    # An unfinished hypothesis cannot be submitted; nothing to conclude before it runs.
    w.brief({"key": "vague", "hypothesis": {"change": "something"}})
    vague = w.move("vague", "submit")
    assert vague.status_code == 409
    assert "hypothesis: missing audience, result, reason" in vague.json()["detail"]
    early = w.move("vague", "conclude", {"outcome": "lost"})
    assert early.status_code == 409 and "nothing to conclude" in early.json()["detail"]
    not_won = w.move("vague", "ship", role="editor")
    assert not_won.status_code == 409 and "only a won experiment ships" in not_won.json()["detail"]
    # A failing checklist blocks the launch and says what fails.
    w.brief(launchable("unmeasured", metrics={"primary": ["orders"]}))
    w.move("unmeasured", "submit")
    w.move("unmeasured", "review", {"decision": "approve"}, role="editor")
    blocked = w.move("unmeasured", "launch", role="admin")
    assert blocked.status_code == 409
    assert (
        blocked.json()["detail"].startswith("checklist: ")
        and "guardrails" in blocked.json()["detail"]
    )
    assert w.stage("unmeasured") == "in_review"
    assert w.move("nope", "submit").status_code == 404
    assert w.client.post(f"{KB}/briefs/mine/submit").status_code == 401


def test_an_analyst_cannot_approve_a_brief_by_rewriting_it(world: World) -> None:
    from liftkit.knowledge.lifecycle import digest
    from liftkit.registry.briefs import Brief

    w = world
    w.brief(launchable("forged"))
    w.move("forged", "submit")
    body = w.get(f"{API}/briefs/forged").json()
    review = {
        "reviewer": "boss@example.com",
        "at": NOW.isoformat(),
        "decision": "approve",
        "digest": digest(Brief.model_validate(body)),
    }
    w.client.put(
        f"{API}/briefs/forged", headers=w.auth("analyst"), json={**body, "reviews": [review]}
    )
    assert w.view("forged")["approved"] is False


# -- ideas, learnings and impact ----------------------------------------------------------------


def test_ideas_are_ranked_by_the_configured_scoring_framework(world: World) -> None:
    w = world
    # ICE 8·8·2 = 128, RICE 1000·8·0.8/4 = 1600 | ICE 5·5·9 = 225, RICE 100·5·0.5/1 = 250.
    w.brief(
        {
            "key": "bulk-discount",
            "name": "Bulk discount",
            "stage": "planned",
            "scores": {"impact": 8, "confidence": 8, "ease": 2, "reach": 1000, "effort": 4},
            "sizing": {
                "reach_per_month": 10_000,
                "baseline": 0.05,
                "expected_lift": 0.1,
                "value_per_conversion": 20,
            },
            "criteria": {"mde": 0.1},
        }
    )
    w.brief(
        {
            "key": "gift-wrap",
            "name": "Gift wrap",
            "scores": {"impact": 5, "confidence": 5, "ease": 9, "reach": 100, "effort": 1},
        }
    )
    w.brief({"key": "unscored", "name": "Unscored"})
    w.brief(
        {
            "key": "old-idea",
            "stage": "archived",
            "scores": {"impact": 9, "confidence": 9, "ease": 9},
        }
    )
    ice = w.get(f"{KB}/ideas").json()
    assert ice["scoring"] == "ice"
    assert [(i["key"], i["score"]) for i in ice["items"]] == [
        ("gift-wrap", 225.0),
        ("bulk-discount", 128.0),
        ("unscored", None),
    ]
    bulk = ice["items"][1]
    assert bulk["title"] == "Bulk discount" and bulk["stage"] == "planned"
    opportunity = bulk["opportunity"]
    assert opportunity["conversions_per_year"] == pytest.approx(10_000 * 12 * 0.05 * 0.1)
    assert opportunity["impact_per_year"] == pytest.approx(600 * 20)
    assert opportunity["missing"] == []
    feasibility = bulk["feasibility"]
    assert feasibility["mde"] == 0.1 and feasibility["baseline"]["source"] == "brief"
    assert feasibility["sample_size"] > 0 and feasibility["daily_units"] == pytest.approx(
        10_000 / 30
    )
    assert feasibility["days"] == pytest.approx(
        -(-feasibility["sample_size"] // feasibility["daily_units"])
    )
    assert feasibility["weeks"] == pytest.approx(round(feasibility["days"] / 7, 1))
    unscored = ice["items"][2]
    assert set(unscored["opportunity"]["missing"]) == {"reach", "baseline", "expected_lift"}
    assert unscored["feasibility"]["problems"]

    settings = {"key": "default", "scoring": "rice"}
    assert w.post(f"{API}/knowledge-settings", settings, role="editor").status_code == 403
    assert w.post(f"{API}/knowledge-settings", settings, role="admin").status_code == 201
    rice = w.get(f"{KB}/ideas").json()
    assert rice["scoring"] == "rice"
    assert [(i["key"], i["score"]) for i in rice["items"]] == [
        ("bulk-discount", 1600.0),
        ("gift-wrap", 250.0),
        ("unscored", None),
    ]
    assert w.get(f"{KB}/ideas", project="elsewhere").json()["items"] == []
    assert w.client.get(f"{KB}/ideas").status_code == 401


def conclude_all(w: World, outcomes: dict[str, tuple[str, str, list[str], float]]) -> None:
    """Briefs on stopped experiments with a snapshot each, concluded through the API."""
    for day, (key, (outcome, team, owners, effect)) in enumerate(outcomes.items(), start=1):
        if key not in {e.key for e in w.platform.registry.all("experiments")}:
            w.save("experiments", stopped(key, ended=NOW - timedelta(days=30)))
        save_snapshot(w.platform, snapshot(key, effect, 0.01))
        w.brief(
            {
                "key": key,
                "name": key.title(),
                "team": team,
                "owners": owners,
                "tags": ["checkout"],
                "experiment": key,
                "metrics": {"primary": ["orders"]},
            }
        )
        w.clock.now = NOW - timedelta(days=20 - day)
        response = w.move(key, "conclude", {"outcome": outcome, "learnings": f"{key} taught us"})
        assert response.status_code == 200, response.text
    w.clock.now = NOW


OUTCOMES = {
    "big-win": ("won", "growth", ["ann@example.com"], 0.08),
    "small-loss": ("lost", "growth", ["bo@example.com"], -0.02),
    "flat": ("inconclusive", "search", ["cy@example.com"], 0.001),
    "quick-win": ("won", "search", ["ann@example.com"], 0.03),
    "abandoned": ("dnf", "search", ["bo@example.com"], 0.0),
}


def test_win_rates_effects_impact_and_leaderboard(world: World) -> None:
    w = world
    # big-win's experiment was called a winner and its treatment released to everyone.
    w.save(
        "experiments",
        stopped(
            "big-win", ended=NOW - timedelta(days=30), result="won", released_variation="treatment"
        ),
    )
    conclude_all(w, OUTCOMES)
    rates = {r["group"]: r for r in w.get(f"{KB}/meta/win-rates", by="team").json()}
    assert set(rates) == {"growth", "search"}
    growth, search = rates["growth"], rates["search"]
    assert (growth["won"], growth["lost"], growth["inconclusive"], growth["dnf"]) == (1, 1, 0, 0)
    assert (search["won"], search["lost"], search["inconclusive"], search["dnf"]) == (1, 0, 1, 1)
    assert growth["decided"] == search["decided"] == 2  # dnf is left out of the rate
    assert growth["win_rate"] == search["win_rate"] == 0.5
    assert 0 < growth["low"] < 0.5 < growth["high"] < 1
    [tag] = w.get(f"{KB}/meta/win-rates", by="tag").json()
    assert (tag["group"], tag["won"], tag["decided"]) == ("checkout", 2, 4)
    bad = w.get(f"{KB}/meta/win-rates", by="colour")
    assert bad.status_code == 422 and "by" in json.dumps(bad.json()["detail"])

    [orders] = w.get(f"{KB}/meta/metrics").json()
    assert orders["metric"] == "orders" and orders["n"] == 5 and orders["inverse"] is False
    assert sorted(e["experiment"] for e in orders["effects"]) == sorted(OUTCOMES)
    assert orders["median"] == pytest.approx(0.001)
    assert orders["share_positive"] == pytest.approx(3 / 5)
    assert sum(count for _, _, count in orders["histogram"]) == 5

    [series] = w.get(f"{KB}/meta/impact").json()
    assert series["metric"] == "orders"
    [impact] = series["impacts"]
    assert (impact["experiment"], impact["variation"]) == ("big-win", "treatment")
    assert impact["effect"] == pytest.approx(0.08) and 0 < impact["shrunk"] < 0.08
    assert series["total_raw"] == pytest.approx(0.08)

    board = w.get(f"{KB}/leaderboard").json()
    assert [e["experiment"] for e in board["experiments"]] == ["big-win"]
    people = {c["owner"]: c for c in board["contributors"]}
    assert board["contributors"][0]["owner"] == "ann@example.com"
    assert (people["ann@example.com"]["experiments"], people["ann@example.com"]["wins"]) == (2, 2)
    assert (people["bo@example.com"]["experiments"], people["bo@example.com"]["wins"]) == (2, 0)
    assert people["cy@example.com"]["learnings"] == 1
    assert w.get(f"{KB}/leaderboard", project="elsewhere").json() == {
        "experiments": [],
        "contributors": [],
    }


def test_a_winner_concluded_and_shipped_in_the_knowledge_base_counts_as_shipped(
    world: World,
) -> None:
    w = world
    w.save(
        "experiments",
        stopped("quick-win", ended=NOW - timedelta(days=30), released_variation="treatment"),
    )
    conclude_all(w, {"quick-win": OUTCOMES["quick-win"], "flat": OUTCOMES["flat"]})
    assert w.move("quick-win", "ship", role="editor").json()["stage"] == "shipped"
    assert w.view("quick-win")["shipped_variation"] == "treatment"
    [series] = w.get(f"{KB}/meta/impact").json()
    assert [i["experiment"] for i in series["impacts"]] == ["quick-win"]


# -- calendar, digest, reminders ----------------------------------------------------------------


def planned(key: str, surface: str, start: str, end: str, **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "name": key.replace("-", " ").title(),
        "surface": surface,
        "team": "growth",
        "stage": "planned",
        "planned_start": start,
        "planned_end": end,
        "owners": ["ann@example.com"],
        **fields,
    }


def calendar_world(w: World) -> None:
    w.brief(planned("cal-a", "checkout", "2026-12-01", "2026-12-14"))
    w.brief(planned("cal-b", "checkout", "2026-12-10", "2026-12-20"))
    w.brief(planned("cal-c", "search", "2026-12-02", "2026-12-14"))
    w.brief(planned("cal-later", "checkout", "2027-02-01", "2027-02-14"))
    w.brief({**planned("cal-idea", "checkout", "2026-12-01", "2026-12-31"), "stage": "idea"})


def events(feed: bytes) -> dict[str, Any]:
    calendar = Calendar.from_ical(feed)
    return {str(e.get("uid")): e for e in calendar.walk("VEVENT")}


def test_the_calendar_flags_overlapping_briefs_on_one_surface(world: World) -> None:
    w = world
    calendar_world(w)
    found = w.get(f"{KB}/calendar").json()
    assert [e["key"] for e in found["entries"]] == ["cal-a", "cal-c", "cal-b", "cal-later"]
    a = found["entries"][0]
    assert a["start"].startswith("2026-12-01") and a["end"].startswith("2026-12-15")
    assert a["planned"] is True and a["stage"] == "planned"
    [conflict] = found["conflicts"]
    assert (conflict["a"], conflict["b"]) == ("cal-a", "cal-b")
    assert conflict["reasons"] == ["same surface 'checkout'"]
    assert conflict["start"].startswith("2026-12-10") and conflict["end"].startswith("2026-12-15")
    # Disjoint audiences cannot share a user: no conflict any more.
    w.edit("cal-a", targeting={"country": "FR"})
    w.edit("cal-b", targeting={"country": "GB"})
    assert w.get(f"{KB}/calendar").json()["conflicts"] == []
    assert w.get(f"{KB}/calendar", project="elsewhere").json() == {"entries": [], "conflicts": []}
    assert w.client.get(f"{KB}/calendar").status_code == 401


def test_the_ical_feed_takes_a_bearer_key_or_a_key_parameter(world: World) -> None:
    w = world
    calendar_world(w)
    entries = w.get(f"{KB}/calendar").json()["entries"]
    by_header = w.get(f"{KB}/calendar.ics")
    assert by_header.status_code == 200, by_header.text
    assert by_header.headers["content-type"].startswith("text/calendar")
    found = events(by_header.content)
    assert sorted(found) == sorted(f"{e['key']}@liftkit" for e in entries)
    assert str(found["cal-a@liftkit"].get("summary")).startswith("⚠ ")
    assert not str(found["cal-c@liftkit"].get("summary")).startswith("⚠")
    assert found["cal-a@liftkit"].decoded("dtstart") == datetime(2026, 12, 1, tzinfo=UTC)
    assert str(found["cal-a@liftkit"].get("status")) == "TENTATIVE"
    assert "cal-b" in str(found["cal-a@liftkit"].get("description"))

    subscribed = w.client.get(f"{KB}/calendar.ics", params={"key": w.secret("viewer")})
    assert subscribed.status_code == 200
    assert subscribed.headers["content-type"].startswith("text/calendar")
    assert sorted(events(subscribed.content)) == sorted(found)

    assert w.client.get(f"{KB}/calendar.ics").status_code == 401
    assert w.client.get(f"{KB}/calendar.ics", params={"key": "lk_sec_nope"}).status_code == 401
    bad_header = {"Authorization": "Bearer lk_sec_nope"}
    assert w.client.get(f"{KB}/calendar.ics", headers=bad_header).status_code == 401
    sdk, _ = w.platform.accounts.create_key("sdk", created_by="test", environment="production")
    ingest, _ = w.platform.accounts.create_key("ingest", created_by="test")
    for token in (sdk, ingest):
        as_param = w.client.get(f"{KB}/calendar.ics", params={"key": token})
        assert as_param.status_code == 403 and "secret key" in as_param.json()["detail"]
        as_header = w.client.get(f"{KB}/calendar.ics", headers={"Authorization": f"Bearer {token}"})
        assert as_header.status_code == 403
    scoped, _ = w.platform.accounts.create_key(
        "secret", created_by="test", role="viewer", project="default"
    )
    assert w.client.get(f"{KB}/calendar.ics", params={"key": scoped}).status_code == 403
    mine = w.client.get(f"{KB}/calendar.ics", params={"key": scoped, "project": "default"})
    assert mine.status_code == 200 and len(events(mine.content)) == len(entries)


def digest_world(w: World) -> None:
    """Two decisions in November 2026 and one in December; one launch in November."""
    for key in ("nov-win", "nov-loss", "dec-win"):
        w.save("experiments", stopped(key, ended=datetime(2026, 11, 3, tzinfo=UTC)))
        save_snapshot(w.platform, snapshot(key, 0.05 if "win" in key else -0.03, 0.01))
        w.brief(
            {
                "key": key,
                "name": key.replace("-", " ").title(),
                "experiment": key,
                "owners": ["ann@example.com"],
                "team": "growth",
                "metrics": {"primary": ["orders"]},
            }
        )
    for key, outcome, when in (
        ("nov-win", "won", datetime(2026, 11, 10, tzinfo=UTC)),
        ("nov-loss", "lost", datetime(2026, 11, 12, tzinfo=UTC)),
        ("dec-win", "won", datetime(2026, 12, 2, tzinfo=UTC)),
    ):
        w.clock.now = when
        learned = {"outcome": outcome, "learnings": f"**{key}** taught us something"}
        assert w.move(key, "conclude", learned).status_code == 200
    w.clock.now = NOW


def test_the_monthly_digest_as_markdown_and_html(world: World) -> None:
    w = world
    digest_world(w)
    md = w.get(f"{KB}/digest", month="2026-11-01", format="markdown")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    text = md.text
    assert text.startswith("# liftkit digest — November 2026")
    assert "**1** won · **1** lost · **0** inconclusive" in text
    assert "Win rate: **50%**" in text
    assert "`nov-win`" in text and "`nov-loss`" in text and "`dec-win`" not in text
    assert "**nov-win** taught us something" in text
    assert "+5.0% (95% CI" in text
    default = w.get(f"{KB}/digest", month="2026-11-30")
    assert default.headers["content-type"].startswith("text/markdown") and default.text == text
    html = w.get(f"{KB}/digest", month="2026-11-15", format="html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "liftkit digest — November 2026</h1>" in html.text
    assert re.search(r"<strong[^>]*>nov-win</strong> taught us something", html.text)
    december = w.get(f"{KB}/digest", month="2026-12-01").text
    assert "`dec-win`" in december and "`nov-win`" not in december
    empty = w.get(f"{KB}/digest", month="2026-06-01").text
    assert "Nothing was decided this month." in empty
    missing = w.get(f"{KB}/digest")
    assert missing.status_code == 422 and "month" in json.dumps(missing.json()["detail"])
    assert w.get(f"{KB}/digest", month="2026-11").status_code == 422
    assert w.get(f"{KB}/digest", month="2026-11-01", format="pdf").status_code == 422
    assert w.client.get(f"{KB}/digest", params={"month": "2026-11-01"}).status_code == 401


def test_sending_the_digest_needs_a_mail_server_and_recipients(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    body = {"month": "2026-11-01", "recipients": ["team@example.com"]}
    assert w.post(f"{KB}/digest/send", body, role="viewer").status_code == 403
    unset = w.post(f"{KB}/digest/send", body, role="editor")
    assert unset.status_code == 422 and "smtp_url" in unset.json()["detail"]
    bad = w.post(f"{KB}/digest/send", {"recipients": []}, role="editor")
    assert bad.status_code == 422 and "month" in json.dumps(bad.json()["detail"])
    configured = replace(w.platform.settings, smtp_url="smtp://127.0.0.1:9")
    monkeypatch.setattr(w.platform, "settings", configured)
    nobody = w.post(f"{KB}/digest/send", {"month": "2026-11-01"}, role="editor")
    assert nobody.status_code == 422 and "recipients" in nobody.json()["detail"]


def test_reminders_for_experiments_ending_and_decisions_overdue(world: World) -> None:
    w = world
    # Sized for 28 days (the default), started 26 days ago: it ends in two days.
    w.save(
        "experiments",
        {
            "key": "ending-soon",
            "status": "running",
            "phases": [{"started_at": (NOW - timedelta(days=26)).isoformat()}],
        },
    )
    w.save(
        "experiments",
        {
            "key": "fresh",
            "status": "running",
            "phases": [{"started_at": (NOW - timedelta(days=3)).isoformat()}],
        },
    )
    w.save("experiments", stopped("forgotten", ended=NOW - timedelta(days=10)))
    for key in ("ending-soon", "fresh", "forgotten"):
        w.brief(
            {
                "key": key,
                "name": key.replace("-", " ").title(),
                "experiment": key,
                "owners": ["ann@example.com"],
            }
        )
    found = w.get(f"{KB}/reminders").json()
    assert [(r["kind"], r["key"]) for r in found] == [
        ("decision_overdue", "forgotten"),
        ("ending", "ending-soon"),
    ]
    overdue, ending = found
    end = NOW + timedelta(days=2)
    assert ending["id"] == f"ending:ending-soon:{end:%Y-%m-%d}"
    assert ending["due"].startswith(end.date().isoformat())
    assert (
        ending["owners"] == ["ann@example.com"]
        and ending["title"] == f"Ending Soon ends on {end:%Y-%m-%d}"
    )
    assert "10 days ago" in overdue["message"]
    # Three days earlier, neither is due yet.
    w.clock.now = NOW - timedelta(days=3)
    assert w.get(f"{KB}/reminders").json() == []
    # A decision ends the overdue reminder.
    w.clock.now = NOW
    w.move("forgotten", "conclude", {"outcome": "inconclusive"})
    assert [r["key"] for r in w.get(f"{KB}/reminders").json()] == ["ending-soon"]
    assert w.client.get(f"{KB}/reminders").status_code == 401


# -- the CLI -----------------------------------------------------------------------------------

runner = CliRunner()


def said(text: str) -> str:
    """Text with Rich's line wrapping (80 columns under the test runner) undone."""
    return " ".join(text.split())


@dataclass
class Cli:
    """``liftkit kb …`` against one registry; never a traceback, whatever the exit code."""

    url: str
    data_dir: Path

    def __call__(self, *args: str) -> Result:
        options = ["--database-url", self.url, "--data-dir", str(self.data_dir)]
        result = runner.invoke(cli_app, ["kb", *args, *options])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    """A registry with the corpus, a launchable brief, decisions in November 2026 and a test
    about to end, written with the real clock (the commands use it too)."""
    now = datetime.now(UTC)
    data_dir = tmp_path / "data"
    platform = Platform(Settings(data_dir=data_dir, database_url=database_url))
    platform.bootstrap()
    registry = platform.registry
    try:
        for body in CORPUS:
            registry.save("briefs", body, ACTOR)
        prepare_launches(platform, now)
        registry.save("briefs", launchable("ready-brief"), ACTOR)
        registry.save("briefs", {"key": "vague", "hypothesis": {"change": "something"}}, ACTOR)
        for key, outcome, team in (
            ("nov-win", "won", "growth"),
            ("nov-loss", "lost", "growth"),
            ("search-win", "won", "search"),
        ):
            registry.save(
                "experiments", stopped(key, ended=datetime(2026, 11, 5, tzinfo=UTC)), ACTOR
            )
            conclusion = {
                "outcome": outcome,
                "learnings": f"{key} taught us",
                "decided_at": "2026-11-10T09:00:00Z",
            }
            registry.save(
                "briefs",
                {
                    "key": key,
                    "name": key.title(),
                    "team": team,
                    "experiment": key,
                    "owners": ["ann@example.com"],
                    "conclusion": conclusion,
                },
                ACTOR,
            )
        started = (now - timedelta(days=26)).isoformat()
        registry.save(
            "experiments",
            {"key": "ending-soon", "status": "running", "phases": [{"started_at": started}]},
            ACTOR,
        )
        registry.save(
            "briefs",
            {"key": "ending-soon", "name": "Ending soon", "experiment": "ending-soon"},
            ACTOR,
        )
    finally:
        platform.close()
    return Cli(database_url, data_dir)


def test_cli_search_show_similar_and_reindex(cli: Cli) -> None:
    found = cli.json("search", "shipping")
    assert sorted(h["key"] for h in found["items"]) == ["express-badge", "free-shipping"]
    assert found["total"] == 2
    narrowed = cli.json("search", "shipping", "--team", "growth", "--tag", "checkout")
    assert [h["key"] for h in narrowed["items"]] == ["free-shipping"]
    december = cli.json("search", "--from", "2026-12-01", "--to", "2027-01-01")
    assert sorted(h["key"] for h in december["items"]) == ["free-shipping", "trust-badges"]
    assert [h["key"] for h in cli.json("search", "--outcome", "lost")["items"]] == ["nov-loss"]
    table = cli("search", '"shipping threshold"')
    assert table.exit_code == 0 and "1 found" in table.output and "Free" in table.output

    shown = cli("show", "free-shipping")
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout)
    assert view["stage"] == "planned" and view["approved"] is False
    assert view["brief"]["name"] == "Free shipping threshold"
    missing = cli("show", "nope")
    assert missing.exit_code == 1 and "not found" in missing.output

    similar = cli.json("similar", "onboarding-quiz", "--limit", "3")
    assert len(similar) == 3 and "onboarding-quiz" not in [m["key"] for m in similar]
    assert [m["score"] for m in similar] == sorted((m["score"] for m in similar), reverse=True)
    listed = cli("similar", "free-shipping")
    assert listed.exit_code == 0 and "similar experiments" in listed.output

    rebuilt = cli("reindex")
    assert rebuilt.exit_code == 0 and "search index rebuilt" in rebuilt.output
    assert cli.json("search", "threshold")["total"] == 1


def test_cli_checklist_exits_1_when_an_item_fails(cli: Cli) -> None:
    failing = cli("checklist", "free-shipping")
    assert failing.exit_code == 1
    out = said(failing.output)
    assert "✗ primary and guardrail metrics chosen" in out and "✓ hypothesis written" in out
    ready = cli("checklist", "ready-brief")
    assert ready.exit_code == 0, ready.output
    assert "✗" not in ready.output and "✓ A/A test passed recently on 'id'" in said(ready.output)
    items = cli("checklist", "ready-brief", "--json")
    assert items.exit_code == 0
    assert {i["status"] for i in json.loads(items.stdout)} <= {"pass", "warn", "skip"}
    as_json = cli("checklist", "free-shipping", "--json")
    assert as_json.exit_code == 1 and any(i["status"] == "fail" for i in json.loads(as_json.stdout))
    missing = cli("checklist", "nope")
    assert missing.exit_code == 1 and "not found" in missing.output


def test_cli_lifecycle_errors_are_messages(cli: Cli) -> None:
    vague = cli("submit", "vague")
    assert vague.exit_code == 1
    assert "error: hypothesis: missing audience, result, reason" in said(vague.output)
    submitted = cli("submit", "ready-brief", "--as", "ann@example.com")
    assert submitted.exit_code == 0 and "ready-brief: in_review" in submitted.output
    own = cli("review", "ready-brief", "approve", "--as", "ann@example.com")
    assert own.exit_code == 1
    assert "reviewer: a brief must be reviewed by someone other than its authors" in said(
        own.output
    )
    early = cli("launch", "ready-brief", "--as", "bo@example.com")
    assert early.exit_code == 1 and "review: needs an approval" in said(early.output)
    unsure = cli("review", "ready-brief", "maybe", "--as", "bo@example.com")
    assert unsure.exit_code == 1 and "decision: use approve or changes" in said(unsure.output)
    approved = cli("review", "ready-brief", "approve", "--as", "bo@example.com")
    assert approved.exit_code == 0 and "ready-brief: in_review" in approved.output
    launched = cli("launch", "ready-brief", "--as", "bo@example.com")
    assert launched.exit_code == 0, launched.output
    assert "ready-brief: running" in launched.output
    again = cli("launch", "ready-brief")
    assert again.exit_code == 1 and "only a reviewed brief can launch" in said(again.output)
    nowhere = cli("move", "ready-brief", "shipped")
    assert nowhere.exit_code == 1 and "to: use idea, planned or archived" in said(nowhere.output)
    unknown = cli("submit", "nope")
    assert unknown.exit_code == 1 and "not found" in unknown.output


def test_cli_ideas_wins_calendar_digest_and_reminders(cli: Cli, tmp_path: Path) -> None:
    ideas = cli.json("ideas")
    keys = [i["key"] for i in ideas]
    assert "free-shipping" in keys and "nov-win" not in keys  # decided briefs are not ideas
    assert {"score", "opportunity", "feasibility"} <= set(ideas[0])

    rates = {r["group"]: r for r in cli.json("wins", "--by", "team")}
    assert (rates["growth"]["won"], rates["growth"]["lost"]) == (1, 1)
    assert (rates["search"]["won"], rates["search"]["decided"]) == (1, 1)
    table = cli("wins", "--by", "team")
    assert table.exit_code == 0 and "win rate by team" in table.output
    assert "growth" in table.output and "50%" in table.output
    wrong = cli("wins", "--by", "colour")
    assert wrong.exit_code == 1 and "by: use tag" in said(wrong.output)

    feed = tmp_path / "experiments.ics"
    shown = cli("calendar", "--ics", str(feed))
    assert shown.exit_code == 0, shown.output
    listed = cli.json("calendar")
    uids = [str(e.get("uid")) for e in Calendar.from_ical(feed.read_bytes()).walk("VEVENT")]
    assert sorted(uids) == sorted(f"{e['key']}@liftkit" for e in listed["entries"])
    assert "free-shipping@liftkit" in uids and "ending-soon@liftkit" in uids

    digest = cli("digest", "--month", "2026-11")
    assert digest.exit_code == 0, digest.output
    assert digest.stdout.startswith("# liftkit digest — November 2026")
    assert "**2** won · **1** lost" in digest.stdout and "`nov-loss`" in digest.stdout
    html = cli("digest", "--month", "2026-11", "--html")
    assert html.exit_code == 0 and html.stdout.startswith("<!DOCTYPE html>")
    bad = cli("digest", "--month", "November")
    assert bad.exit_code == 1 and "month: 'November' is not YYYY-MM" in said(bad.output)
    unsent = cli("digest", "--month", "2026-11", "--send", "--to", "team@example.com")
    assert unsent.exit_code == 1 and "smtp_url" in unsent.output

    reminded = cli("remind")
    assert reminded.exit_code == 0, reminded.output
    assert "ending: Ending soon ends on" in said(reminded.output)
