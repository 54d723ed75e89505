"""Experiment and playbook pages in-process: list, wizard, results against the API, stopping.

One app on SQLite serves the module (building one and analysing takes a few seconds). Its event
store holds the planted data of the analysis tests, so ``planted`` has a real snapshot; tests
that change experiments create their own under keys of their own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from analysis_support import ACTOR, Planted, simulate
from liftkit import analysis
from liftkit.analysis import store as snapshot_store
from liftkit.app import create_app
from liftkit.automation import state as playbook_state
from liftkit.platform import Platform
from liftkit.registry.accounts import Role
from liftkit.registry.experiments import Experiment
from liftkit.settings import Settings
from liftkit.web._format import pct, pvalue
from test_analysis_api import builtin_objects, fill_store

HX = {"X-Liftkit-Csrf": "1", "HX-Request": "true"}
PASSWORD = "correct horse battery"
USERS: dict[str, Role] = {
    "ada@example.com": "admin",
    "val@example.com": "viewer",
    "ann@example.com": "analyst",
}


@dataclass
class Env:
    platform: Platform
    client: TestClient
    api_key: str

    def login(self, email: str = "ada@example.com") -> None:
        data = {"email": email, "password": PASSWORD}
        response = self.client.post("/login", data=data, headers=HX)
        assert response.status_code == 204, response.text

    def api(self, path: str) -> Any:
        response = self.client.get(
            f"/api/v1{path}", headers={"Authorization": f"Bearer {self.api_key}"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def experiment(self, key: str) -> Experiment:
        found = self.platform.registry.get("experiments", key)
        assert isinstance(found, Experiment)
        return found

    def running(self, key: str, **extra: Any) -> Experiment:
        """A running experiment of one's own, made through the registry."""
        started = self.platform.clock() - timedelta(days=3)
        phases = [{"name": "main", "started_at": started.isoformat()}]
        body = {"key": key, "status": "running", "owner": "test", "phases": phases, **extra}
        self.platform.registry.save("experiments", body, ACTOR)
        return self.experiment(key)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir: Path = tmp_path_factory.mktemp("web-experiments") / "data"
    platform = Platform(Settings(data_dir=data_dir, controller=False))
    platform.bootstrap()
    try:
        fill_store(data_dir / "events.duckdb", simulate(Planted(users=2000, lift=0.3, seed=3)))
        for collection, body in builtin_objects():
            platform.registry.save(collection, body, ACTOR)
        analysis.run(platform, "planted", actor="test")
        for email, role in USERS.items():
            platform.accounts.create_user(email, PASSWORD, name=email, roles={"*": role})
        key, _ = platform.accounts.create_key("secret", created_by="test", role="admin")
        with TestClient(create_app(platform)) as client:
            yield Env(platform, client, key)
    finally:
        platform.close()


@pytest.fixture
def ada(env: Env) -> Env:
    env.login("ada@example.com")
    return env


class Cells(HTMLParser):
    """Every element with ``data-field``: its attributes and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-field" in a:
            cell = {**a, "text": ""}
            self.found.append(cell)
            self._open.append(cell)
        elif self._open:
            self._open.append({})

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[0]:
            self._open[0]["text"] += data


def cells(page: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    parser = Cells()
    parser.feed(page)
    return {
        (c["data-metric"], c["data-variation"], c["data-field"]): c
        for c in parser.found
        if "data-metric" in c
    }


def section(page: str, ident: str) -> str:
    match = re.search(rf'<section id="{ident}".*?</section>', page, re.S)
    assert match is not None, ident
    return match.group(0)


# -- the list ---------------------------------------------------------------------------------


def test_the_list_groups_experiments_by_status_and_filters_by_it(ada: Env) -> None:
    reg = ada.platform.registry
    reg.save("experiments", {"key": "list-draft"}, ACTOR)
    ada.running("list-running")
    reg.save("experiments", {"key": "list-stopped", "status": "stopped", "result": "lost"}, ACTOR)
    reg.save("experiments", {"key": "list-archived", "status": "stopped", "archived": True}, ACTOR)
    page = ada.client.get("/experiments").text
    for status in ("draft", "running", "stopped", "archived"):
        assert f'data-key="list-{status}"' in section(page, f"status-{status}")
    assert 'data-key="list-archived"' not in section(page, "status-stopped")
    assert "badge bad" in section(page, "status-stopped")  # the lost result
    running = ada.client.get("/experiments", params={"status": "running"}).text
    assert 'data-key="list-running"' in running and 'data-key="list-draft"' not in running
    assert ada.client.get("/experiments", params={"status": "nonsense"}).status_code == 422


# -- the wizard -------------------------------------------------------------------------------


def test_the_wizard_creates_a_draft_step_by_step_and_start_runs_it(ada: Env) -> None:
    c = ada.client
    first = c.get("/experiments/new").text
    assert '<ol class="steps">' in first and 'aria-current="step">1. Overview' in first
    overview = {"key": "wizard-one", "name": "Wizard one", "hypothesis": "it helps",
                "owner": "ada", "project": "default", "tags": "a, b"}  # fmt: skip
    response = c.post("/experiments/new", data=overview, headers=HX)
    assert response.status_code == 204, response.text
    assert response.headers["HX-Redirect"] == "/experiments/wizard-one/setup/traffic"
    assert ada.experiment("wizard-one").status == "draft"
    assert 'aria-current="step">2. Traffic' in c.get(response.headers["HX-Redirect"]).text
    traffic = {"variation_key": ["control", "blue", ""], "variation_name": ["Control", "Blue", ""],
               "variation_weight": ["40", "60", ""], "coverage": "50", "hash_attribute": "id",
               "namespace": ""}  # fmt: skip
    response = c.post("/experiments/wizard-one/setup/traffic", data=traffic, headers=HX)
    assert response.headers["HX-Redirect"].endswith("/setup/targeting"), response.text
    targeting = {"condition": '{"country": "US"}'}
    response = c.post("/experiments/wizard-one/setup/targeting", data=targeting, headers=HX)
    assert response.headers["HX-Redirect"].endswith("/setup/metrics"), response.text
    roles = {"role-purchase": "primary", "role-revenue": "guardrails", "engine": "bayesian"}
    response = c.post("/experiments/wizard-one/setup/metrics", data=roles, headers=HX)
    assert response.headers["HX-Redirect"] == "/experiments/wizard-one", response.text

    made = ada.experiment("wizard-one")
    assert (made.status, made.name, made.owner, made.tags) == (
        "draft",
        "Wizard one",
        "ada",
        ["a", "b"],
    )
    assert [(v.key, v.name, v.weight) for v in made.variations] == [
        ("control", "Control", 0.4), ("blue", "Blue", 0.6)]  # fmt: skip
    assert (made.coverage, made.condition) == (0.5, {"country": "US"})
    assert (made.metrics.primary, made.metrics.guardrails) == (["purchase"], ["revenue"])
    assert made.analysis.engine == "bayesian"
    trail = ada.platform.registry.audit(collection_name="experiments", key="wizard-one")
    assert {a.actor for a in trail} == {"user:ada@example.com"} and len(trail) >= 5

    assert 'hx-post="/experiments/wizard-one/start"' in c.get("/experiments/wizard-one").text
    assert c.post("/experiments/wizard-one/start", headers=HX).status_code == 204
    started = ada.experiment("wizard-one")
    assert started.status == "running" and len(started.phases) == 1
    assert started.phases[0].coverage == 0.5
    again = c.post("/experiments/wizard-one/start", headers=HX)
    assert again.status_code == 409  # only a draft starts
    assert c.get("/experiments/wizard-one/setup/traffic").status_code == 409


@pytest.mark.parametrize(
    ("step", "data", "field"),
    [
        ("traffic", {"variation_key": ["control", "b"], "variation_weight": ["50", "60"],
                     "hash_attribute": "id"}, "variation_weight"),
        ("traffic", {"variation_key": ["control"], "hash_attribute": "id"}, "variation_key"),
        ("traffic", {"variation_key": ["a", "b"], "coverage": "150", "hash_attribute": "id"},
         "coverage"),
        ("targeting", {"condition": "{not json"}, "condition"),
        ("metrics", {"role-purchase": "secondary"}, "primary"),
    ],
)  # fmt: skip
def test_a_bad_field_is_a_422_naming_it_and_changes_nothing(
    ada: Env, step: str, data: dict[str, Any], field: str
) -> None:
    key = f"bad-{step}-{field}".replace("_", "-")
    if ada.platform.registry.find("experiments", key) is None:
        ada.platform.registry.save("experiments", {"key": key}, ACTOR)
    before = ada.platform.registry.revisions("experiments", key)
    response = ada.client.post(f"/experiments/{key}/setup/{step}", data=data, headers=HX)
    assert response.status_code == 422
    assert response.text.count(f"{field}:") == 1 and response.headers["HX-Retarget"] == "#flash"
    assert ada.platform.registry.revisions("experiments", key) == before


def test_a_bad_key_in_the_first_step_creates_nothing(ada: Env) -> None:
    response = ada.client.post("/experiments/new", data={"key": "no spaces!"}, headers=HX)
    assert response.status_code == 422 and "key:" in response.text
    assert ada.platform.registry.find("experiments", "no spaces!") is None
    taken = ada.client.post("/experiments/new", data={"key": "planted"}, headers=HX)
    assert taken.status_code == 422 and "key: experiment &#x27;planted&#x27; exists" in taken.text


# -- results ----------------------------------------------------------------------------------


def test_results_show_the_same_numbers_as_the_api(ada: Env) -> None:
    page = ada.client.get("/experiments/planted/results").text
    shown = re.search(r'data-snapshot="(\d+)"', page)
    assert shown is not None
    snapshot = ada.api(f"/snapshots/{shown.group(1)}")
    assert snapshot == ada.api("/experiments/planted/snapshots/latest")
    found = cells(page)
    compared = 0
    for metric in snapshot["results"]:
        control = metric["variations"][0]
        for v in metric["variations"][1:]:
            at = (metric["metric"], v["variation"])
            change = found[(*at, "change")]
            assert float(change["data-value"]) == v["effect"]
            assert change["text"].strip() == pct(v["effect"], signed=True)
            p_value = found[(*at, "p_value")]
            assert float(p_value["data-value"]) == v["p_value"]
            assert p_value["text"].strip() == pvalue(v["p_value"])
            assert int(found[(*at, "units")]["data-value"]) == v["units"]
            assert int(found[(*at, "control_units")]["data-value"]) == control["units"]
            assert float(found[(*at, "baseline")]["data-value"]) == v["baseline"]
            ci = found[(*at, "ci")]
            assert (float(ci["data-low"]), float(ci["data-high"])) == (v["ci_low"], v["ci_high"])
            row = re.search(
                rf'<tr class="(\w+)" data-metric="{at[0]}" data-variation="{at[1]}"', page
            )
            assert row is not None
            expected = {"win": "good", "lose": "bad"}.get(v["significance"], "neutral")
            assert row.group(1) == expected
            compared += 1
    assert compared == len(snapshot["results"]) * (len(snapshot["variations"]) - 1) >= 2
    # The planted lift is real: the primary metric is significantly better and green.
    assert snapshot["results"][0]["variations"][1]["significance"] == "win"
    assert f"p = {pvalue(snapshot['health']['srm_p_value'])}" in page
    assert 'data-health="srm"' in page and "flash error" not in section(page, "results-primary")
    countries = {s["value"] for s in snapshot["dimensions"] if s["dimension"] == "country"}
    assert countries and all(f'data-value-of="{c}"' in page for c in countries)
    figures = re.findall(r'<figure class="chart".*?<script type="application/json">(.*?)</script>',
                         page, re.S)  # fmt: skip
    specs = [json.loads(f) for f in figures]
    first = [p for p in snapshot["series"] if p["metric"] == snapshot["results"][0]["metric"]]
    assert specs and specs[0]["series"][0]["values"] == [p["effect"] for p in first]


def test_a_sample_ratio_mismatch_is_a_red_banner_and_older_snapshots_can_be_picked(
    ada: Env,
) -> None:
    ada.running("srm-copy")
    real = analysis.latest(ada.platform.engine, "planted")
    assert real is not None
    health = real.health.model_copy(update={"srm": True, "srm_p_value": 1e-6})
    for h in (real.health, health):
        copy = real.model_copy(update={"experiment": "srm-copy", "health": h})
        snapshot_store.save(ada.platform.engine, copy)
    older, latest = sorted(s.id or 0 for s in analysis.history(ada.platform.engine, "srm-copy"))
    page = ada.client.get("/experiments/srm-copy/results").text
    assert re.search(r'class="flash error" role="alert" data-health="srm"', page)
    assert "Sample ratio mismatch (p = &lt; 0.001)" in page
    assert f'<option value="{older}">' in page and f'value="{latest}" selected' in page
    picked = ada.client.get("/experiments/srm-copy/results", params={"snapshot": older}).text
    assert 'role="alert" data-health="srm"' not in picked and f'data-snapshot="{older}"' in picked
    other = ada.client.get("/experiments/planted/results", params={"snapshot": older})
    assert other.status_code == 404


def test_run_analysis_needs_the_analyst_role_and_stores_a_snapshot(env: Env) -> None:
    env.login("val@example.com")
    assert env.client.post("/experiments/planted/analyse", headers=HX).status_code == 403
    assert "Run analysis now" not in env.client.get("/experiments/planted/results").text
    env.login("ann@example.com")
    before = len(analysis.history(env.platform.engine, "planted"))
    response = env.client.post("/experiments/planted/analyse", headers=HX)
    assert response.headers["HX-Redirect"] == "/experiments/planted/results"
    history = analysis.history(env.platform.engine, "planted")
    assert len(history) == before + 1 and history[0].created_by == "user:ann@example.com"


# -- stopping ---------------------------------------------------------------------------------


def test_stopping_records_the_outcome_and_release_in_the_audit_trail(ada: Env) -> None:
    ada.running("stop-won", variations=[{"key": "control"}, {"key": "treatment"}])
    page = ada.client.get("/experiments/stop-won").text
    assert '<dialog id="stop-dialog"' in page and 'data-open="stop-dialog"' in page
    form = {"outcome": "won", "release": "treatment", "rollout": "on", "reason": "clear win"}
    response = ada.client.post("/experiments/stop-won/stop", data=form, headers=HX)
    assert (
        response.status_code == 204 and response.headers["HX-Redirect"] == "/experiments/stop-won"
    )
    stopped = ada.experiment("stop-won")
    assert (stopped.status, stopped.result, stopped.released_variation) == (
        "stopped", "won", "treatment")  # fmt: skip
    assert stopped.phases[-1].ended_at is not None
    (last, *_) = ada.platform.registry.audit(collection_name="experiments", key="stop-won")
    assert last.actor == "user:ada@example.com" and "stopped: won" in last.message
    assert "clear win" in last.message
    assert "stopped: won" in ada.client.get("/experiments/stop-won").text  # the audit trail
    again = ada.client.post("/experiments/stop-won/stop", data=form, headers=HX)
    assert again.status_code == 409


def test_stopping_without_a_temporary_rollout_releases_nothing(ada: Env) -> None:
    ada.running("stop-lost")
    form = {"outcome": "lost", "release": "control"}
    assert ada.client.post("/experiments/stop-lost/stop", data=form, headers=HX).status_code == 204
    stopped = ada.experiment("stop-lost")
    assert (stopped.result, stopped.released_variation) == ("lost", None)


@pytest.mark.parametrize(
    ("form", "field"),
    [({"release": "control"}, "outcome"), ({"outcome": "won", "release": "nope"}, "release")],
)
def test_a_stop_without_an_outcome_or_a_real_variation_is_refused(
    ada: Env, form: dict[str, str], field: str
) -> None:
    ada.running("stop-refused")
    response = ada.client.post("/experiments/stop-refused/stop", data=form, headers=HX)
    assert response.status_code == 422 and f"{field}:" in response.text
    assert ada.experiment("stop-refused").status == "running"


def test_a_viewer_sees_no_stop_button_and_cannot_stop(env: Env) -> None:
    env.running("stop-viewer")
    env.login("val@example.com")
    assert "stop-dialog" not in env.client.get("/experiments/stop-viewer").text
    form = {"outcome": "won", "release": "control", "rollout": "on"}
    response = env.client.post("/experiments/stop-viewer/stop", data=form, headers=HX)
    assert response.status_code == 403
    assert env.experiment("stop-viewer").status == "running"
    assert env.client.post("/experiments/new", data={"key": "x"}, headers=HX).status_code == 403


# -- playbooks --------------------------------------------------------------------------------


def test_playbook_pages_show_stage_status_and_the_timeline(ada: Env) -> None:
    ada.running("ramped")
    stages = [{"coverage": 0.1, "min_hours": 0}, {"coverage": 1.0, "min_hours": 0}]
    body = {"key": "ramp-it", "experiment": "ramped", "stages": stages}
    ada.platform.registry.save("playbooks", body, ACTOR)
    engine, now = ada.platform.engine, ada.platform.clock()
    playbook_state.save(engine, "ramp-it", playbook_state.State(status="running", stage=1), now)
    decisions = [
        ("start", "start", "scheduled"),
        ("rollback:guardrail", "rollback", "refunds breached"),
    ]
    for step, action, reason in decisions:
        playbook_state.record(engine, "ramp-it", at=now, rule="guardrails", action=action,
                              status="done", reason=reason, actor="automation:ramp-it",
                              step=step, numbers={"p_value": 0.001})  # fmt: skip
    ada.platform.registry.save(
        "experiments", ada.experiment("ramped").model_copy(update={"coverage": 0.5}),
        "automation:ramp-it", message="ramp-it: stage 2",
    )  # fmt: skip
    listing = ada.client.get("/playbooks").text
    assert 'data-key="ramp-it"' in listing and "2 of 2 (100%)" in listing
    page = ada.client.get("/playbooks/ramp-it").text
    timeline = re.search(r'<ul class="timeline">.*?</ul>', page, re.S)
    assert timeline is not None
    items = re.findall(r'<li class="(\w*)" data-action="([^"]+)"', timeline.group(0))
    assert ("bad", "rollback") in items and ("", "start") in items
    assert ("", "update") in items  # the registry change it made, from the audit log
    assert ("", "draft") not in items
    assert "refunds breached" in page and "p_value = 0.001" in page
    assert "ramp-it" in ada.client.get("/experiments/ramped").text
    assert ada.client.get("/playbooks/nope").status_code == 404


def test_playbook_overrides_go_through_the_controller_with_the_editor_role(env: Env) -> None:
    env.running("overridden")
    body = {"key": "override-me", "experiment": "overridden"}
    env.platform.registry.save("playbooks", body, ACTOR)
    env.login("val@example.com")
    assert "Run a cycle now" not in env.client.get("/playbooks/override-me").text
    refused = env.client.post(
        "/playbooks/override-me/actions", data={"action": "pause"}, headers=HX
    )
    assert refused.status_code == 403
    env.login("ada@example.com")
    page = env.client.get("/playbooks/override-me").text
    assert 'value="pause"' in page and 'value="resume"' not in page
    form = {"action": "pause", "reason": "looking into it"}
    response = env.client.post("/playbooks/override-me/actions", data=form, headers=HX)
    assert response.status_code == 204, response.text
    assert playbook_state.load(env.platform.engine, "override-me").status == "paused"
    (entry, *_) = env.platform.registry.audit(actor="user:ada@example.com")
    assert (entry.action, entry.message) == ("playbook.pause", "looking into it")
    page = env.client.get("/playbooks/override-me").text
    assert 'value="resume"' in page and "looking into it" in page
    resumed = env.client.post(
        "/playbooks/override-me/actions", data={"action": "resume"}, headers=HX
    )
    assert resumed.status_code == 204
    assert playbook_state.load(env.platform.engine, "override-me").status != "paused"
    again = env.client.post("/playbooks/override-me/actions", data={"action": "resume"}, headers=HX)
    assert again.status_code == 409 and "not paused" in again.text


def test_a_bayesian_snapshot_shows_chance_to_win_instead_of_p_values(ada: Env) -> None:
    ada.running("bayes-copy")
    real = analysis.latest(ada.platform.engine, "planted")
    assert real is not None
    results = [
        m.model_copy(
            update={
                "variations": [m.variations[0]]
                + [
                    v.model_copy(update={"chance_to_win": 0.25 + 0.5 * i, "p_value": None})
                    for i, v in enumerate(m.variations[1:])
                ]
            }
        )
        for m in real.results
    ]
    copy = real.model_copy(
        update={"experiment": "bayes-copy", "engine": "bayesian", "results": results}
    )
    snapshot_store.save(ada.platform.engine, copy)
    page = ada.client.get("/experiments/bayes-copy/results").text
    found = cells(page)
    assert "Chance to win" in page and not any(f == "p_value" for _, _, f in found)
    for m in results:
        for v in m.variations[1:]:
            cell = found[(m.metric, v.variation, "chance_to_win")]
            assert cell["text"].strip() == pct(v.chance_to_win)
