"""Experiment and playbook pages in a real browser against the live demo.

``pricing-2026`` (with its real snapshot) is only read; the tests that change things create
their own experiments and playbooks under unique keys through the API first.
"""

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from liftkit.web._format import num, pct, pvalue
from web_support import Console, Live, expect_console_errors, shot

pytestmark = pytest.mark.browser


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def running_experiment(live: Live, key: str) -> dict[str, Any]:
    started = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    body = {"key": key, "name": f"Browser {key}", "status": "running", "owner": "browser-test",
            "variations": [{"key": "control"}, {"key": "treatment"}],
            "phases": [{"name": "main", "started_at": started}]}  # fmt: skip
    with live.api() as api:
        response = api.post("/api/v1/experiments", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_results_show_the_numbers_the_api_serves(page: Any, live: Live) -> None:
    page.goto(f"{live.url}/experiments/pricing-2026/results")
    snapshot_id = page.locator("#snapshot-meta").get_attribute("data-snapshot")
    with live.api() as api:
        snapshot = api.get(f"/api/v1/snapshots/{snapshot_id}").json()
    assert snapshot["experiment"] == "pricing-2026"
    checked = 0
    for metric in snapshot["results"]:
        for v in metric["variations"][1:]:
            where = f'[data-metric="{metric["metric"]}"][data-variation="{v["variation"]}"]'

            def text(field: str, where: str = where) -> str:
                return str(page.locator(f'td{where}[data-field="{field}"]').inner_text()).strip()

            assert text("change") == pct(v["effect"], signed=True)
            if snapshot["engine"] == "bayesian":
                assert text("chance_to_win") == pct(v["chance_to_win"])
            else:
                assert text("p_value") == pvalue(v["p_value"])
            assert text("units") == num(v["units"])
            assert text("value") == num(v["value"])
            checked += 1
    assert checked == len(snapshot["results"]) >= 3
    srm = page.locator('[data-health="srm"]')
    assert pvalue(snapshot["health"]["srm_p_value"]) in srm.inner_text()
    assert ("error" in (srm.get_attribute("class") or "")) == snapshot["health"]["srm"]
    expect(page.locator("#dimensions")).to_contain_text("country")
    expect(page.locator("figure.chart[data-drawn]").first).to_be_visible()  # uPlot drew it
    shot(page, "experiment-results")


def test_stop_an_experiment_through_the_dialog(page: Any, live: Live) -> None:
    key = unique("browser-stop")
    running_experiment(live, key)
    page.goto(f"{live.url}/experiments/{key}")
    page.get_by_role("button", name="Stop…").click()
    dialog = page.locator("dialog#stop-dialog")
    expect(dialog).to_be_visible()
    shot(page, "experiment-stop-dialog")
    dialog.get_by_label("Won: a variation beat control").check()
    dialog.get_by_label("Variation to release").select_option("treatment")
    dialog.get_by_label("Why (kept in the audit log)").fill("browser test")
    dialog.get_by_role("button", name="Stop experiment").click()
    expect(page.locator('dd[data-field="status"]')).to_have_text("stopped")
    with live.api() as api:
        stopped = api.get(f"/api/v1/experiments/{key}").json()
        trail = api.get("/api/v1/audit", params={"collection": "experiments", "key": key})
    assert (stopped["status"], stopped["result"], stopped["released_variation"]) == (
        "stopped", "won", "treatment")  # fmt: skip
    assert stopped["phases"][-1]["ended_at"] is not None
    assert "stopped: won" in page.locator("table.audit").inner_text()
    assert trail.status_code == 200 and "browser test" in trail.text


def test_an_error_in_the_stop_dialog_shows_inside_the_dialog(
    page: Any, live: Live, console: Console
) -> None:
    """Someone else stops the experiment while the dialog is open: the 409 must be read in the
    dialog, not in the page's alert region hidden behind the modal."""
    key = unique("browser-stop-race")
    running_experiment(live, key)
    page.goto(f"{live.url}/experiments/{key}")
    page.get_by_role("button", name="Stop…").click()
    dialog = page.locator("dialog#stop-dialog")
    with live.api() as api:
        body = api.get(f"/api/v1/experiments/{key}").json()
        body["status"] = "stopped"
        assert api.put(f"/api/v1/experiments/{key}", json=body).status_code == 200
    expect_console_errors(console)  # the refused request is logged by Chromium
    dialog.get_by_label("Inconclusive: no clear difference").check()
    dialog.get_by_role("button", name="Stop experiment").click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_be_visible()
    assert "stopped" in alert.inner_text()
    expect(dialog).to_be_visible()
    assert page.locator("#flash").inner_text() == ""


def test_walk_the_setup_wizard_and_start(page: Any, live: Live) -> None:
    key = unique("browser-wizard")
    page.goto(f"{live.url}/experiments/new")
    page.get_by_label("Key (the tracking key sent with every exposure)").fill(key)
    page.get_by_label("Name").fill("Wizard from the browser")
    page.get_by_label("Hypothesis").fill("Showing the price earlier raises purchases.")
    page.get_by_role("button", name="Create draft and continue").click()
    page.wait_for_url(f"**/experiments/{key}/setup/traffic")
    assert page.evaluate(UNLABELLED) == []
    expect(page.locator('.steps li[aria-current="step"]')).to_contain_text("Traffic")
    page.get_by_label("Variation 1 weight").fill("50")
    page.get_by_label("Variation 2 weight").fill("50")
    page.get_by_label("Variation 3 key").fill("third")
    page.get_by_label("Variation 3 weight").fill("0")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url(f"**/experiments/{key}/setup/targeting")
    page.get_by_label("Condition (JSON, as in feature rules; empty for everyone)").fill(
        '{"country": "US"}'
    )
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url(f"**/experiments/{key}/setup/metrics")
    assert page.evaluate(UNLABELLED) == []
    page.get_by_label("purchase: primary").check()
    page.get_by_label("refunds: guardrails").check()
    page.get_by_role("button", name="Finish").click()
    page.wait_for_url(f"**/experiments/{key}")
    page.get_by_role("button", name="Start").click()
    expect(page.locator('dd[data-field="status"]')).to_have_text("running")
    with live.api() as api:
        made = api.get(f"/api/v1/experiments/{key}").json()
    assert [v["key"] for v in made["variations"]] == ["control", "treatment", "third"]
    assert made["condition"] == {"country": "US"} and made["status"] == "running"
    assert (made["metrics"]["primary"], made["metrics"]["guardrails"]) == (
        ["purchase"],
        ["refunds"],
    )


def test_experiment_list_and_a_playbook_timeline(page: Any, live: Live) -> None:
    page.goto(f"{live.url}/experiments")
    expect(page.locator('#status-running tr[data-key="pricing-2026"]')).to_be_visible()
    expect(page.locator('#status-stopped tr[data-key="one-click-checkout"]')).to_contain_text("won")
    shot(page, "experiments")
    page.get_by_role("link", name="Running (").click()
    page.wait_for_url("**/experiments?status=running")
    expect(page.locator("#status-stopped")).to_have_count(0)

    key = unique("browser-pb")
    running_experiment(live, f"{key}-test")
    stages = [{"coverage": 0.1, "min_hours": 0}, {"coverage": 1.0, "min_hours": 0}]
    playbook = {"key": key, "experiment": f"{key}-test", "dry_run": True, "stages": stages}
    with live.api() as api:
        assert api.post("/api/v1/playbooks", json=playbook).status_code == 201
    page.goto(f"{live.url}/playbooks")
    page.get_by_role("link", name=key, exact=True).click()
    page.wait_for_url(f"**/playbooks/{key}")
    page.get_by_role("button", name="Run a cycle now").click()
    expect(page.locator("ul.timeline li").first).to_be_visible()
    with live.api() as api:
        timeline = api.get(f"/api/v1/playbooks/{key}/timeline").json()["items"]
    assert timeline and timeline[0]["reason"] in page.locator("ul.timeline").inner_text()
    shot(page, "playbook")


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter(el => el.type !== 'hidden' && !el.closest('dialog:not([open])'))
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
    .map(el => el.outerHTML.slice(0, 120))"""


@pytest.mark.parametrize(
    "path",
    ["/experiments/pricing-2026", "/experiments/pricing-2026/results", "/experiments/new",
     "/experiments/one-click-checkout"],
)  # fmt: skip
def test_experiment_pages_label_every_control_and_have_one_heading(
    page: Any, live: Live, path: str
) -> None:
    response = page.goto(f"{live.url}{path}")
    assert response is not None and response.status == 200
    assert page.locator("h1").count() == 1
    assert page.evaluate(UNLABELLED) == []
    if path == "/experiments/pricing-2026":
        page.get_by_role("button", name="Stop…").click()  # the dialog's controls too
        assert page.evaluate(UNLABELLED) == []
        page.keyboard.press("Escape")
