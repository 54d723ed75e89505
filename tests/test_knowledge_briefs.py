"""Briefs: the lifecycle end to end, the pre-launch checklist item by item, planning from data.

Lifecycle, planning and the full checklist run on SQLite and PostgreSQL (conftest's platform, on
a clock of our own: "now" is right after the simulated data, which is written into the platform's
event store and analysed for real). Expected numbers are recomputed from the simulated tables.
Checklist items are pure: each is checked with a hand-built ``checklist.Context``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from analysis_support import END, START, Planted, registry_objects, simulate
from liftkit import analysis, stats
from liftkit.events.duckdb_store import DuckDBStore
from liftkit.events.store import TABLES
from liftkit.knowledge import calendar, checklist, planning, similar
from liftkit.knowledge.base import KnowledgeBase
from liftkit.knowledge.lifecycle import LifecycleError, approval, stage_of
from liftkit.knowledge.records import Record, record_of
from liftkit.platform import Platform
from liftkit.registry.briefs import Brief, BriefTemplate, KnowledgeSettings, Scores
from liftkit.registry.experiments import Experiment, Phase
from liftkit.settings import Settings

NOW = END + timedelta(hours=6)
ANN, CARL, DANA = (f"user:{n}@x.io" for n in ("ann", "carl", "dana"))
SETUP = "user:setup@x.io"
HYPOTHESIS = {
    "change": "free shipping on orders over 50 dollars",
    "audience": "first-time buyers",
    "result": "raise the purchase rate",
    "reason": "shipping cost is the top reason for abandoned carts",
}


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def platform(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[Platform]:
    """conftest's platform (same backends), on a clock the test controls."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    instance = Platform(settings, clock=clock)
    instance.bootstrap()
    yield instance
    instance.close()  # pytest runs this after a failed test too


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    return simulate(Planted(users=4000, lift=0.0, seed=2))  # 10 days of an A/A test on "id"


def load_aa(platform: Platform, tables: dict[str, pa.Table]) -> analysis.Snapshot:
    """The simulated data in the event store, ``planted`` as an A/A test, analysed for real."""
    path = platform.settings.data_dir / "events.duckdb"
    DuckDBStore(path)  # the store's own tables
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        for name in TABLES:
            con.register("simulated", tables[name])
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM simulated")
            con.unregister("simulated")
    aa = {"tags": ["aa"], "metrics": {"primary": ["purchase"], "secondary": ["revenue"]},
          "analysis": {"datasource": "events", "cuped": False}}  # fmt: skip
    for collection, body in registry_objects():
        if collection == "data-sources" or body["key"] in ("views", "revenue_per_view"):
            continue  # those need the warehouse's identity join
        changes = {"fact-tables": {"datasource": "events"}, "experiments": aa}.get(collection, {})
        platform.registry.save(collection, {**body, **changes}, SETUP)
    return analysis.run(platform, "planted")


def control_users(tables: dict[str, pa.Table]) -> tuple[Any, Any]:
    """Per control user: bought after exposure (0/1) and revenue after exposure."""
    exposures = tables["exposures"].to_pandas()
    events = tables["events"].to_pandas()
    first = exposures.groupby("hash_value").agg(
        at=("timestamp", "min"), arm=("variation_id", "min")
    )
    orders = events[events.name == "purchase"].merge(first, left_on="user_id", right_index=True)
    post = orders[(orders.timestamp >= orders["at"]) & (orders.timestamp < END)]
    revenue = post.groupby("user_id")["value"].sum().reindex(first.index, fill_value=0.0)
    bought = revenue.index.isin(post.user_id).astype(float)
    control = (first.arm == 0).to_numpy()
    return bought[control], revenue.to_numpy()[control]


def daily_units(tables: dict[str, pa.Table], now: datetime) -> float:
    """Distinct units exposed in the 28 days before ``now``, per day since the first of them."""
    exposures = tables["exposures"].to_pandas()
    seen = exposures[exposures.timestamp >= now - timedelta(days=28)]
    first = seen.timestamp.min().to_pydatetime()
    return float(seen.hash_value.nunique() / ((now - first).total_seconds() / 86400))


def save(platform: Platform, collection: str, body: dict[str, Any], message: str = "") -> None:
    actor = ANN if collection == "briefs" else SETUP
    platform.registry.save(collection, body, actor, message=message)


def edit(platform: Platform, key: str, message: str, **changes: Any) -> Brief:
    brief = KnowledgeBase(platform).brief(key)
    after = Brief.model_validate({**brief.model_dump(), **changes})
    platform.registry.save("briefs", after, ANN, message=message)
    return after


def refused(action: Any, *args: Any) -> str:
    with pytest.raises(LifecycleError) as caught:
        action(*args)
    return str(caught.value)


# -- 1. the lifecycle ---------------------------------------------------------------------------


def test_a_brief_goes_from_idea_to_shipped_and_every_guard_holds(
    platform: Platform, tables: dict[str, pa.Table], clock: Clock
) -> None:
    load_aa(platform, tables)
    kb = KnowledgeBase(platform)
    save(platform, "knowledge-settings", {"key": "default", "taxonomy": {"tags": ["pricing"]}})
    save(platform, "brief-templates", {
        "key": "growth", "projects": ["default"],
        "required_fields": ["hypothesis", "metrics.primary", "team"],
        "questions": [{"key": "risk", "label": "What could go wrong?"}],
    })  # fmt: skip
    save(platform, "experiments", {
        "key": "free-shipping", "metrics": {"primary": ["purchase"]},
        "analysis": {"datasource": "events", "cuped": False},
    })  # fmt: skip
    half = {"change": HYPOTHESIS["change"], "result": HYPOTHESIS["result"]}
    save(platform, "briefs", {
        "key": "free-shipping", "name": "Free shipping over $50", "owners": ["bob@x.io"],
        "experiment": "free-shipping", "template": "growth", "hypothesis": half,
        "tags": ["pricing", "misc"], "metrics": {"primary": ["purchase"]},
        "criteria": {"mde": 0.2}, "surface": "checkout",
    }, "created")  # fmt: skip
    key, half_metrics = "free-shipping", {"primary": ["purchase"]}
    assert kb.move(key, "planned", ANN).stage == "planned"
    assert "use submit" in refused(kb.move, key, "running", ANN)

    problems = refused(kb.submit, key, ANN)  # every writing problem at once
    assert "hypothesis: missing audience, reason" in problems
    assert "missing: hypothesis, team, answers.risk" in problems and "tags: 'misc'" in problems
    edit(platform, key, "hypothesis completed", hypothesis=HYPOTHESIS)
    problems = refused(kb.submit, key, ANN)
    assert "missing: team, answers.risk" in problems and "hypothesis:" not in problems
    edit(platform, key, "template answered", team="growth", answers={"risk": "margin"})
    assert refused(kb.submit, key, ANN) == "not in the taxonomy: tags: 'misc'"
    edit(platform, key, "tags fixed", tags=["pricing"])
    submitted = kb.submit(key, ANN)
    assert (submitted.stage, submitted.submitted_by) == ("in_review", "ann@x.io")

    for author in (ANN, "user:Bob@X.io"):  # the submitter, an owner (in any case)
        assert "someone other than its authors" in refused(kb.review, key, author, "approve")
    kb.review(key, CARL, "approve", "looks good")
    approved = approval(kb.brief(key))
    assert approved is not None and (approved.reviewer, approved.at) == ("carl@x.io", clock.now)

    edited = edit(platform, key, "description edited", description="Threshold from finance.")
    assert approval(edited) is None and approval(kb.brief(key)) is None
    assert "needs an approval" in refused(kb.launch, key, DANA)
    kb.review(key, CARL, "approve")
    assert [i.key for i in kb.checklist(kb.brief(key)) if i.status == "fail"] == ["metrics"]
    assert "metrics.guardrails: choose at least one" in refused(kb.launch, key, DANA)
    assert platform.registry.get("experiments", key).status == "draft"  # type: ignore[attr-defined]

    edit(platform, key, "guardrail added", metrics={**half_metrics, "guardrails": ["revenue"]})
    assert approval(kb.brief(key)) is None
    kb.review(key, CARL, "approve")
    assert not checklist.blocking(kb.checklist(kb.brief(key)))
    clock.now = NOW + timedelta(hours=1)
    assert kb.launch(key, DANA).stage == "running"
    started = platform.registry.get("experiments", key)
    assert isinstance(started, Experiment) and started.status == "running"
    assert [(p.started_at, p.ended_at) for p in started.phases] == [(clock.now, None)]
    [latest] = platform.registry.audit(collection_name="experiments", key=key, limit=1)
    assert latest.actor == DANA and stage_of(platform, kb.brief(key)) == "running"

    assert "stop free-shipping before concluding" in refused(kb.conclude, key, CARL, "won")
    clock.now = NOW + timedelta(days=15)
    ended = [started.phases[0].model_copy(update={"ended_at": clock.now})]
    stopped = started.model_copy(update={"status": "stopped", "phases": ended})
    platform.registry.save("experiments", stopped, DANA)
    assert stage_of(platform, kb.brief(key)) == "analysing"
    assert "only a won experiment ships" in refused(kb.ship, key, DANA)

    learnt = "Free shipping did not move purchases."
    decided = kb.conclude(key, CARL, "lost", learnt)
    assert decided.stage == "decided" and stage_of(platform, kb.brief(key)) == "decided"
    c = kb.brief(key).conclusion
    assert (c.outcome, c.learnings, c.decided_by, c.decided_at) == (
        "lost", learnt, "carl@x.io", clock.now,
    )  # fmt: skip
    assert "(this one: lost)" in refused(kb.ship, key, DANA)
    kb.conclude(key, CARL, "won")
    assert kb.ship(key, DANA).stage == "shipped" and kb.brief(key).conclusion.learnings == learnt

    revisions = platform.registry.revisions("briefs", key)  # one per move, saying which
    assert [(r.message, r.author) for r in revisions] == [
        ("created", ANN), ("idea → planned", ANN), ("hypothesis completed", ANN),
        ("template answered", ANN), ("tags fixed", ANN), ("submitted for review", ANN),
        ("review: approve", CARL), ("description edited", ANN), ("review: approve", CARL),
        ("guardrail added", ANN), ("review: approve", CARL), ("launched", DANA),
        ("concluded: lost", CARL), ("concluded: won", CARL), ("shipped", DANA),
    ]  # fmt: skip


# -- 2. checklist items, one at a time ------------------------------------------------------------


def brief(key: str = "new", **fields: Any) -> Brief:
    fields.setdefault("name", key)
    fields.setdefault("stage", "in_review")
    return Brief(key=key, **fields)


def changed(b: Brief, **changes: Any) -> Brief:
    return Brief.model_validate({**b.model_dump(), **changes})


def context(b: Brief, *others: Record, experiment: Experiment | None = None, **fields: Any) -> Any:
    record = record_of(b, experiment, None, synthetic=False)
    fields.setdefault("settings", KnowledgeSettings(key="default"))
    return checklist.Context(brief=b, record=record, records=[record, *others], now=NOW, **fields)


def item(check: checklist.Check, b: Brief, *others: Record, **fields: Any) -> checklist.Item:
    return check(context(b, *others, **fields))


def test_hypothesis_item_names_the_missing_parts() -> None:
    done = item(checklist.hypothesis, brief(hypothesis=HYPOTHESIS))
    assert done.status == "pass" and HYPOTHESIS["reason"] in done.detail
    gaps = item(checklist.hypothesis, brief(hypothesis={"change": "x", "result": " "}))
    assert (gaps.status, gaps.detail) == ("fail", "hypothesis: missing audience, result, reason")


def test_template_item() -> None:
    t = BriefTemplate(
        key="growth", projects=["default"], required_fields=["hypothesis", "criteria.mde"],
        questions=[{"key": "risk", "label": "R"}, {"key": "more", "label": "M", "required": False}],
    )  # fmt: skip
    full = {"hypothesis": HYPOTHESIS, "criteria": {"mde": 0.1}, "answers": {"risk": "low"}}

    def check(**fields: Any) -> tuple[str, str]:
        got = item(checklist.template, brief(**fields), templates=[t])
        return got.status, got.detail

    assert check(template="growth", **full) == ("pass", "growth")
    missing = "missing: hypothesis, criteria.mde, answers.risk"
    assert check(template="growth", answers={"risk": "  "}) == ("fail", missing)
    assert check(**full) == ("fail", "template: project requires one of growth")
    assert check(project="mobile", **full)[0] == "skip"  # nothing required there
    assert check(project="mobile", template="nope") == ("fail", "template: 'nope' does not exist")


def test_taxonomy_item() -> None:
    tax = {"tags": ["pricing", "ux"], "surfaces": ["checkout", "search"], "teams": []}
    settings = KnowledgeSettings(key="default", taxonomy=tax)
    fine = brief(tags=["ux"], surface="search", team="anything")
    assert item(checklist.taxonomy, fine, settings=settings).status == "pass"
    wrong = item(checklist.taxonomy, brief(tags=["ux", "misc"], surface="home"), settings=settings)
    assert wrong.status == "fail"
    assert wrong.detail == (
        "not in the taxonomy: tags: 'misc'; surface: 'home' (allowed: checkout, search)"
    )
    anything = item(checklist.taxonomy, brief(tags=["misc"], surface="home"))
    assert anything.status == "pass"  # an empty taxonomy allows anything


def test_metrics_item_names_unknown_metrics() -> None:
    known = frozenset({"purchase", "revenue"})
    ok = brief(metrics={"primary": ["purchase"], "guardrails": ["revenue"]})
    assert item(checklist.metrics, ok, known_metrics=known).status == "pass"
    none = item(checklist.metrics, brief(), known_metrics=known)
    assert none.detail == "metrics.primary: choose one; metrics.guardrails: choose at least one"
    bad = brief(metrics={"primary": ["signups"], "guardrails": ["revenue", "refunds"]})
    got = item(checklist.metrics, bad, known_metrics=known)
    assert got.status == "fail"
    assert got.detail == "metric 'signups' does not exist; metric 'refunds' does not exist"


BASELINE = planning.Baseline(0.1, 0.09, "purchase", "past")
TRAFFIC = planning.Traffic(500.0, 14000, 28.0, "id", "events")


def test_sample_size_item() -> None:
    b = brief(criteria={"mde": 0.2}, metrics={"primary": ["purchase"]})
    blind = planning.feasibility(b, baseline=None, traffic=None)
    failed = item(checklist.sample_size, b, feasibility=blind)
    assert failed.status == "fail" and "no baseline" in failed.detail
    assert "no traffic" in failed.detail
    days = math.ceil(float(stats.sample_size(mean=0.1, variance=0.09, mde=0.2)) / 500.0)
    assert 7 < days < checklist.LONG_DAYS  # the premise: longer than min_days, not long
    feasible = planning.feasibility(b, baseline=BASELINE, traffic=TRAFFIC)
    passed = item(checklist.sample_size, b, feasibility=feasible)
    assert passed.status == "pass" and f": {days} days" in passed.detail
    start = date(2026, 4, 1)
    short = b.model_copy(update={"planned_start": start, "planned_end": start + timedelta(days=3)})
    too_short = item(checklist.sample_size, short, feasibility=feasible)
    assert too_short.status == "fail" and "planned window is 4 days" in too_short.detail
    slow = changed(b, sizing={"audience_share": 0.05})
    long = planning.feasibility(slow, baseline=BASELINE, traffic=TRAFFIC)
    assert item(checklist.sample_size, slow, feasibility=long).status == "warn"


def test_sample_size_item_counts_the_planned_end_day_like_the_calendar() -> None:
    b = brief(criteria={"mde": 0.5, "min_days": 7}, planned_start=date(2026, 4, 1),
              planned_end=date(2026, 4, 7), stage="planned")  # fmt: skip
    feasible = planning.feasibility(b, baseline=BASELINE, traffic=TRAFFIC)
    assert feasible.days is not None and feasible.days <= 7
    [entry] = calendar.entries([record_of(b, None, None, synthetic=False)], now=NOW)
    assert entry.end - entry.start == timedelta(days=7)  # what the calendar shows
    assert item(checklist.sample_size, b, feasibility=feasible).status == "pass"


def test_conflicts_item() -> None:
    plan = {"surface": "checkout", "stage": "planned", "planned_start": date(2026, 4, 1)}
    mine = brief("mine", planned_end=date(2026, 4, 20), **plan)
    other = brief("other", **{**plan, "planned_start": date(2026, 4, 15)},
                  planned_end=date(2026, 5, 1))  # fmt: skip
    theirs = record_of(other, None, None, synthetic=False)
    clash = item(checklist.conflicts, mine, theirs)
    assert clash.status == "fail" and clash.detail == "other (same surface 'checkout')"
    before = mine.model_copy(update={"planned_end": date(2026, 4, 14)})
    assert item(checklist.conflicts, before, theirs).status == "pass"
    elsewhere = mine.model_copy(update={"surface": "search"})
    assert item(checklist.conflicts, elsewhere, theirs).status == "pass"
    undated = brief("mine", surface="checkout", stage="planned")
    assert item(checklist.conflicts, undated, theirs).status == "warn"


def aa(key: str, attribute: str = "id") -> Record:
    e = Experiment(key=key, hash_attribute=attribute, status="stopped",
                   phases=[Phase(started_at=NOW - timedelta(days=40), ended_at=NOW)])  # fmt: skip
    return record_of(brief(key, change_type="aa", experiment=key), e, None, synthetic=False)


def test_aa_test_item() -> None:
    mine = Experiment(key="new", hash_attribute="id")
    b = brief(experiment="new")
    days = KnowledgeSettings(key="default").aa_max_age_days
    recent, old = NOW - timedelta(days=days - 1), NOW - timedelta(days=days + 1)

    def status(*tests: tuple[Record, datetime, bool]) -> checklist.Item:
        return checklist.aa_test(context(b, experiment=mine, aa_tests=list(tests)))

    assert status((aa("aa-1"), recent, True)).status == "pass"
    assert status((aa("aa-1"), recent, True)).detail == "aa-1 passed"
    assert status((aa("aa-1"), old, True)).status == "fail"
    assert status((aa("aa-1", "device_id"), recent, True)).status == "fail"
    failed = status((aa("aa-1"), recent, False))
    assert failed.status == "fail" and "aa-1 failed" in failed.detail
    assert status((aa("aa-1"), recent, False), (aa("aa-2"), recent, True)).status == "pass"
    assert "no A/A test on 'id' in 90 days" in status().detail


def past(key: str, outcome: str, **fields: Any) -> Record:
    fields = {"hypothesis": HYPOTHESIS, "surface": "checkout", **fields}
    b = brief(key, stage="decided", conclusion={"outcome": outcome}, **fields)
    return record_of(b, None, None, synthetic=False)


def test_duplicates_item() -> None:
    unrelated = past("dark-mode", "won", hypothesis={"change": "a dark colour theme for settings"},
                     surface="settings", name="Dark mode")  # fmt: skip
    mine = brief(hypothesis=HYPOTHESIS, surface="checkout", name="Free shipping threshold")

    def check(b: Brief, *records: Record) -> checklist.Item:
        matches = similar.similar(b, [*records, unrelated])
        return checklist.duplicates(context(b, *records, unrelated, matches=matches))

    lost = past("old-shipping", "lost", name="Free delivery over 50")
    got = check(mine, lost)
    assert got.status == "fail" and got.detail.startswith("near-duplicate of old-shipping (lost")
    assert "dark-mode" not in got.detail
    justified = mine.model_copy(update={"justification": "Prices changed since."})
    assert check(justified, lost).status == "warn"
    won = past("old-shipping", "won", name="Free delivery over 50")
    assert check(mine, won).status == "warn" and "old-shipping (won" in check(mine, won).detail
    assert check(mine).status == "pass"


# -- 3. planning from real data ------------------------------------------------------------------


def test_traffic_is_distinct_units_per_observed_day(
    platform: Platform, tables: dict[str, pa.Table], clock: Clock
) -> None:
    load_aa(platform, tables)
    exposures = tables["exposures"].to_pandas()
    for now in (NOW, START + timedelta(days=30)):  # all ten days; the last 28 days only
        clock.now = now
        seen = exposures[exposures.timestamp >= now - timedelta(days=28)]
        observed = (now - seen.timestamp.min().to_pydatetime()).total_seconds() / 86400
        got = planning.measure_traffic(platform, hash_attribute="id")
        assert got is not None and got.units == seen.hash_value.nunique()
        assert got.daily_units == pytest.approx(daily_units(tables, now), rel=1e-9)
        assert got.days == pytest.approx(observed, abs=0.005)
    assert 0 < seen.hash_value.nunique() < 4000  # the window really cut some users off
    assert planning.measure_traffic(platform, hash_attribute="device_id") is None


def test_baseline_is_the_control_arm_from_the_newest_snapshot(
    platform: Platform, tables: dict[str, pa.Table]
) -> None:
    load_aa(platform, tables)
    bought, revenue = control_users(tables)
    records = KnowledgeBase(platform).records()
    p = bought.mean()
    purchase = planning.metric_baseline(records, "purchase")
    assert purchase is not None and purchase.source == "planted"
    assert purchase.mean == pytest.approx(p, rel=1e-12)
    assert purchase.variance == pytest.approx(p * (1 - p), rel=1e-12)
    spend = planning.metric_baseline(records, "revenue")
    assert spend is not None
    assert spend.mean == pytest.approx(revenue.mean(), rel=1e-9)
    assert spend.variance == pytest.approx(revenue.var(ddof=1), rel=1e-9)
    assert planning.metric_baseline(records, "views") is None


def test_feasibility_and_opportunity_from_measured_traffic_and_baseline(
    platform: Platform, tables: dict[str, pa.Table]
) -> None:
    load_aa(platform, tables)
    traffic = planning.measure_traffic(platform, hash_attribute="id")
    base = planning.metric_baseline(KnowledgeBase(platform).records(), "purchase")
    assert traffic is not None and base is not None
    sizing = {"audience_share": 0.4, "expected_lift": 0.15, "value_per_conversion": 30}
    b = brief(criteria={"mde": 0.15, "alpha": 0.1, "power": 0.9}, sizing=sizing)
    p = float(control_users(tables)[0].mean())
    n = float(stats.sample_size(mean=p, variance=p * (1 - p), mde=0.15, alpha=0.1, power=0.9))
    daily = daily_units(tables, NOW) * 0.4
    for arms, total in ((2, n), (3, n * 1.5)):
        f = planning.feasibility(b, baseline=base, traffic=traffic, arms=arms)
        assert f.problems == () and f.sample_size == pytest.approx(total, rel=1e-12)
        assert f.daily_units == pytest.approx(daily) and f.days == math.ceil(total / daily)
    stated = changed(b, sizing={**b.sizing.model_dump(), "reach_per_month": 3000})
    assert planning.feasibility(stated, baseline=base, traffic=traffic).days == math.ceil(n / 100)

    o = planning.opportunity(b, baseline=base, traffic=traffic)
    reach = daily * 30
    assert o.missing == () and o.reach_per_month == pytest.approx(reach)
    assert o.conversions_per_year == pytest.approx(reach * 12 * p * 0.15)
    assert o.impact_per_year == pytest.approx(reach * 12 * p * 0.15 * 30)
    blank = planning.opportunity(brief(), baseline=None, traffic=None)
    assert blank.missing == ("reach", "baseline", "expected_lift") and blank.impact_per_year is None


def test_scores_follow_the_usual_definitions() -> None:
    s = Scores(impact=6, confidence=7, ease=8, potential=5, importance=9, reach=1200, effort=4)
    assert planning.score(s, "ice") == 6 * 7 * 8
    assert planning.score(s, "pie") == pytest.approx((5 + 9 + 8) / 3, abs=1e-4)
    assert planning.score(s, "rice") == pytest.approx(1200 * 6 * 0.7 / 4)
    shares = s.model_copy(update={"confidence": 0.7})
    assert planning.score(shares, "rice") == pytest.approx(1200 * 6 * 0.7 / 4)
    assert planning.score(Scores(impact=6, confidence=7), "ice") is None
    assert planning.score(Scores(potential=5, ease=8), "pie") is None
    assert planning.score(Scores(reach=1200, impact=2, confidence=0.5), "rice") is None


# -- 4. the whole checklist on a realistic setup -----------------------------------------------


def test_the_full_checklist_reports_every_item(
    platform: Platform, tables: dict[str, pa.Table]
) -> None:
    load_aa(platform, tables)
    save(platform, "knowledge-settings", {"key": "default", "taxonomy": {"tags": ["pricing"]}})
    save(platform, "brief-templates", {"key": "growth", "projects": ["default"]})
    save(platform, "experiments", {"key": "free-shipping", "analysis": {"datasource": "events"}})
    start = NOW.date() + timedelta(days=1)
    save(platform, "briefs", {
        "key": "checkout-banner", "name": "Trust badges", "surface": "checkout",
        "hypothesis": {"change": "security seals beside the card form"}, "stage": "planned",
        "planned_start": str(start + timedelta(days=9)), "planned_end": str(start + timedelta(29)),
    })  # fmt: skip
    save(platform, "briefs", {
        "key": "free-delivery-2025", "name": "Free delivery over 50", "hypothesis": HYPOTHESIS,
        "surface": "checkout", "stage": "decided", "conclusion": {"outcome": "won"},
    })  # fmt: skip
    save(platform, "briefs", {
        "key": "free-shipping", "name": "Free shipping threshold", "hypothesis": HYPOTHESIS,
        "template": "growth", "experiment": "free-shipping", "tags": ["pricing"],
        "surface": "checkout", "stage": "in_review", "criteria": {"mde": 0.2},
        "metrics": {"primary": ["purchase"], "guardrails": ["revenue"]},
        "planned_start": str(start), "planned_end": str(start + timedelta(days=50)),
    })  # fmt: skip
    kb = KnowledgeBase(platform)
    p = float(control_users(tables)[0].mean())
    n = float(stats.sample_size(mean=p, variance=p * (1 - p), mde=0.2))
    days = math.ceil(n / daily_units(tables, NOW))
    assert 7 < days <= 50  # the premise: the plan is long enough

    items = {i.key: i for i in kb.checklist(kb.brief("free-shipping"))}
    assert list(items) == [fn.__name__ for fn in checklist.CHECKS]
    assert {k: i.status for k, i in items.items()} == {
        "hypothesis": "pass", "template": "pass", "taxonomy": "pass", "metrics": "pass",
        "sample_size": "pass", "conflicts": "fail", "aa_test": "pass", "duplicates": "warn",
    }  # fmt: skip
    assert f"{n:,.0f} units" in items["sample_size"].detail
    assert f": {days} days" in items["sample_size"].detail
    assert items["conflicts"].detail == "checkout-banner (same surface 'checkout')"
    assert items["aa_test"].detail == "planted passed"
    assert items["duplicates"].detail.startswith("similar to free-delivery-2025 (won")
    kb.review("free-shipping", CARL, "approve")
    assert "checkout-banner" in refused(kb.launch, "free-shipping", DANA)
