"""The demo organisation: everything the README promises is there, read back through public APIs.

One demo is built per module (4,000 simulated users, as the browser tests use) and inspected
through the registry, the analysis store, the event store, the playbook state, the knowledge base
and the SDK, the way the dashboard and the API read them.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

import liftkit
from liftkit import analysis
from liftkit.automation import ACTOR_PREFIX, Controller
from liftkit.automation import state as playbook_state
from liftkit.demo import Demo, build
from liftkit.knowledge import planning
from liftkit.knowledge.base import KnowledgeBase
from liftkit.platform import Platform
from liftkit.registry.experiments import Experiment
from liftkit.registry.features import Feature
from liftkit.registry.hygiene import stale_flags
from liftkit.registry.payload import compile_payload
from liftkit.registry.playbooks import Playbook
from liftkit.settings import Settings

KINDS = {"release", "experiment", "operational", "permission", "kill-switch"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Demo]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("demo"), controller=False)
    return settings, build(settings, users=4_000)


@pytest.fixture
def platform(built: tuple[Settings, Demo]) -> Iterator[Platform]:
    instance = Platform(built[0])
    yield instance
    instance.close()


def experiments(platform: Platform) -> list[Experiment]:
    return [e for e in platform.registry.all("experiments") if isinstance(e, Experiment)]


def exposed_units(settings: Settings, experiment: str) -> dict[int, int]:
    with duckdb.connect(str(settings.data_dir / "events.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT variation_id, count(DISTINCT hash_value) FROM exposures "
            "WHERE experiment_key = ? GROUP BY 1",
            [experiment],
        ).fetchall()
    return {int(v): int(n) for v, n in rows}


def test_the_admin_login_and_keys_work(built: tuple[Settings, Demo], platform: Platform) -> None:
    credentials = built[1].credentials
    user = platform.accounts.authenticate(credentials.admin_email, credentials.admin_password)
    assert user is not None and user.roles == {"*": "admin"}
    for token in (credentials.admin_key, credentials.sdk_key, credentials.ingest_key):
        assert platform.accounts.resolve_key(token) is not None
    assert len(platform.accounts.users()) > 1  # people who own and review things


def test_a_dozen_features_of_every_kind(platform: Platform) -> None:
    features = [f for f in platform.registry.all("features") if isinstance(f, Feature)]
    assert len(features) >= 12
    assert {f.kind for f in features} == KINDS
    assert all(f.owner and f.description for f in features)
    for kept in ("checkout-kill-switch", "dark-mode", "new-search", "pricing-page", "one-click"):
        assert platform.registry.find("features", kept) is not None


def test_some_flags_are_stale(platform: Platform) -> None:
    stale = stale_flags(platform.registry, platform.clock())
    assert len(stale) >= 2
    assert {"unchanging", "off-everywhere", "experiment-ended"} <= {f.category for f in stale}


def test_a_feature_has_an_unpublished_draft_with_a_diff(platform: Platform) -> None:
    drafts = []
    for feature in platform.registry.all("features"):
        revisions = platform.registry.revisions("features", feature.key)
        drafts += [(feature.key, r) for r in revisions if r.status == "draft"]
    assert drafts
    key, draft = drafts[0]
    live = platform.registry.get("features", key)
    assert draft.body != live.model_dump(mode="json")
    assert platform.registry.diff("features", key, draft.version)


def test_running_and_stopped_experiments_have_real_snapshots(
    built: tuple[Settings, Demo], platform: Platform
) -> None:
    settings = built[0]
    by_status: dict[str, list[Experiment]] = {}
    for experiment in experiments(platform):
        by_status.setdefault(experiment.status, []).append(experiment)
    assert len(by_status.get("running", [])) >= 2 and len(by_status.get("stopped", [])) >= 2
    assert by_status.get("draft")
    for experiment in by_status["running"] + by_status["stopped"]:
        snapshot = analysis.latest(platform.engine, experiment.key)
        assert snapshot is not None, experiment.key
        assert experiment.phases and snapshot.start == experiment.phases[-1].started_at.replace(
            microsecond=0
        )
        if experiment.status == "stopped":
            ended = experiment.phases[-1].ended_at
            assert ended is not None and snapshot.end == ended.replace(microsecond=0)
            # Every exposure of a stopped test falls in its phase: the snapshot counts them all.
            units = exposed_units(settings, experiment.key)
            counted = [snapshot.health.units[v.key] for v in experiment.variations]
            assert counted == [units.get(i, 0) for i in range(len(experiment.variations))]
        assert snapshot.results and sum(snapshot.health.units.values()) > 0


def test_the_finished_tests_kept_their_results(platform: Platform) -> None:
    one_click = platform.registry.get("experiments", "one-click-checkout")
    assert isinstance(one_click, Experiment)
    assert (one_click.status, one_click.result, one_click.released_variation) == (
        "stopped", "won", "treatment",
    )  # fmt: skip
    assert one_click.project == "checkout"
    results = {e.result for e in experiments(platform) if e.status == "stopped"}
    assert {"won", "lost", "inconclusive"} <= results


def test_the_running_pricing_test_was_analysed_over_time(
    built: tuple[Settings, Demo], platform: Platform
) -> None:
    demo = built[1]
    history = analysis.history(platform.engine, "pricing-2026")
    assert len(history) >= 3
    assert history[0].id == demo.snapshot.id  # build returns the newest
    times = [s.created_at for s in reversed(history)]
    units = [sum(s.health.units.values()) for s in reversed(history)]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert units == sorted(units) and units[0] < units[-1]
    assert units[-1] == sum(exposed_units(built[0], "pricing-2026").values()) == 4_000
    assert {p.date for p in demo.snapshot.series if p.metric == "purchase"}  # cumulative effect
    assert {m.metric for m in demo.snapshot.results} == {"purchase", "revenue", "refunds"}


def playbook_states(platform: Platform) -> dict[str, tuple[Playbook, playbook_state.State]]:
    out = {}
    for playbook in platform.registry.all("playbooks"):
        assert isinstance(playbook, Playbook)
        out[playbook.key] = (playbook, playbook_state.load(platform.engine, playbook.key))
    return out


def test_a_playbook_is_mid_ramp_and_holds_there(
    built: tuple[Settings, Demo], platform: Platform
) -> None:
    ramping = [
        (p, s)
        for p, s in playbook_states(platform).values()
        if s.status == "running" and 0 < s.stage < len(p.stages) - 1
    ]
    assert ramping
    playbook, state = ramping[0]
    experiment = platform.registry.get("experiments", playbook.experiment_key)
    assert isinstance(experiment, Experiment) and experiment.status == "running"
    assert experiment.current_coverage() == pytest.approx(playbook.stages[state.stage].coverage)
    decided = [e.action for e in playbook_state.timeline(platform.engine, playbook.key) if e.step]
    assert decided[:2] == ["advance", "start"]  # newest first: started, then ramped by itself
    # The served dashboard's controller, on the real clock, leaves it where it is.
    controller = Controller(platform)
    try:
        assert controller.step(playbook.key).action == "hold"
    finally:
        controller.notifier.close()
    assert playbook_state.load(platform.engine, playbook.key).stage == state.stage


def test_the_controller_rolled_a_rollout_back_on_a_guardrail(platform: Platform) -> None:
    rolled = [
        (p, s)
        for p, s in playbook_states(platform).values()
        if s.status == "rolled-back" and s.outcome == "guardrail"
    ]
    assert rolled
    playbook, _ = rolled[0]
    key = playbook.experiment_key
    audit = platform.registry.audit(collection_name="experiments", key=key, limit=5)
    stop = next(a for a in audit if a.action == "update")
    assert stop.actor == f"{ACTOR_PREFIX}{playbook.key}"
    assert "guardrail breached" in stop.message
    experiment = platform.registry.get("experiments", key)
    assert isinstance(experiment, Experiment)
    assert (experiment.status, experiment.result) == ("stopped", "lost")
    # Everyone is served control again.
    assert playbook.feature is not None
    payload = compile_payload(
        platform.registry.snapshot(), environment="production", now=platform.clock()
    ).payload
    client = liftkit.Client(payload=payload, streaming=False)
    try:
        values = {
            client.for_user({"id": f"u{i}"}).evaluate(playbook.feature).value for i in range(50)
        }
    finally:
        client.close()
    assert values == {experiment.variations[0].payload}


def test_briefs_have_learnings_and_are_searchable(platform: Platform) -> None:
    kb = KnowledgeBase(platform)
    concluded = {r.key: r for r in kb.records() if r.brief.conclusion.outcome is not None}
    assert {r.brief.conclusion.outcome for r in concluded.values()} >= {
        "won",
        "lost",
        "inconclusive",
    }
    assert all(r.brief.conclusion.learnings for r in concluded.values())
    shipped = [r for r in concluded.values() if r.stage == "shipped"]
    assert shipped and all(r.effects for r in shipped)  # effects from the real snapshot
    record = next(iter(concluded.values()))
    word = max(record.brief.conclusion.learnings.split(), key=len).strip(".,:;()")
    hits, total = kb.search(word)
    assert total and record.key in {h.key for h in hits}
    linked = {r.key for r in kb.records() if not r.synthetic and r.experiment is not None}
    assert {"pricing-2026", "one-click-checkout"} <= linked


def test_ideas_are_scored(platform: Platform) -> None:
    kb = KnowledgeBase(platform)
    ideas = kb.ideas()
    assert len(ideas) >= 3
    framework = kb.settings().scoring
    for idea in ideas:
        assert idea.score is not None
        assert idea.score == planning.score(idea.record.brief.scores, framework)
    scores = [i.score or 0.0 for i in ideas]
    assert scores == sorted(scores, reverse=True)
    stages = {i.record.stage for i in ideas}
    assert {"idea", "planned", "in_review"} <= stages


def test_the_calendar_reports_a_conflict(platform: Platform) -> None:
    kb = KnowledgeBase(platform)
    entries, conflicts = kb.calendar()
    assert conflicts
    by_key = {e.key: e for e in entries}
    for conflict in conflicts:
        a, b = by_key[conflict.a], by_key[conflict.b]
        assert a.project == b.project and a.start < b.end and b.start < a.end
    stages = {by_key[k].stage for c in conflicts for k in (c.a, c.b)}
    assert "running" in stages and stages & {"planned", "in_review"}


def test_metrics_and_fact_tables_are_kept(platform: Platform) -> None:
    for name, keys in {
        "metrics": ("purchase", "revenue", "refunds"),
        "fact-tables": ("orders",),
        "projects": ("checkout",),
    }.items():
        for key in keys:
            assert platform.registry.find(name, key) is not None, (name, key)


def test_the_audit_log_has_a_history(platform: Platform) -> None:
    entries = platform.registry.audit(limit=500)
    actors = {e.actor for e in entries}
    assert len([a for a in actors if a.startswith("user:")]) >= 3
    assert any(a.startswith(ACTOR_PREFIX) for a in actors)
    ages = [(platform.clock() - e.at).days for e in entries]
    assert max(ages) >= 90 and min(ages) <= 1
