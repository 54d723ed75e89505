"""The admin REST API over every collection: CRUD, lists, drafts, reviews, errors and audit.

Runs in-process through the ASGI app that ``liftkit serve`` runs, on SQLite and PostgreSQL.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from liftkit.app import create_app
from liftkit.platform import Platform
from liftkit.registry import COLLECTIONS

CSRF = {"X-Liftkit-Csrf": "1"}

#: A small valid body per collection: every collection must have one, so a collection added to
#: the registry is exercised here automatically (test_every_collection_has_an_example).
EXAMPLES: dict[str, dict[str, Any]] = {
    "projects": {"key": "mobile", "name": "Mobile apps"},
    "environments": {"key": "qa", "name": "QA"},
    "attributes": {"key": "country", "datatype": "enum", "enum": ["GB", "US"]},
    "saved-groups": {"key": "beta", "type": "list", "attribute": "id", "values": ["1", "2"]},
    "namespaces": {"key": "checkout", "name": "Checkout"},
    "features": {"key": "new-checkout", "value_type": "boolean", "default_value": False},
    "experiments": {"key": "checkout-test", "hypothesis": "fewer steps, more orders"},
    "holdouts": {"key": "global-holdout", "share": 0.05},
    "data-sources": {"key": "warehouse", "type": "postgres", "url": "postgresql://${PGURL}"},
    "segments": {"key": "uk", "sql": "SELECT user_id FROM users WHERE country = 'GB'"},
    "fact-tables": {"key": "orders", "sql": "SELECT user_id, timestamp, amount FROM orders"},
    "metrics": {"key": "order-rate", "numerator": {"fact_table": "orders"}},
    "playbooks": {"key": "checkout-ramp", "experiment": "checkout-test"},
    "briefs": {
        "key": "fewer-steps",
        "hypothesis": {
            "change": "one-page checkout",
            "audience": "mobile shoppers",
            "result": "more orders",
            "reason": "each step loses 8% of users",
        },
        "surface": "checkout",
        "tags": ["checkout"],
    },
    "brief-templates": {"key": "standard", "required_fields": ["hypothesis", "metrics.primary"]},
    "knowledge-settings": {"key": "default", "scoring": "rice"},
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_headers(platform: Platform, role: Any, project: str | None = None) -> dict[str, str]:
    secret, _ = platform.accounts.create_key(
        "secret", created_by="test", role=role, project=project
    )
    return bearer(secret)


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    return bearer(admin_key)


def test_every_collection_has_an_example() -> None:
    assert set(EXAMPLES) == set(COLLECTIONS)


def test_every_collection_round_trips(client: TestClient, admin: dict[str, str]) -> None:
    # One test over all collections (not one per collection): a database per case costs more
    # than the checks themselves. The collection is in every assertion message.
    for name, body in EXAMPLES.items():
        path = f"/api/v1/{name}/{body['key']}"
        created = client.post(f"/api/v1/{name}", json=body, headers=admin)
        assert created.status_code == 201, (name, created.text)
        expected = COLLECTIONS[name].model.model_validate(body).model_dump(mode="json")
        assert created.json() == expected, name
        assert client.get(path, headers=admin).json() == expected, name
        listed = client.get(f"/api/v1/{name}", params={"q": body["key"]}, headers=admin).json()
        assert [item["key"] for item in listed["items"]] == [body["key"]], name
        again = client.post(f"/api/v1/{name}", json=body, headers=admin)
        assert again.status_code == 409, name
        assert "exists already" in again.json()["detail"], name
        assert client.delete(path, headers=admin).status_code == 204, name
        assert client.get(path, headers=admin).status_code == 404, name
        history = client.get(f"{path}/revisions", headers=admin).json()
        assert [(r["version"], r["status"]) for r in history] == [
            (1, "published"),
            (2, "published"),
        ], name
        assert history[1]["body"] is None, name


def test_openapi_documents_the_real_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    create = spec["paths"]["/api/v1/features"]["post"]
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.split("/")[-1].startswith("Feature")
    assert "environments" in schemas[body_ref.split("/")[-1]]["properties"]
    assert set(create["responses"]) >= {"201", "202", "401", "403", "409", "422"}
    listing = spec["paths"]["/api/v1/features"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "q",
        "project",
        "tag",
        "owner",
        "status",
        "limit",
        "offset",
    }
    # Shared collections have no project, tag or owner to filter by.
    shared = spec["paths"]["/api/v1/environments"]["get"]
    assert {p["name"] for p in shared["parameters"]} == {"q", "limit", "offset"}
    for name in COLLECTIONS:
        assert f"/api/v1/{name}/{{key}}/revisions/{{version}}/approve" in spec["paths"]


def test_replace_makes_a_new_version_and_checks_the_key(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = EXAMPLES["features"]
    client.post("/api/v1/features", json=body, headers=admin)
    changed = {**body, "name": "New checkout", "owner": "pat"}
    replaced = client.put("/api/v1/features/new-checkout", json=changed, headers=admin)
    assert replaced.status_code == 200
    assert replaced.json()["name"] == "New checkout"
    assert client.get("/api/v1/features/new-checkout", headers=admin).json()["owner"] == "pat"

    moved = client.put("/api/v1/features/other", json=changed, headers=admin)
    assert moved.status_code == 422
    assert moved.json()["detail"][0]["loc"] == ["body", "key"]
    assert "key" in moved.json()["message"]
    missing = client.put("/api/v1/features/nope", json={**body, "key": "nope"}, headers=admin)
    assert missing.status_code == 404
    assert "POST /api/v1/features" in missing.json()["detail"]


def test_pagination_and_filters(client: TestClient, admin: dict[str, str]) -> None:
    client.post("/api/v1/projects", json={"key": "web"}, headers=admin)
    for i in range(7):
        feature = {
            "key": f"flag-{i}",
            "name": "Checkout tweak" if i % 2 else "Search tweak",
            "project": "web" if i >= 5 else "default",
            "owner": "ana" if i < 3 else "ben",
            "tags": ["growth"] if i in (1, 4) else [],
            "kind": "operational" if i == 6 else "release",
        }
        assert client.post("/api/v1/features", json=feature, headers=admin).status_code == 201

    def keys(**params: Any) -> tuple[list[str], int]:
        page = client.get("/api/v1/features", params=params, headers=admin).json()
        return [item["key"] for item in page["items"]], page["total"]

    assert keys(limit=3) == (["flag-0", "flag-1", "flag-2"], 7)
    assert keys(limit=3, offset=6) == (["flag-6"], 7)
    assert keys(project="web") == (["flag-5", "flag-6"], 2)
    assert keys(owner="ana") == (["flag-0", "flag-1", "flag-2"], 3)
    assert keys(tag="growth") == (["flag-1", "flag-4"], 2)
    assert keys(status="operational") == (["flag-6"], 1)
    assert keys(q="CHECKOUT") == (["flag-1", "flag-3", "flag-5"], 3)
    assert keys(q="checkout", project="default") == (["flag-1", "flag-3"], 2)

    too_big = client.get("/api/v1/features", params={"limit": 501}, headers=admin)
    assert too_big.status_code == 422
    assert too_big.json()["detail"][0]["loc"] == ["query", "limit"]
    assert client.get("/api/v1/features", params={"offset": -1}, headers=admin).status_code == 422


def test_draft_diff_publish_and_revert(client: TestClient, admin: dict[str, str]) -> None:
    base = "/api/v1/features/new-checkout"
    client.post("/api/v1/features", json=EXAMPLES["features"], headers=admin)
    changed = {**EXAMPLES["features"], "default_value": True}

    drafted = client.post(
        f"{base}/revisions", json=changed, params={"message": "on"}, headers=admin
    )
    assert drafted.status_code == 201
    assert (drafted.json()["version"], drafted.json()["status"]) == (2, "draft")
    assert client.get(base, headers=admin).json()["default_value"] is False

    diff = client.get(f"{base}/revisions/2/diff", headers=admin).json()
    assert diff == [{"path": "default_value", "op": "changed", "before": False, "after": True}]

    published = client.post(f"{base}/revisions/2/publish", headers=admin)
    assert published.json()["status"] == "published"
    assert client.get(base, headers=admin).json()["default_value"] is True
    again = client.post(f"{base}/revisions/2/publish", headers=admin)
    assert again.status_code == 409

    reverted = client.post(f"{base}/revert", json={"version": 1}, headers=admin)
    assert reverted.status_code == 200
    assert reverted.json()["default_value"] is False
    history = client.get(f"{base}/revisions", headers=admin).json()
    assert history[-1]["version"] == 3
    assert history[-1]["message"] == "revert to version 1"

    # ?publish=false leaves drafts, for replace and delete alike; discarded ones can't go live.
    pending = client.put(base, json=changed, params={"publish": "false"}, headers=admin)
    assert pending.status_code == 202
    assert (pending.json()["version"], pending.json()["status"]) == (4, "draft")
    assert client.post(f"{base}/revisions/4/discard", headers=admin).json()["status"] == "discarded"
    assert client.post(f"{base}/revisions/4/publish", headers=admin).status_code == 409
    deletion = client.delete(base, params={"publish": "false"}, headers=admin)
    assert deletion.status_code == 202
    assert deletion.json()["body"] is None
    assert client.get(base, headers=admin).status_code == 200

    assert client.get(f"{base}/revisions/99", headers=admin).status_code == 404
    draft_new = client.post(
        "/api/v1/features",
        json={**changed, "key": "later"},
        params={"publish": "false"},
        headers=admin,
    )
    assert draft_new.status_code == 202
    assert client.get("/api/v1/features/later", headers=admin).status_code == 404


def _login(client: TestClient, email: str, password: str = "correct horse") -> None:
    response = client.post(
        "/api/v1/session", json={"email": email, "password": password}, headers=CSRF
    )
    assert response.status_code == 200, response.text


def test_approvals_need_a_second_person(
    platform: Platform, client: TestClient, admin: dict[str, str]
) -> None:
    app = client.app
    for email in ("alice@example.com", "bob@example.com"):
        platform.accounts.create_user(email, "correct horse", roles={"*": "editor"})
    platform.accounts.create_user("vic@example.com", "correct horse", roles={"*": "viewer"})
    production = {"key": "production", "name": "Production", "requires_approval": True}
    assert (
        client.put("/api/v1/environments/production", json=production, headers=admin).status_code
        == 200
    )
    feature = {**EXAMPLES["features"], "environments": {"production": {"enabled": True}}}

    with TestClient(app) as alice, TestClient(app) as bob, TestClient(app) as vic:
        _login(alice, "alice@example.com")
        _login(bob, "bob@example.com")
        _login(vic, "vic@example.com")
        created = alice.post("/api/v1/features", json=feature, headers=CSRF)
        assert created.status_code == 202
        assert created.json()["status"] == "pending_review"
        version = created.json()["version"]
        path = f"/api/v1/features/new-checkout/revisions/{version}"
        assert alice.get("/api/v1/features/new-checkout").status_code == 404

        direct = alice.post(f"{path}/publish", headers=CSRF)
        assert direct.status_code == 409
        assert "approve" in direct.json()["detail"]
        own = alice.post(f"{path}/approve", headers=CSRF)
        assert own.status_code == 403
        assert "someone other than its author" in own.json()["detail"]
        viewer = vic.post(f"{path}/approve", headers=CSRF)
        assert viewer.status_code == 403
        assert "editor" in viewer.json()["detail"]

        approved = bob.post(f"{path}/approve", headers=CSRF)
        assert approved.status_code == 200
        assert approved.json()["reviewer"] == "user:bob@example.com"
        published = alice.post(f"{path}/publish", headers=CSRF)
        assert published.json()["status"] == "published"
        live = alice.get("/api/v1/features/new-checkout").json()
        assert live["environments"]["production"]["enabled"] is True

    actors = {
        (e["action"], e["actor"])
        for e in client.get("/api/v1/audit", params={"key": "new-checkout"}, headers=admin).json()[
            "items"
        ]
    }
    assert ("approved", "user:bob@example.com") in actors
    assert ("create", "user:alice@example.com") in actors


INVALID: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("features", {"value_type": "boolean"}, ["body", "key"]),
    ("features", {"key": "f", "colour": "red"}, ["body", "colour"]),
    ("features", {"key": "f", "default_value": "yes"}, ["body", "default_value"]),
    (
        "features",
        {
            "key": "f",
            "environments": {
                "production": {"rules": [{"type": "rollout", "value": True, "coverage": 2}]}
            },
        },
        ["body", "environments", "production", "rules", 0, "rollout", "coverage"],
    ),
    (
        "metrics",
        {"key": "m", "type": "ratio", "numerator": {"fact_table": "t"}},
        ["body", "denominator"],
    ),
    ("saved-groups", {"key": "g", "type": "list"}, ["body", "attribute"]),
    ("features", {"key": "has space"}, ["body", "key"]),
]


def test_validation_errors_name_the_field(client: TestClient, admin: dict[str, str]) -> None:
    for name, body, loc in INVALID:
        response = client.post(f"/api/v1/{name}", json=body, headers=admin)
        assert response.status_code == 422, (name, body)
        errors = response.json()["detail"]
        assert loc in [e["loc"] for e in errors], errors
        assert all(set(e) == {"loc", "msg", "type"} for e in errors)  # the input is not echoed
        assert ".".join(str(p) for p in errors[0]["loc"]) in response.json()["message"]


def test_project_scoped_keys(platform: Platform, client: TestClient, admin: dict[str, str]) -> None:
    client.post("/api/v1/projects", json={"key": "web"}, headers=admin)
    web_editor = key_headers(platform, "editor", project="web")
    in_web = {**EXAMPLES["features"], "project": "web"}
    assert client.post("/api/v1/features", json=in_web, headers=web_editor).status_code == 201
    elsewhere = client.post("/api/v1/features", json=EXAMPLES["features"], headers=web_editor)
    assert elsewhere.status_code == 403
    assert "project 'default'" in elsewhere.json()["detail"]
    # Moving an object to another project needs the role on both, from either side.
    into_default = {**in_web, "project": "default"}
    moved = client.put("/api/v1/features/new-checkout", json=into_default, headers=web_editor)
    assert moved.status_code == 403
    default_editor = key_headers(platform, "editor", project="default")
    taken = client.put("/api/v1/features/new-checkout", json=into_default, headers=default_editor)
    assert taken.status_code == 403
    assert "project 'web'" in taken.json()["detail"]

    everywhere = client.get("/api/v1/features", headers=web_editor)
    assert everywhere.status_code == 403
    assert "?project=" in everywhere.json()["detail"]
    mine = client.get("/api/v1/features", params={"project": "web"}, headers=web_editor)
    assert [f["key"] for f in mine.json()["items"]] == ["new-checkout"]
    # Shared objects are readable with a role anywhere, writable only by admins of all projects.
    assert client.get("/api/v1/environments", headers=web_editor).json()["total"] == 3
    web_admin = key_headers(platform, "admin", project="web")
    shared = client.post("/api/v1/namespaces", json=EXAMPLES["namespaces"], headers=web_admin)
    assert shared.status_code == 403
    assert "every project" in shared.json()["detail"]


def test_audit_log_records_before_after_and_actor(platform: Platform, client: TestClient) -> None:
    secret, key = platform.accounts.create_key("secret", created_by="test", role="editor")
    headers = bearer(secret)
    body = EXAMPLES["features"]
    client.post("/api/v1/features", json=body, headers=headers)
    client.put("/api/v1/features/new-checkout", json={**body, "name": "v2"}, headers=headers)

    # The log spans projects, so reading it takes a role on all of them (viewer is enough).
    reader = key_headers(platform, "viewer")
    entries = client.get(
        "/api/v1/audit", params={"collection": "features", "key": "new-checkout"}, headers=reader
    ).json()["items"]
    update = next(e for e in entries if e["action"] == "update")
    assert update["actor"] == f"key:{key.prefix}" == key.actor
    assert (update["before"]["name"], update["after"]["name"]) == ("", "v2")
    assert update["version"] == 2
    assert entries[0]["id"] > entries[-1]["id"]  # newest first

    by_actor = client.get(
        "/api/v1/audit", params={"actor": key.actor, "limit": 1}, headers=reader
    ).json()
    assert len(by_actor["items"]) == 1
    assert by_actor["items"][0]["actor"] == key.actor
    wrong = client.get("/api/v1/audit", params={"collection": "nope"}, headers=reader)
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["query", "collection"]
