"""Metric and fact-table pages in-process: lists, SQL preview, the row sample, the editor."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient

from liftkit.app import create_app
from liftkit.platform import Platform
from liftkit.registry.datasources import DIALECTS
from liftkit.settings import Settings

HX = {"X-Liftkit-Csrf": "1", "HX-Request": "true"}
PASSWORD = "correct horse battery"
ORDERS_SQL = "SELECT user_id, timestamp, name, value AS amount FROM events WHERE name = 'purchase'"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One SQLite platform for the module (the pages do not depend on the registry's backend;
    building an app takes seconds). Tests that write use keys of their own."""
    data_dir = tmp_path_factory.mktemp("web-metrics") / "data"
    settings = Settings(data_dir=data_dir, controller=False, reminders_interval_seconds=0)
    instance = Platform(settings)
    instance.bootstrap()
    accounts, registry = instance.accounts, instance.registry
    accounts.create_user("ada@example.com", PASSWORD, name="Ada", roles={"*": "admin"})
    accounts.create_user("ann@example.com", PASSWORD, name="Ann", roles={"*": "analyst"})
    accounts.create_user("val@example.com", PASSWORD, name="Val", roles={"*": "viewer"})
    registry.save(
        "fact-tables",
        {
            "key": "orders",
            "name": "Orders",
            "sql": ORDERS_SQL,
            "columns": [{"name": "amount", "datatype": "number"}],
        },
        "user:test",
    )
    registry.save(
        "metrics",
        {
            "key": "revenue",
            "name": "Revenue per user",
            "type": "mean",
            "owner": "maya",
            "tags": ["money"],
            "numerator": {"fact_table": "orders", "column": "amount"},
        },
        "user:test",
    )
    registry.save(
        "metrics",
        {
            "key": "refunds",
            "type": "proportion",
            "inverse": True,
            "numerator": {"fact_table": "orders", "filters": ["name = 'refund'"]},
        },
        "user:test",
    )
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="module")
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def login(client: TestClient, email: str = "ada@example.com") -> None:
    response = client.post("/login", data={"email": email, "password": PASSWORD}, headers=HX)
    assert response.status_code == 204, response.text


def text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_metric_list_shows_every_metric_and_filters(client: TestClient, platform: Platform) -> None:
    login(client)
    page = client.get("/metrics/")
    assert page.status_code == 200
    for m in platform.registry.all("metrics"):
        assert f'href="/metrics/{m.key}"' in page.text
    assert "lower is better" in page.text  # refunds is inverse
    only_mean = client.get("/metrics/", params={"type": "mean"}).text
    assert 'href="/metrics/revenue"' in only_mean and 'href="/metrics/refunds"' not in only_mean
    searched = client.get("/metrics/", params={"q": "refu"}).text
    assert 'href="/metrics/refunds"' in searched and 'href="/metrics/revenue"' not in searched


def test_metric_detail_previews_the_analysis_sql(client: TestClient, platform: Platform) -> None:
    login(client)
    page = client.get("/metrics/refunds")
    assert page.status_code == 200
    sql = text(page.text)
    fact = platform.registry.get("fact-tables", "orders")
    # The fact table's own SQL is inside the generated query (as sqlglot prints it).
    assert "FROM events" in sql and "'purchase'" in sql, sql
    assert "name = 'refund'" in sql
    assert fact.key in sql
    assert re.search(r'<option value="duckdb" selected>', page.text)
    for dialect in ("postgres", "clickhouse", "bigquery"):
        assert f'<option value="{dialect}"' in page.text
    other = client.get("/metrics/refunds", params={"dialect": "bigquery"})
    assert other.status_code == 200
    assert '<option value="bigquery" selected>' in other.text
    assert "TIMESTAMP" in text(other.text)
    bad = client.get("/metrics/refunds", params={"dialect": "cobol"})
    assert bad.status_code == 422 and "dialect" in bad.text
    assert len(DIALECTS) >= 4


def test_sql_preview_names_a_missing_fact_table(client: TestClient, platform: Platform) -> None:
    platform.registry.save(
        "metrics",
        {"key": "orphan", "type": "proportion", "numerator": {"fact_table": "gone"}},
        "user:test",
    )
    login(client)
    page = client.get("/metrics/orphan")
    assert page.status_code == 200
    assert "No SQL can be generated" in page.text and "gone" in page.text


def test_fact_table_pages_and_row_preview(client: TestClient, platform: Platform) -> None:
    token, _ = platform.accounts.create_key("ingest", created_by="test", name="ingest")
    now = datetime.now(UTC).isoformat()
    sent = [
        {"type": "track", "event_id": f"t-{i}", "timestamp": now, "name": name,
         "value": 10.0 + i, "user_id": f"buyer-{i}"}
        for i, name in enumerate(["purchase", "purchase", "refund"])
    ]  # fmt: skip
    posted = client.post("/api/v1/events", json=sent, headers={"Authorization": f"Bearer {token}"})
    assert posted.status_code == 200 and posted.json()["accepted"] == 3
    assert client.app.state.pipeline.flush()  # type: ignore[attr-defined]
    login(client)
    listing = client.get("/fact-tables")
    assert listing.status_code == 200 and 'href="/fact-tables/orders"' in listing.text
    detail = client.get("/fact-tables/orders")
    assert detail.status_code == 200
    assert 'hx-get="/fact-tables/orders/rows"' in detail.text
    assert 'href="/metrics/revenue"' in detail.text and 'href="/metrics/refunds"' in detail.text
    assert ORDERS_SQL in unescape(detail.text)
    rows = client.get("/fact-tables/orders/rows", headers=HX)
    assert rows.status_code == 200, rows.text
    shown = text(rows.text)
    assert "LIMIT 20" in shown
    purchases = [e for e in sent if e["name"] == "purchase"]
    for event in purchases:
        assert str(event["user_id"]) in shown
    assert "buyer-2" not in shown  # the refund is filtered out by the fact table's SQL
    assert f"{len(purchases)} rows" in shown


def test_fact_row_preview_reports_sql_errors(client: TestClient, platform: Platform) -> None:
    platform.registry.save(
        "fact-tables",
        {"key": "broken", "sql": "SELECT user_id, timestamp FROM no_such_table"},
        "user:test",
    )
    login(client)
    rows = client.get("/fact-tables/broken/rows", headers=HX)
    assert rows.status_code == 200
    assert "could not be read" in rows.text and "no_such_table" in rows.text


def test_analyst_creates_and_edits_a_metric(client: TestClient, platform: Platform) -> None:
    login(client, "ann@example.com")
    form = client.get("/metrics/new")
    assert form.status_code == 200 and 'hx-post="/metrics"' in form.text
    created = client.post(
        "/metrics",
        data={
            "key": "big-orders",
            "name": "Big orders",
            "type": "proportion",
            "project": "default",
            "fact_table": "orders",
            "column": "$$count",
            "aggregation": "sum",
            "filters": "amount > 100\nname = 'purchase'",
            "inverse": "on",
        },
        headers=HX,
    )
    assert created.status_code == 204, created.text
    assert created.headers["HX-Redirect"] == "/metrics/big-orders"
    saved = platform.registry.get("metrics", "big-orders")
    assert saved.numerator.filters == ["amount > 100", "name = 'purchase'"]
    assert saved.inverse is True
    audit = platform.registry.audit(collection_name="metrics", key="big-orders")
    assert audit and audit[0].actor == "user:ann@example.com"
    edited = client.post(
        "/metrics/big-orders",
        data={"name": "Large orders", "type": "mean", "fact_table": "orders", "column": "amount"},
        headers=HX,
    )
    assert edited.status_code == 204, edited.text
    changed = platform.registry.get("metrics", "big-orders")
    assert (changed.name, changed.type, changed.numerator.column) == (
        "Large orders",
        "mean",
        "amount",
    )
    assert changed.inverse is False and changed.numerator.filters == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fact_table": "nope"}, "fact_table"),
        ({"column": "price"}, "column"),
        ({"filters": "amount >"}, "filters"),
        ({"type": "ratio"}, "denominator_fact_table"),
        ({"type": "quantile"}, "quantile"),
        ({"key": ""}, "key"),
        ({"key": "has space"}, "key"),
        ({"type": "retention"}, "retention_days"),
    ],
)
def test_metric_form_errors_name_the_field(
    client: TestClient, platform: Platform, changes: dict[str, str], field: str
) -> None:
    login(client, "ann@example.com")
    data = {"key": "x", "type": "proportion", "fact_table": "orders", "column": "$$count"}
    response = client.post("/metrics", data={**data, **changes}, headers=HX)
    assert response.status_code == 422, response.text
    assert response.headers["HX-Retarget"] == "#flash"
    assert field in response.text
    assert platform.registry.find("metrics", data.get("key", "x")) is None


def test_viewers_cannot_create_or_edit_metrics(client: TestClient, platform: Platform) -> None:
    login(client, "val@example.com")
    assert 'href="/metrics/new"' not in client.get("/metrics/").text
    assert "Edit metric" not in client.get("/metrics/revenue").text
    data = {"key": "sneaky", "type": "proportion", "fact_table": "orders"}
    refused = client.post("/metrics", data=data, headers=HX)
    assert refused.status_code == 403 and "analyst" in refused.text
    assert platform.registry.find("metrics", "sneaky") is None
    edit = client.post("/metrics/revenue", data={**data, "name": "Hacked"}, headers=HX)
    assert edit.status_code == 403
    assert platform.registry.get("metrics", "revenue").name == "Revenue per user"
