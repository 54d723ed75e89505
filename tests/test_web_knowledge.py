"""The knowledge-base pages in-process: search, briefs, ideas, calendar, leaderboard, digest.

Every expectation is read from the ``KnowledgeBase`` facade the API uses (search hits,
checklist items, similar briefs, idea scores, calendar conflicts, the leaderboard, the
digest), so the pages are checked against the same computation rather than against numbers
written here. One app per module (on SQLite, with a clock the test sets); tests that write make
objects with keys of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from liftkit.analysis import store as snapshot_store
from liftkit.analysis.snapshot import Decision, Health, MetricResult, Snapshot, VariationResult
from liftkit.app import create_app
from liftkit.knowledge import meta
from liftkit.knowledge.base import KnowledgeBase
from liftkit.knowledge.search import Filters
from liftkit.platform import Platform
from liftkit.settings import Settings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HX = {"X-Liftkit-Csrf": "1", "HX-Request": "true"}
PASSWORD = "correct horse battery"
ACTOR = "user:setup@example.com"
ROLES = ("admin", "editor", "analyst", "viewer")


def hypothesis(change: str, audience: str, result: str, reason: str) -> dict[str, str]:
    return {"change": change, "audience": audience, "result": result, "reason": reason}


#: Briefs with distinct words, teams and surfaces; two of them share a word ("basket").
BRIEFS: list[dict[str, Any]] = [
    {
        "key": "cheaper-postage",
        "name": "Cheaper postage for small baskets",
        "hypothesis": hypothesis(
            "halving the postage fee on baskets under 30 euros",
            "shoppers with small baskets",
            "turn more baskets into orders",
            "postage is the most cited reason to leave",
        ),
        "team": "growth",
        "surface": "basket",
        "tags": ["pricing"],
        "metrics": {"primary": ["orders"], "guardrails": ["margin"]},
        "owners": ["ann@example.com"],
        "scores": {"impact": 8, "confidence": 6, "ease": 7},
        "stage": "planned",
    },
    {
        "key": "basket-reminder",
        "name": "Basket reminder e-mail",
        "hypothesis": hypothesis(
            "an e-mail reminding of a forgotten basket after a day",
            "signed-in shoppers who left a basket",
            "come back and order",
            "many forget rather than decide against it",
        ),
        "team": "retention",
        "surface": "email",
        "tags": ["lifecycle"],
        "metrics": {"primary": ["orders"]},
        "owners": ["bo@example.com"],
        "scores": {"impact": 5, "confidence": 5, "ease": 9},
    },
    {
        "key": "quiz-onboarding",
        "name": "Taste quiz during onboarding",
        "hypothesis": hypothesis(
            "a three-question taste quiz",
            "new subscribers",
            "keep their subscription longer",
            "a first bag they like sets the habit",
        ),
        "team": "activation",
        "surface": "onboarding",
        "tags": ["onboarding"],
        "metrics": {"primary": ["retention"]},
        "owners": ["cy@example.com"],
        "scores": {"impact": 9, "confidence": 3, "ease": 3},
    },
]


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    platform: Platform
    kb: KnowledgeBase
    clients: dict[str, TestClient]

    def save(self, collection: str, body: dict[str, Any]) -> None:
        self.platform.registry.save(collection, body, ACTOR)

    def get(self, path: str, role: str = "viewer", **params: Any) -> Any:
        return self.clients[role].get(path, params=params)

    def post(self, path: str, data: dict[str, str], role: str = "admin") -> Any:
        return self.clients[role].post(path, data=data, headers=HX)


def snapshot(experiment: str, effect: float, se: float = 0.01) -> Snapshot:
    """A fixed-horizon frequentist result on ``orders``: ``effect`` ± 1.96·``se``."""
    control = VariationResult(variation="control", units=5000, value=0.1)
    treatment = VariationResult(
        variation="treatment", units=5000, value=0.1 * (1 + effect), effect=effect,
        ci_low=effect - 1.96 * se, ci_high=effect + 1.96 * se, significance="win",
    )  # fmt: skip
    return Snapshot(
        experiment=experiment, phase=0, created_at=NOW, created_by="test",
        start=NOW - timedelta(days=14), end=NOW, datasource="events", dialect="duckdb",
        engine="frequentist", sequential=False, correction="none", alpha=0.05,
        variations=["control", "treatment"],
        health=Health(
            units={"control": 5000, "treatment": 5000},
            expected_shares={"control": 0.5, "treatment": 0.5}, srm_p_value=0.6, srm=False,
            multiple_exposures=0, multiple_exposure_share=0.0,
        ),
        decision=Decision(action="stop", reason="planted"),
        results=[
            MetricResult(
                metric="orders", name="orders", type="proportion", role="primary",
                inverse=False, cuped=False, variations=[control, treatment],
            )
        ],
    )  # fmt: skip


def shipped_winner(world: World, key: str, effect: float, owner: str, learnings: str) -> None:
    """A stopped experiment that won and released its treatment, with a concluded brief."""
    phase = {"started_at": (NOW - timedelta(days=20)).isoformat(), "ended_at": NOW.isoformat()}
    world.save(
        "experiments",
        {"key": key, "status": "stopped", "result": "won", "released_variation": "treatment",
         "phases": [phase], "metrics": {"primary": ["orders"]}},
    )  # fmt: skip
    world.save(
        "briefs",
        {"key": key, "name": key.replace("-", " ").capitalize(), "experiment": key,
         "owners": [owner], "team": "growth", "metrics": {"primary": ["orders"]},
         "hypothesis": hypothesis(f"the {key} change", "everyone", "order more", "tests"),
         "conclusion": {"outcome": "won", "learnings": learnings, "decided_at": NOW.isoformat()}},
    )  # fmt: skip
    snapshot_store.save(world.platform.engine, snapshot(key, effect))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("web-kb")
    settings = Settings(
        data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'registry.db'}", controller=False
    )
    platform = Platform(settings, clock=Clock())
    platform.bootstrap()
    for role in ROLES:
        platform.accounts.create_user(f"{role}@example.com", PASSWORD, roles={"*": role})  # type: ignore[dict-item]
    app = create_app(platform)
    # One client runs the app's lifespan; the others share the app (a cookie jar per role).
    clients: dict[str, TestClient] = {role: TestClient(app) for role in ROLES}
    try:
        clients["admin"].__enter__()
        for role, client in clients.items():
            response = client.post(
                "/login", data={"email": f"{role}@example.com", "password": PASSWORD}, headers=HX
            )
            assert response.status_code == 204, response.text
        w = World(platform, KnowledgeBase(platform), clients)
        for body in BRIEFS:
            w.save("briefs", body)
        shipped_winner(w, "roast-date-label", 0.05, "ann@example.com", "Freshness sells: +5%.")
        shipped_winner(w, "bundle-grinder", 0.02, "bo@example.com", "Bundles help a little.")
        yield w
    finally:
        clients["admin"].__exit__(None, None, None)
        platform.close()


def keys(html: str, cls: str) -> list[str]:
    """The ``data-key`` of each element with class ``cls``, in page order."""
    return re.findall(rf'class="[^"]*\b{cls}\b[^"]*" data-key="([^"]+)"', html)


def rows(html: str, table: str) -> list[str]:
    """``data-key``s of the rows of the table with class ``table``."""
    body = html.split(f'class="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr[^>]* data-key="([^"]+)"', body)


# -- search ------------------------------------------------------------------------------------


def test_search_finds_briefs_by_hypothesis_words_and_filters_narrow(world: World) -> None:
    expected = [h.key for h in world.kb.search("basket")[0]]
    assert len(expected) >= 2  # the word is in two hypotheses
    page = world.get("/knowledge", q="basket")
    assert page.status_code == 200
    assert keys(page.text, "kb-hit") == expected
    assert "<mark>" in page.text  # the snippet highlights the match
    narrowed = [h.key for h in world.kb.search("basket", Filters(team="retention"))[0]]
    assert 0 < len(narrowed) < len(expected)
    assert keys(world.get("/knowledge", q="basket", team="retention").text, "kb-hit") == narrowed
    # htmx asks for the results fragment only: same hits, no page around them.
    fragment = world.clients["viewer"].get(
        "/knowledge", params={"q": "postage"}, headers={**HX, "HX-Target": "kb-results"}
    )
    assert "<h1>" not in fragment.text
    assert keys(fragment.text, "kb-hit") == [h.key for h in world.kb.search("postage")[0]]


def test_search_filters_are_checked_and_learnings_are_listed(world: World) -> None:
    won = [h.key for h in world.kb.search("", Filters(outcome="won"))[0]]
    assert keys(world.get("/knowledge", outcome="won").text, "kb-hit") == won
    bad = world.get("/knowledge", outcome="maybe")
    assert bad.status_code == 422 and "outcome" in bad.text
    assert world.get("/knowledge", date_from="yesterday").status_code == 422
    page = unescape(world.get("/knowledge").text)
    for record in world.kb.records():
        if record.brief.conclusion.learnings:
            assert record.brief.conclusion.learnings in page


def test_digest_links_lead_to_the_brief_page(world: World) -> None:
    response = world.clients["viewer"].get("/kb/briefs/cheaper-postage", follow_redirects=False)
    assert response.headers["location"] == "/knowledge/briefs/cheaper-postage"


# -- a brief -----------------------------------------------------------------------------------


def test_brief_page_shows_checklist_similar_briefs_and_history(world: World) -> None:
    page = world.get("/knowledge/briefs/cheaper-postage")
    assert page.status_code == 200
    text = unescape(page.text)
    brief = world.kb.brief("cheaper-postage")
    assert brief.hypothesis.text in text
    items = world.kb.checklist(brief)
    found = re.findall(r'class="check-(\w+)" data-item="([^"]+)"', page.text)
    assert found == [(i.status, i.key) for i in items]
    readable = world.kb.records()
    assert rows(page.text, "kb-similar") == [m.key for m in world.kb.similar(brief, readable)]
    assert rows(page.text, "kb-similar")  # "basket-reminder" shares words
    versions = world.platform.registry.revisions("briefs", "cheaper-postage")
    assert f"v{versions[-1].version}" in page.text
    assert world.get("/knowledge/briefs/no-such-brief").status_code == 404


def test_brief_of_a_shipped_winner_shows_its_effect(world: World) -> None:
    record = world.kb.record("roast-date-label")
    page = world.get("/knowledge/briefs/roast-date-label")
    [effect] = record.effects
    assert f"{effect.effect * 100:+.1f}%" in page.text
    assert 'class="ci-bar good"' in page.text
    assert "Freshness sells" in page.text


def test_lifecycle_buttons_follow_the_facade_and_roles(world: World) -> None:
    world.save("briefs", {"key": "lc-brief", "name": "Lifecycle", "owners": ["ann@example.com"]})
    assert "Submit for review" not in world.get("/knowledge/briefs/lc-brief", "viewer").text
    assert "Submit for review" in world.get("/knowledge/briefs/lc-brief", "analyst").text
    # A viewer may not move it; the facade refuses an incomplete hypothesis with its reason.
    assert (
        world.post("/knowledge/briefs/lc-brief/move", {"to": "planned"}, "viewer").status_code
        == 403
    )
    refused = world.post("/knowledge/briefs/lc-brief/submit", {}, "analyst")
    assert refused.status_code == 409 and "hypothesis" in refused.text
    assert refused.headers["HX-Retarget"] == "#flash"
    moved = world.post("/knowledge/briefs/lc-brief/move", {"to": "planned"}, "analyst")
    assert moved.status_code == 204
    assert moved.headers["HX-Redirect"] == "/knowledge/briefs/lc-brief"
    assert world.kb.record("lc-brief").stage == "planned"
    assert world.post("/knowledge/briefs/lc-brief/fly", {}, "analyst").status_code == 404


# -- writing a brief ---------------------------------------------------------------------------


def test_viewers_cannot_write_briefs_and_bad_fields_are_named(world: World) -> None:
    assert world.get("/knowledge/briefs/new", "viewer").status_code == 403
    assert world.get("/knowledge/briefs/new", "analyst").status_code == 200
    form = {"key": "new-web-brief", "name": "Written in the browser", "project": "default"}
    assert world.post("/knowledge/briefs/new", form, "viewer").status_code == 403
    for field, value in (("criteria.mde", "-1"), ("criteria.mde", "lots"), ("key", "")):
        bad = world.post("/knowledge/briefs/new", {**form, field: value}, "analyst")
        assert bad.status_code == 422 and field in bad.text, (field, bad.text)
    late = world.post(
        "/knowledge/briefs/new",
        {**form, "planned_start": "2026-12-10", "planned_end": "2026-12-01"},
        "analyst",
    )
    assert late.status_code == 422 and "planned_end" in late.text
    assert world.platform.registry.find("briefs", "new-web-brief") is None
    made = world.post(
        "/knowledge/briefs/new",
        {**form, "hypothesis.change": "a bigger basket button", "tags": "ui, basket",
         "metrics.primary": "orders", "scores.impact": "4"},
        "analyst",
    )  # fmt: skip
    assert made.status_code == 204, made.text
    brief = world.kb.brief("new-web-brief")
    assert brief.tags == ["ui", "basket"] and brief.scores.impact == 4
    assert brief.owners == ["analyst@example.com"]
    again = world.post("/knowledge/briefs/new", form, "analyst")
    assert again.status_code == 409 and "exists" in again.text


def test_a_draft_is_compared_with_past_briefs(world: World) -> None:
    draft = {"name": "Lower postage", "hypothesis.change": "cheaper postage on small baskets"}
    response = world.post("/knowledge/briefs/new/similar", draft, "analyst")
    assert response.status_code == 200
    assert "cheaper-postage" in rows(response.text, "kb-similar")


# -- ideas, calendar, leaderboard, digest --------------------------------------------------------


def test_ideas_are_in_the_facades_order_and_sortable(world: World) -> None:
    ideas = world.kb.ideas()
    page = world.get("/ideas")
    assert rows(page.text, "kb-ideas") == [i.record.key for i in ideas]
    scores = [s for s in (i.score for i in ideas) if s is not None]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 3
    by_title = rows(world.get("/ideas", sort="title").text, "kb-ideas")
    assert by_title == [
        i.record.key for i in sorted(ideas, key=lambda i: (i.record.brief.name or "").lower())
    ]
    assert world.get("/ideas", sort="luck").status_code == 422


def test_calendar_marks_overlapping_briefs_as_a_conflict(world: World) -> None:
    start = NOW.date() + timedelta(days=3)
    for key, offset in (("cal-hero-a", 0), ("cal-hero-b", 5)):
        world.save(
            "briefs",
            {"key": key, "name": key, "surface": "cal-hero", "stage": "planned",
             "planned_start": (start + timedelta(days=offset)).isoformat(),
             "planned_end": (start + timedelta(days=offset + 14)).isoformat()},
        )  # fmt: skip
    _, conflicts = world.kb.calendar()
    pair = [c for c in conflicts if {c.a, c.b} == {"cal-hero-a", "cal-hero-b"}]
    assert len(pair) == 1
    page = world.get("/calendar")
    assert page.status_code == 200
    warnings = page.text.split('class="flash warn kb-conflicts"', 1)[1].split("</section>", 1)[0]
    assert "cal-hero-a" in warnings and "cal-hero-b" in warnings
    assert pair[0].reasons[0] in unescape(warnings)
    marked = re.findall(r'<tr class="conflict" data-key="([^"]+)"', page.text)
    assert {"cal-hero-a", "cal-hero-b"} <= set(marked)
    assert 'td class="week on conflict"' in page.text
    assert "/api/v1/kb/calendar.ics" in page.text
    # A window before both shows neither.
    earlier = world.get("/calendar", start=(NOW.date() - timedelta(weeks=30)).isoformat(), weeks=4)
    assert "cal-hero-a" not in earlier.text


def test_leaderboard_shows_the_facades_winners_and_contributors(world: World) -> None:
    board = meta.leaderboard(world.kb.records())
    assert len(board.experiments) >= 2
    page = world.get("/leaderboard")
    assert rows(page.text, "kb-leaderboard") == [e.experiment for e in board.experiments]
    for entry in board.experiments:
        assert f"{entry.shrunk * 100:+.1f}%" in page.text
    owners = re.findall(r'data-owner="([^"]+)"', page.text)
    assert owners == [c.owner for c in board.contributors]
    rates = meta.win_rates(world.kb.records(), "team")
    assert all(f"<td>{r.group}</td>" in page.text for r in rates)
    assert world.get("/leaderboard", by="colour").status_code == 422


def test_digest_previews_the_facades_digest_and_sending_needs_a_mail_server(world: World) -> None:
    month = date(NOW.year, NOW.month, 1)
    digest = world.kb.digest(month)
    assert digest.totals.won >= 2  # the two shipped winners were decided this month
    page = world.get("/digest")
    assert page.status_code == 200
    assert f"<strong>{digest.totals.won}</strong> won" in page.text
    assert f"Digest · {digest.title}" in page.text
    srcdoc = unescape(page.text.split('srcdoc="', 1)[1].split('"', 1)[0])
    assert digest.subject in srcdoc and "<script" not in srcdoc
    assert 'sandbox="' in page.text
    other = world.get("/digest", month="2026-10")
    assert world.kb.digest(date(2026, 10, 1)).title in other.text
    assert world.get("/digest", month="soon").status_code == 422
    assert "Send now" not in page.text  # a viewer cannot send
    assert "Send now" in world.get("/digest", "editor").text
    form = {"month": "2026-11", "recipients": "team@example.com"}
    assert world.post("/digest/send", form, "analyst").status_code == 403
    refused = world.post("/digest/send", form, "editor")
    assert refused.status_code == 422 and "smtp_url" in refused.text


def test_review_conclude_and_ship_through_the_page(world: World) -> None:
    world.save(
        "briefs",
        {"key": "lc-review", "name": "Reviewed", "owners": ["ann@example.com"], "stage": "planned",
         "hypothesis": hypothesis("a louder button", "everyone", "click more", "it is seen")},
    )  # fmt: skip
    assert world.post("/knowledge/briefs/lc-review/submit", {}, "analyst").status_code == 204
    assert world.kb.record("lc-review").stage == "in_review"
    page = world.get("/knowledge/briefs/lc-review", "editor").text
    assert (
        "Send review" in page and "Send review" not in world.get("/knowledge/briefs/lc-review").text
    )
    review = {"decision": "changes", "comment": "name the metric"}
    assert world.post("/knowledge/briefs/lc-review/review", review, "analyst").status_code == 403
    assert world.post("/knowledge/briefs/lc-review/review", review, "editor").status_code == 204
    assert world.kb.record("lc-review").stage == "planned"
    assert "name the metric" in world.get("/knowledge/briefs/lc-review").text
    # A stopped experiment without a result: the brief is analysing and can be concluded.
    phase = {"started_at": (NOW - timedelta(days=9)).isoformat(), "ended_at": NOW.isoformat()}
    world.save("experiments", {"key": "lc-exp", "status": "stopped", "phases": [phase]})
    world.save("briefs", {"key": "lc-exp", "name": "Concluded here", "experiment": "lc-exp"})
    assert world.kb.record("lc-exp").stage == "analysing"
    assert 'class="kb-conclude"' in world.get("/knowledge/briefs/lc-exp", "analyst").text
    bad = world.post("/knowledge/briefs/lc-exp/conclude", {"outcome": "great"}, "analyst")
    assert bad.status_code == 422 and "outcome" in bad.text
    done = {"outcome": "won", "learnings": "Louder works."}
    assert world.post("/knowledge/briefs/lc-exp/conclude", done, "analyst").status_code == 204
    record = world.kb.record("lc-exp")
    assert (record.stage, record.outcome) == ("decided", "won")
    assert "Mark shipped" in world.get("/knowledge/briefs/lc-exp", "editor").text
    assert world.post("/knowledge/briefs/lc-exp/ship", {}, "analyst").status_code == 403
    assert world.post("/knowledge/briefs/lc-exp/ship", {}, "editor").status_code == 204
    assert world.kb.record("lc-exp").stage == "shipped"
