"""The analysis API in-process: run, read and list snapshots, render SQL, roles and failures.

Every run is real: planted exposures and events are written into liftkit's own event store
(``DATA_DIR/events.duckdb``, the built-in data source ``events``), the registry describes the
experiment, and the app analyses it through ``POST /api/v1/experiments/{key}/snapshots``.
Storage tests run on SQLite and PostgreSQL (the ``platform`` fixture); the rest share one app
on SQLite (an app takes over a second to build and warm up), each under keys of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from starlette.testclient import TestClient

from analysis_support import ACTOR, Planted, registry_objects, simulate
from liftkit import analysis
from liftkit.analysis import Snapshot
from liftkit.app import create_app
from liftkit.events.duckdb_store import DuckDBStore
from liftkit.events.store import TABLES
from liftkit.platform import Platform
from liftkit.registry.accounts import ROLES, Role
from liftkit.settings import Settings

API = "/api/v1"
PLANTED = f"{API}/experiments/planted"
METRICS = ["purchase", "revenue"]
USERS = 2000


# -- data and registry ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    return simulate(Planted(users=USERS, lift=0.3, seed=3))


def fill_store(
    path: Path, tables: dict[str, pa.Table], *extra: str, copies: tuple[str, ...] = ()
) -> None:
    """Write the simulated exposures and events into an event store file at ``path``.

    The store's own DDL makes the tables (``attributes`` is JSON, timestamps naive UTC), so the
    analysis reads exactly what ingestion would have written. ``extra`` tables (e.g.
    ``identities``) are copied as they are. ``copies``: more experiment keys given the same
    exposures as ``planted``, so tests can change an experiment without touching ``planted``.
    """
    DuckDBStore(path)
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ -> TIMESTAMP keeps the UTC wall time
        for name in (*TABLES, *extra):
            con.register("simulated", tables[name])
            if name in TABLES:
                con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM simulated")
            else:
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM simulated")
            con.unregister("simulated")
        for key in copies:
            con.execute(
                "INSERT INTO exposures SELECT * REPLACE (? AS experiment_key, event_id || ? AS "
                "event_id) FROM exposures WHERE experiment_key = 'planted'",
                [key, f"-{key}"],
            )


def builtin_objects(**settings: Any) -> list[tuple[str, dict[str, Any]]]:
    """``registry_objects()`` moved onto the built-in data source ``events``.

    The ``views`` fact table needs the identity join of the ``warehouse`` source, so it and its
    metrics are left out: ``planted`` is analysed on purchase (primary) and revenue.
    """
    found = []
    for collection, original in registry_objects(**settings):
        body = dict(original)
        if collection == "data-sources" or body["key"] in ("views", "revenue_per_view"):
            continue
        if collection == "fact-tables":
            body["datasource"] = "events"
        if collection == "experiments":
            body["metrics"] = {"primary": ["purchase"], "secondary": ["revenue"]}
            body["analysis"] = {**body["analysis"], "datasource": "events"}
        found.append((collection, body))
    return found


def experiment(key: str, **changes: Any) -> dict[str, Any]:
    """The body of ``planted`` under another key, with ``changes``."""
    (body,) = [b for c, b in builtin_objects() if c == "experiments"]
    return {**body, "key": key, **changes}


# -- the app ----------------------------------------------------------------------------------


class Api:
    """A running app over a platform whose store holds the planted data; a key per role."""

    def __init__(self, platform: Platform, client: TestClient) -> None:
        self.platform = platform
        self.client = client
        self.keys = {
            role: platform.accounts.create_key("secret", created_by="test", role=role)
            for role in ROLES
        }

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role][0]}"}

    def actor(self, role: Role) -> str:
        return self.keys[role][1].actor

    def get(self, path: str, role: Role = "viewer", **params: str) -> Any:
        return self.client.get(path, headers=self.auth(role), params=params)

    def post(self, path: str, role: Role = "analyst", body: Any = None) -> Any:
        return self.client.post(path, headers=self.auth(role), json=body)

    def analyse(self, key: str = "planted", role: Role = "analyst") -> Any:
        return self.post(f"{API}/experiments/{key}/snapshots", role)

    def save(self, collection: str, body: dict[str, Any]) -> None:
        self.platform.registry.save(collection, body, ACTOR)

    def stored(self, key: str = "planted") -> list[Snapshot]:
        return analysis.history(self.platform.engine, key, limit=500)


def make_api(
    platform: Platform, tables: dict[str, pa.Table], copies: tuple[str, ...] = ()
) -> Iterator[Api]:
    fill_store(platform.settings.data_dir / "events.duckdb", tables, copies=copies)
    for collection, body in builtin_objects():
        platform.registry.save(collection, body, ACTOR)
    with TestClient(create_app(platform)) as client:
        yield Api(platform, client)


def sqlite_api(
    data_dir: Path, tables: dict[str, pa.Table], copies: tuple[str, ...] = ()
) -> Iterator[Api]:
    platform = Platform(Settings(data_dir=data_dir))
    platform.bootstrap()
    try:
        yield from make_api(platform, tables, copies)
    finally:
        platform.close()


@pytest.fixture
def api(platform: Platform, tables: dict[str, pa.Table]) -> Iterator[Api]:
    """A new app on SQLite and on PostgreSQL (the ``platform`` fixture's backends)."""
    yield from make_api(platform, tables)


@pytest.fixture
def fresh(tmp_path: Path, tables: dict[str, pa.Table]) -> Iterator[Api]:
    """A new app on SQLite, for a test that changes what every analysis reads."""
    yield from sqlite_api(tmp_path / "data", tables)


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory, tables: dict[str, pa.Table]) -> Iterator[Api]:
    """One app on SQLite shared by the module's tests that add objects under their own keys.

    ``planted`` is analysed by several of them, so they count snapshots before and after
    rather than assume none exist; ``segmented`` has the same exposures, for the segment test.
    """
    data_dir = tmp_path_factory.mktemp("lite") / "data"
    yield from sqlite_api(data_dir, tables, copies=("segmented",))


# -- running and reading ----------------------------------------------------------------------


def test_analyst_runs_analyses_and_reads_them_back(api: Api) -> None:
    assert api.get(f"{PLANTED}/snapshots").json() == {"items": []}
    response = api.analyse()
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["id"], int)
    assert body["experiment"] == "planted"
    assert body["created_by"] == api.actor("analyst")
    assert (body["datasource"], body["dialect"]) == ("events", "duckdb")
    assert [r["metric"] for r in body["results"]] == METRICS
    assert [r["role"] for r in body["results"]] == ["primary", "secondary"]
    for result in body["results"]:
        assert [v["variation"] for v in result["variations"]] == ["control", "treatment"]
        control, treatment = result["variations"]
        assert control["effect"] is None  # the baseline
        assert treatment["ci_low"] < treatment["effect"] < treatment["ci_high"]
        assert control["units"] + treatment["units"] == USERS
    health = body["health"]
    assert set(health["units"]) == {"control", "treatment"}
    assert sum(health["units"].values()) == USERS
    assert 0 <= health["srm_p_value"] <= 1
    assert body["decision"]["action"] in ("ship", "roll back", "keep running", "stop")
    assert body["decision"]["reason"]
    assert "'planted'" in body["queries"]["main"]
    assert {d["value"] for d in body["dimensions"]} >= {"US", "GB"}  # analysis.dimensions
    assert body["statistics"]  # the sufficient statistics are kept, not only the results

    latest = api.get(f"{PLANTED}/snapshots/latest")
    assert latest.status_code == 200, latest.text
    assert latest.json()["id"] == body["id"]
    one = api.get(f"{API}/snapshots/{body['id']}")
    assert one.status_code == 200, one.text
    assert one.json() == latest.json()
    # The JSON is the snapshot: it validates back into what the store holds, on each backend.
    stored = analysis.latest(api.platform.engine, "planted")
    assert stored is not None
    assert stored.id == body["id"]
    assert Snapshot.model_validate(body) == stored
    assert Snapshot.model_validate(one.json()) == stored

    # A second run (a higher role may do what an analyst may): the history is newest first.
    second = api.analyse(role="admin").json()
    assert second["id"] > body["id"]
    assert api.get(f"{PLANTED}/snapshots/latest").json()["id"] == second["id"]
    response = api.get(f"{PLANTED}/snapshots")
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["id"] for i in items] == [second["id"], body["id"]]
    newest = items[0]
    assert newest["created_by"] == api.actor("admin")
    assert newest["experiment"] == "planted"
    assert newest["decision"] == second["decision"]
    assert newest["units"] == second["health"]["units"]
    assert newest["srm_p_value"] == second["health"]["srm_p_value"]
    assert newest["warnings"] == second["health"]["warnings"]
    assert "results" not in newest  # a summary, not the whole snapshot
    limited = api.get(f"{PLANTED}/snapshots", limit="1").json()["items"]
    assert [i["id"] for i in limited] == [second["id"]]
    assert api.get(f"{PLANTED}/snapshots", limit="0").status_code == 422


def test_latest_before_any_run_and_unknown_ids_are_404(lite: Api) -> None:
    lite.save("experiments", experiment("not-yet"))
    latest = lite.get(f"{API}/experiments/not-yet/snapshots/latest")
    assert latest.status_code == 404
    assert latest.json()["detail"] == "experiment 'not-yet' has not been analysed yet"
    assert lite.get(f"{API}/experiments/not-yet/snapshots").json() == {"items": []}
    missing = lite.get(f"{API}/snapshots/424242")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "snapshot 424242 does not exist"
    assert lite.get(f"{API}/snapshots/not-a-number").status_code == 422


# -- who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("editor", 201)])
def test_analysing_needs_the_analyst_role(lite: Api, role: Role, status: int) -> None:
    before = len(lite.stored())
    response = lite.analyse(role=role)
    assert response.status_code == status, response.text
    if status == 403:
        detail = response.json()["detail"]
        assert "analysing an experiment needs the analyst role on project 'default'" in detail
        assert "has the viewer role" in detail
    assert len(lite.stored()) == before + (status == 201)


def test_viewer_reads_results_and_sql(lite: Api) -> None:
    created = lite.analyse()
    assert created.status_code == 201, created.text
    for path in (
        f"{PLANTED}/snapshots",
        f"{PLANTED}/snapshots/latest",
        f"{API}/snapshots/{created.json()['id']}",
        f"{PLANTED}/sql",
    ):
        assert lite.get(path, "viewer").status_code == 200, path


def test_keys_of_another_project_cannot_run_or_read(lite: Api) -> None:
    created = lite.analyse()
    assert created.status_code == 201, created.text
    elsewhere, _ = lite.platform.accounts.create_key(
        "secret", created_by="test", role="admin", project="elsewhere"
    )
    headers = {"Authorization": f"Bearer {elsewhere}"}
    before = len(lite.stored())
    assert lite.client.post(f"{PLANTED}/snapshots", headers=headers).status_code == 403
    assert len(lite.stored()) == before
    for path in (
        f"{PLANTED}/snapshots",
        f"{PLANTED}/snapshots/latest",
        f"{API}/snapshots/{created.json()['id']}",
        f"{PLANTED}/sql",
    ):
        response = lite.client.get(path, headers=headers)
        assert response.status_code == 403, path
        assert "project 'default'" in response.json()["detail"]
    here, _ = lite.platform.accounts.create_key(
        "secret", created_by="test", role="analyst", project="default"
    )
    response = lite.client.post(f"{PLANTED}/snapshots", headers={"Authorization": f"Bearer {here}"})
    assert response.status_code == 201, response.text


def test_no_key_or_a_bad_key_is_401(lite: Api) -> None:
    before = len(lite.stored())
    for headers in ({}, {"Authorization": "Bearer lk_sec_unknown"}):
        for method, path in (
            ("POST", f"{PLANTED}/snapshots"),
            ("GET", f"{PLANTED}/snapshots"),
            ("GET", f"{PLANTED}/sql"),
            ("GET", f"{API}/snapshots/1"),
        ):
            response = lite.client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(lite.stored()) == before


@pytest.mark.parametrize("key_type", ["sdk", "ingest"])
def test_sdk_and_ingest_keys_are_403(lite: Api, key_type: Any) -> None:
    secret, key = lite.platform.accounts.create_key(
        key_type, created_by="test", project="default", environment="production"
    )
    headers = {"Authorization": f"Bearer {secret}"}
    before = len(lite.stored())
    for method, path in (("POST", f"{PLANTED}/snapshots"), ("GET", f"{PLANTED}/snapshots")):
        response = lite.client.request(method, path, headers=headers)
        assert response.status_code == 403, method
        detail = response.json()["detail"]
        assert f"{key_type} key" in detail
        assert key.prefix in detail
        assert secret not in detail
    assert len(lite.stored()) == before


def test_openapi_documents_the_routes_as_authenticated(lite: Api) -> None:
    """The caller is a dependency, never a query parameter (a stringised annotation once made
    ``principal`` a required query parameter: every route answered 422 and /openapi.json 500)."""
    response = lite.client.get("/openapi.json")
    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    routes = [
        ("post", f"{API}/experiments/{{key}}/snapshots", ["key"]),
        ("get", f"{API}/experiments/{{key}}/snapshots", ["key", "limit"]),
        ("get", f"{API}/experiments/{{key}}/snapshots/latest", ["key"]),
        ("get", f"{API}/snapshots/{{snapshot_id}}", ["snapshot_id"]),
        ("get", f"{API}/experiments/{{key}}/sql", ["key", "dialect"]),
    ]
    for method, path, parameters in routes:
        operation = paths[path][method]
        assert [p["name"] for p in operation.get("parameters", [])] == parameters, path
        assert {"secretKey": []} in operation["security"], path


# -- what cannot be analysed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (experiment("unmeasured", metrics={}), "has no metrics: add a primary metric"),
        (experiment("unstarted", status="draft", phases=[]), "has no phase yet: start it first"),
        (
            experiment("unknown-metric", metrics={"primary": ["nope"]}),
            "metric 'nope' is not in the registry",
        ),
        (
            experiment("unknown-segment", analysis={"datasource": "events", "segment": "nope"}),
            "analysis.segment: segment 'nope' does not exist",
        ),
        (
            experiment("unknown-source", analysis={"datasource": "nowhere"}),
            "data source 'nowhere' does not exist",
        ),
    ],
    ids=["no-metrics", "no-phase", "unknown-metric", "unknown-segment", "unknown-source"],
)
def test_an_experiment_that_cannot_be_analysed_is_400(
    lite: Api, body: dict[str, Any], message: str
) -> None:
    lite.save("experiments", body)
    response = lite.analyse(body["key"])
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]
    assert lite.stored(body["key"]) == []
    sql = lite.get(f"{API}/experiments/{body['key']}/sql")
    assert sql.status_code == 400
    assert message in sql.json()["detail"]


def test_an_unknown_experiment_is_404(lite: Api) -> None:
    for response in (
        lite.analyse("nope"),
        lite.get(f"{API}/experiments/nope/snapshots"),
        lite.get(f"{API}/experiments/nope/snapshots/latest"),
        lite.get(f"{API}/experiments/nope/sql"),
    ):
        assert response.status_code == 404, response.request.url
        assert response.json()["detail"] == "Experiment 'nope' not found"


def test_a_warehouse_failure_is_502_and_stores_nothing(lite: Api) -> None:
    lite.save(
        "fact-tables",
        {"key": "broken", "datasource": "events", "sql": "SELECT user_id, timestamp FROM gone"},
    )
    lite.save("metrics", {"key": "broken", "numerator": {"fact_table": "broken"}})
    lite.save("experiments", experiment("broken", metrics={"primary": ["broken"]}))
    response = lite.analyse("broken")
    assert response.status_code == 502, response.text
    detail = response.json()["detail"]
    assert detail.startswith("the warehouse query failed: DuckDB:")
    assert "Table with name gone does not exist" in detail
    assert lite.stored("broken") == []
    assert lite.get(f"{API}/experiments/broken/snapshots/latest").status_code == 404


def test_a_source_liftkit_cannot_run_is_400(lite: Api) -> None:
    lite.save("data-sources", {"key": "bq", "type": "bigquery", "url": "bigquery://project"})
    lite.save("fact-tables", {"key": "bq-orders", "datasource": "bq", "sql": "SELECT 1"})
    lite.save("metrics", {"key": "bq-orders", "numerator": {"fact_table": "bq-orders"}})
    body = experiment("in-bigquery", metrics={"primary": ["bq-orders"]})
    lite.save("experiments", {**body, "analysis": {**body["analysis"], "datasource": "bq"}})
    response = lite.analyse("in-bigquery")
    assert response.status_code == 400, response.text
    assert "liftkit analyze --sql --dialect bigquery" in response.json()["detail"]
    sql = lite.get(f"{API}/experiments/in-bigquery/sql")
    assert sql.status_code == 200 and sql.json()["dialect"] == "bigquery"


def test_snapshots_of_a_deleted_experiment_stay_readable(fresh: Api) -> None:
    created = fresh.analyse()
    assert created.status_code == 201, created.text
    fresh.platform.registry.delete("experiments", "planted", ACTOR)
    path = f"{API}/snapshots/{created.json()['id']}"
    assert fresh.get(path, "viewer").json()["id"] == created.json()["id"]


# -- SQL --------------------------------------------------------------------------------------


def test_sql_is_rendered_for_a_dialect_without_running(lite: Api) -> None:
    before = len(lite.stored())
    default = lite.get(f"{PLANTED}/sql")
    assert default.status_code == 200, default.text
    assert default.json()["dialect"] == "duckdb"  # the data source's own
    response = lite.get(f"{PLANTED}/sql", dialect="bigquery")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dialect"] == "bigquery"
    assert list(body["queries"]) == ["main"]
    main = body["queries"]["main"]
    assert "'planted'" in main
    assert main.lstrip().upper().startswith(("SELECT", "WITH"))
    assert main != default.json()["queries"]["main"]  # rendered for BigQuery, not DuckDB
    assert len(lite.stored()) == before


def test_an_unknown_dialect_is_422_naming_it(lite: Api) -> None:
    response = lite.get(f"{PLANTED}/sql", dialect="nonsense")
    assert response.status_code == 422
    body = response.json()
    assert [e["loc"] for e in body["detail"]] == [["query", "dialect"]]
    assert "bigquery" in body["detail"][0]["msg"]
    assert body["message"].startswith("query.dialect: must be one of")


# -- data sources and segments --------------------------------------------------------------------


@pytest.mark.parametrize("role", ["analyst", "editor"])
def test_writing_a_data_source_needs_admin(lite: Api, role: Role) -> None:
    body = {"key": f"wh-{role}", "type": "postgres", "url": "postgresql://${PGUSER}@db/x"}
    response = lite.post(f"{API}/data-sources", role, body)
    assert response.status_code == 403, response.text
    assert "needs the admin role" in response.json()["detail"]
    assert lite.platform.registry.find("data-sources", body["key"]) is None
    created = lite.post(f"{API}/data-sources", "admin", body)
    assert created.status_code == 201, created.text
    assert created.json()["url"] == body["url"]  # kept as written: expanded when connecting
    listed = lite.get(f"{API}/data-sources", role)
    assert listed.status_code == 200, listed.text
    assert body["key"] in [i["key"] for i in listed.json()["items"]]


def test_an_analyst_writes_a_segment_that_limits_the_analysis(
    lite: Api, tables: dict[str, pa.Table]
) -> None:
    segment = {"key": "buyers", "sql": "SELECT user_id FROM events WHERE name = 'purchase'"}
    assert lite.post(f"{API}/segments", "viewer", segment).status_code == 403
    created = lite.post(f"{API}/segments", "analyst", segment)
    assert created.status_code == 201, created.text
    assert created.json()["datasource"] == "events"
    listed = lite.get(f"{API}/segments").json()
    assert "buyers" in [i["key"] for i in listed["items"]]

    whole = experiment("segmented")
    limited = {**whole, "analysis": {**whole["analysis"], "segment": "buyers"}}
    lite.save("experiments", whole)
    everyone = lite.analyse("segmented")
    assert everyone.status_code == 201, everyone.text
    assert sum(everyone.json()["health"]["units"].values()) == USERS
    updated = lite.client.put(
        f"{API}/experiments/segmented", headers=lite.auth("editor"), json=limited
    )
    assert updated.status_code == 200, updated.text
    response = lite.analyse("segmented")
    assert response.status_code == 201, response.text
    with duckdb.connect() as con:
        con.register("events", tables["events"])
        row = con.execute("SELECT count(DISTINCT user_id) FROM events WHERE name = 'purchase'")
        (buyers,) = row.fetchone() or (0,)
    assert 0 < buyers < USERS
    assert sum(response.json()["health"]["units"].values()) == buyers


def test_a_data_source_named_events_overrides_the_builtin_store(
    fresh: Api, tables: dict[str, pa.Table], tmp_path: Path
) -> None:
    """With the whole planted registry (page views need the identity join) on another file."""
    objects = registry_objects()
    for collection, body in objects:
        if collection == "fact-tables":
            fresh.save(collection, {**body, "datasource": "events"})
        elif collection == "metrics":
            fresh.save(collection, body)
        elif collection == "experiments":
            analysis_settings = {**body["analysis"], "datasource": "events"}
            fresh.save(collection, {**body, "analysis": analysis_settings})
    before = fresh.analyse()  # the built-in source has no identity join for anonymous ids
    assert before.status_code == 400, before.text
    assert "fact table 'views' has no 'user_id' column" in before.json()["detail"]

    # Empty the built-in store: units can then only come from the data source that overrides it.
    with duckdb.connect(str(fresh.platform.settings.data_dir / "events.duckdb")) as con:
        con.execute("DELETE FROM exposures")
        con.execute("DELETE FROM events")
    warehouse = tmp_path / "warehouse.duckdb"
    fill_store(warehouse, tables, "identities")
    (source,) = [b for c, b in objects if c == "data-sources"]
    override = {**source, "key": "events", "type": "duckdb", "url": str(warehouse)}
    created = fresh.post(f"{API}/data-sources", "admin", override)
    assert created.status_code == 201, created.text

    response = fresh.analyse()
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["datasource"] == "events"
    assert [r["metric"] for r in body["results"]] == [
        "purchase", "revenue", "revenue_per_view", "views",
    ]  # fmt: skip
    assert sum(body["health"]["units"].values()) == USERS
    views = body["results"][3]["variations"]
    assert all(v["value"] > 0 for v in views)  # page views joined through identities


def test_a_snapshot_id_past_the_databases_integers_is_a_422(lite: Api) -> None:
    """Found by fuzzing: an id past SQLite's 64-bit integers overflowed the query (a 500)."""
    response = lite.client.get(f"{API}/snapshots/{2**63}", headers=lite.auth("viewer"))
    assert response.status_code == 422 and "snapshot_id" in response.text
    missing = lite.client.get(f"{API}/snapshots/{2**31 - 1}", headers=lite.auth("viewer"))
    assert missing.status_code == 404
