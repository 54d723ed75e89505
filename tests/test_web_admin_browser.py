"""Metrics, fact tables, settings and live counters in a real browser, against the demo."""

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from web_support import Live, shot

pytestmark = pytest.mark.browser


def test_metric_pages_show_the_sql_preview(page: Any, live: Live) -> None:
    with live.api() as api:
        metrics = api.get("/api/v1/metrics", params={"limit": 500}).json()["items"]
        facts = {f["key"]: f for f in api.get("/api/v1/fact-tables").json()["items"]}
    # /metrics itself is the server's Prometheus endpoint; the list answers on /metrics/.
    page.goto(f"{live.url}/metrics/")
    for m in metrics:
        expect(page.get_by_role("link", name=m["key"], exact=True)).to_be_visible()
    shot(page, "metrics")
    metric = next(m for m in metrics if m["numerator"]["fact_table"] in facts)
    page.get_by_role("link", name=metric["key"], exact=True).click()
    page.wait_for_url(f"{live.url}/metrics/{metric['key']}")
    sql = page.locator("pre.sql").first.inner_text()
    assert "lk_exposures" in sql and "FROM" in sql
    page.get_by_label("Dialect").select_option("clickhouse")
    page.wait_for_url(re.compile(r".*dialect=clickhouse"))
    expect(page.get_by_label("Dialect")).to_have_value("clickhouse")
    shot(page, "metric-detail")


def test_fact_table_page_loads_its_first_rows(page: Any, live: Live) -> None:
    with live.api() as api:
        fact = api.get("/api/v1/fact-tables").json()["items"][0]
    page.goto(f"{live.url}/fact-tables")
    page.get_by_role("link", name=fact["key"], exact=True).click()
    page.wait_for_url(f"{live.url}/fact-tables/{fact['key']}")
    rows = page.locator("#fact-rows table tbody tr")
    expect(rows.first).to_be_visible()
    assert 1 <= rows.count() <= 20
    shot(page, "fact-table")


def test_settings_create_a_key_and_see_it_listed(page: Any, live: Live) -> None:
    name = f"browser key {secrets.token_hex(3)}"
    page.goto(f"{live.url}/settings")
    page.get_by_text("Create a key").click()
    page.get_by_label("Key type").select_option("ingest")
    page.get_by_label("Key name").fill(name)
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#created-secret")
    expect(secret).to_be_visible()
    token = secret.input_value()
    assert token.startswith("lk_ing_")
    with live.api() as api:
        listed = [k for k in api.get("/api/v1/keys").json() if k["name"] == name]
    assert len(listed) == 1
    row = page.locator("table.keys[data-type='ingest'] tr", has_text=name)
    expect(row).to_contain_text(listed[0]["prefix"])
    page.reload()
    expect(page.locator("table.keys[data-type='ingest'] tr", has_text=name)).to_be_visible()
    assert token not in page.content()  # shown once only
    shot(page, "settings")


def test_live_counters_update_as_events_arrive(page: Any, live: Live) -> None:
    key = f"live-{secrets.token_hex(4)}"
    started = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    with live.api() as api:
        made = api.post(
            "/api/v1/experiments",
            json={"key": key, "name": f"Live {key}", "status": "running",
                  "variations": [{"key": "control"}, {"key": "treatment"}],
                  "phases": [{"name": "main", "started_at": started}]},
        )  # fmt: skip
        assert made.status_code == 201, made.text
    page.goto(f"{live.url}/live")
    expect(page.get_by_role("heading", name="Live exposures")).to_be_visible()
    now = datetime.now(UTC).isoformat()
    events = [
        {"type": "exposure", "event_id": f"{key}-{i}", "timestamp": now, "experiment_key": key,
         "variation_id": i % 2, "hash_attribute": "id", "hash_value": f"{key}-u{i}"}
        for i in range(9)
    ]  # fmt: skip
    ingest = live.demo.credentials.ingest_key
    sent = httpx.post(
        f"{live.url}/api/v1/events", json=events, headers={"Authorization": f"Bearer {ingest}"}
    )
    assert sent.status_code == 200 and sent.json()["accepted"] == len(events)
    with live.api() as api:
        units = api.get(f"/api/v1/experiments/{key}/exposures").json()["units"]
    for variation, count in enumerate(units):
        cell = page.locator(f'tr[data-experiment="{key}"][data-variation="{variation}"] td.units')
        expect(cell).to_have_text(str(count), timeout=10_000)  # the 2 s poll picked it up
    shot(page, "live")
