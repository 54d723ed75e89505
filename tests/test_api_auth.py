"""Who may call the admin API: keys, roles, sessions, CSRF, users, and secrets kept out of logs."""

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from liftkit.app import create_app
from liftkit.platform import Platform
from liftkit.registry.accounts import ROLES, rank

CSRF = {"X-Liftkit-Csrf": "1"}
PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def login(client: TestClient, email: str, password: str = PASSWORD, **headers: str) -> Any:
    return client.post(
        "/api/v1/session", json={"email": email, "password": password}, headers=headers or CSRF
    )


# -- keys: 401 and 403 --------------------------------------------------------------------------


def test_missing_or_invalid_credentials_are_401(platform: Platform, client: TestClient) -> None:
    secret, key = platform.accounts.create_key("secret", created_by="test", role="admin")
    platform.accounts.revoke_key(key.id)
    for headers in (
        {},
        bearer("lk_sec_not-a-real-key"),
        bearer(secret),  # revoked
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ):
        response = client.get("/api/v1/features", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), headers
        assert secret not in response.text
    assert (
        'error="invalid_token"'
        in client.get("/api/v1/features", headers=bearer("lk_sec_nope")).headers["WWW-Authenticate"]
    )


@pytest.mark.parametrize("key_type", ["sdk", "ingest"])
def test_sdk_and_ingest_keys_are_403_on_the_admin_api(
    platform: Platform, client: TestClient, key_type: Any
) -> None:
    secret, key = platform.accounts.create_key(
        key_type, created_by="test", project="default", environment="production"
    )
    response = client.get("/api/v1/features", headers=bearer(secret))
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert f"{key_type} key" in detail
    assert "secret key" in detail
    assert key.prefix in detail
    assert secret not in detail


#: (method, path, body, the lowest role allowed). Bodies are valid, so "allowed" means 2xx.
MATRIX: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/api/v1/features", None, "viewer"),
    ("GET", "/api/v1/environments/production", None, "viewer"),
    ("GET", "/api/v1/audit", None, "viewer"),
    ("POST", "/api/v1/fact-tables", {"key": "orders", "sql": "SELECT 1"}, "analyst"),
    ("POST", "/api/v1/metrics", {"key": "rate", "numerator": {"fact_table": "orders"}}, "analyst"),
    ("POST", "/api/v1/features", {"key": "flag"}, "editor"),
    ("POST", "/api/v1/experiments", {"key": "test"}, "editor"),
    ("POST", "/api/v1/saved-groups", {"key": "everyone"}, "editor"),
    ("POST", "/api/v1/environments", {"key": "qa"}, "admin"),
    ("POST", "/api/v1/projects", {"key": "web"}, "admin"),
    ("POST", "/api/v1/attributes", {"key": "country"}, "admin"),
    ("POST", "/api/v1/namespaces", {"key": "checkout"}, "admin"),
    ("GET", "/api/v1/keys", None, "admin"),
    ("POST", "/api/v1/keys", {"role": "viewer"}, "admin"),
    ("GET", "/api/v1/users", None, "admin"),
    ("POST", "/api/v1/users", {"email": "new@example.com", "password": PASSWORD}, "admin"),
]


def test_role_matrix(platform: Platform, client: TestClient) -> None:
    """Every role against every kind of operation: allowed exactly from the required role up."""
    keys = {
        role: bearer(platform.accounts.create_key("secret", created_by="t", role=role)[0])
        for role in ROLES
    }
    for role in ROLES:
        for method, path, template, needed in MATRIX:
            # Each role creates its own objects, so no create fails with 409 for existing ones.
            body = template and {
                k: f"{role}-{v}" if k in ("key", "email") else v for k, v in template.items()
            }
            response = client.request(method, path, json=body, headers=keys[role])
            allowed = rank(role) >= rank(needed)
            assert (response.status_code < 300) == allowed, (role, method, path, response.text)
            if not allowed:
                assert response.status_code == 403, (role, path)
                assert f"the {needed} role" in response.json()["detail"], response.text


def test_approving_needs_editor_even_for_analyst_objects(
    platform: Platform, client: TestClient, admin_key: str
) -> None:
    analyst = bearer(platform.accounts.create_key("secret", created_by="t", role="analyst")[0])
    drafted = client.post(
        "/api/v1/fact-tables",
        json={"key": "orders", "sql": "SELECT 1"},
        params={"publish": "false"},
        headers=bearer(admin_key),
    )
    path = f"/api/v1/fact-tables/orders/revisions/{drafted.json()['version']}"
    denied = client.post(f"{path}/approve", headers=analyst)
    assert denied.status_code == 403
    assert "editor" in denied.json()["detail"]
    # ... while publishing an analyst's object is the analyst's to do.
    assert client.post(f"{path}/publish", headers=analyst).status_code == 200


# -- sessions ---------------------------------------------------------------------------------


def test_login_me_and_logout(platform: Platform, client: TestClient) -> None:
    platform.accounts.create_user("Pat@Example.com", PASSWORD, roles={"default": "editor"})
    assert client.get("/api/v1/session").status_code == 401

    response = login(client, "pat@example.com")
    assert response.status_code == 200
    assert response.json()["actor"] == "user:pat@example.com"
    assert response.json()["roles"] == {"default": "editor"}
    cookie = response.headers["set-cookie"].lower()
    assert "liftkit_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie

    me = client.get("/api/v1/session")
    assert me.json()["user"]["email"] == "pat@example.com"
    created = client.post(
        "/api/v1/features", json={"key": "flag", "project": "default"}, headers=CSRF
    )
    assert created.status_code == 201
    audit = platform.registry.audit(collection_name="features", key="flag")
    assert audit[0].actor == "user:pat@example.com"

    token = client.cookies["liftkit_session"]
    assert client.delete("/api/v1/session", headers=CSRF).status_code == 204
    assert client.get("/api/v1/session").status_code == 401
    # The session is over on the server, not just forgotten by this browser.
    assert platform.accounts.session_user(token) is None
    client.cookies.set("liftkit_session", token)
    assert client.get("/api/v1/features").status_code == 401
    assert [e.action for e in platform.registry.audit(actor="user:pat@example.com")][:1] == [
        "logout"
    ]


def test_a_user_without_roles_can_log_in_but_not_read(
    platform: Platform, client: TestClient
) -> None:
    platform.accounts.create_user("new@example.com", PASSWORD)
    assert login(client, "new@example.com").json()["roles"] == {}
    for path in ("/api/v1/features", "/api/v1/environments"):
        response = client.get(path)
        assert response.status_code == 403
        assert "no role" in response.json()["detail"]


def test_wrong_password_and_unknown_user_look_the_same(
    platform: Platform, client: TestClient
) -> None:
    platform.accounts.create_user("pat@example.com", PASSWORD, roles={"*": "viewer"})
    wrong = login(client, "pat@example.com", "not the password")
    unknown = login(client, "nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers
    short = client.post("/api/v1/session", json={"email": "pat@example.com"}, headers=CSRF)
    assert short.status_code == 422
    assert short.json()["detail"][0]["loc"] == ["body", "password"]


def test_disabled_user_cannot_log_in_and_loses_sessions(
    platform: Platform, client: TestClient, admin_key: str
) -> None:
    user = platform.accounts.create_user("pat@example.com", PASSWORD, roles={"*": "viewer"})
    with TestClient(client.app) as browser:
        assert login(browser, "pat@example.com").status_code == 200
        assert browser.get("/api/v1/features").status_code == 200
        disabled = client.post(f"/api/v1/users/{user.id}/disable", headers=bearer(admin_key))
        assert disabled.json()["disabled"] is True
        assert browser.get("/api/v1/features").status_code == 401
        assert login(browser, "pat@example.com").status_code == 401
        client.post(f"/api/v1/users/{user.id}/enable", headers=bearer(admin_key))
        assert login(browser, "pat@example.com").status_code == 200


def test_csrf_header_required_for_cookie_writes(platform: Platform, client: TestClient) -> None:
    platform.accounts.create_user("pat@example.com", PASSWORD, roles={"*": "admin"})
    refused = login(client, "pat@example.com", **{"Content-Type": "application/json"})
    assert refused.status_code == 403  # login CSRF: no logging a browser into another account
    assert login(client, "pat@example.com").status_code == 200

    forged = client.post("/api/v1/features", json={"key": "flag"})
    assert forged.status_code == 403
    assert "X-Liftkit-Csrf" in forged.json()["detail"]
    assert client.delete("/api/v1/session").status_code == 403
    # Reads need no header; neither do writes with a key (keys are not sent by browsers).
    assert client.get("/api/v1/features").status_code == 200
    assert client.post("/api/v1/features", json={"key": "flag"}, headers=CSRF).status_code == 201
    secret, _ = platform.accounts.create_key("secret", created_by="t", role="admin")
    with TestClient(client.app) as script:
        keyed = script.post("/api/v1/features", json={"key": "other"}, headers=bearer(secret))
        assert keyed.status_code == 201


def test_authorization_header_wins_over_the_cookie(platform: Platform, client: TestClient) -> None:
    platform.accounts.create_user("pat@example.com", PASSWORD, roles={"*": "admin"})
    login(client, "pat@example.com")
    secret, key = platform.accounts.create_key("secret", created_by="t", role="viewer")
    me = client.get("/api/v1/session", headers=bearer(secret)).json()
    assert me["actor"] == key.actor
    assert me["key"]["prefix"] == key.prefix


# -- keys and users over the API ----------------------------------------------------------------


def test_keys_are_shown_once_and_can_be_revoked(client: TestClient, admin_key: str) -> None:
    admin = bearer(admin_key)
    created = client.post("/api/v1/keys", json={"name": "ci", "role": "editor"}, headers=admin)
    assert created.status_code == 201
    secret, record = created.json()["secret"], created.json()["key"]
    assert secret.startswith(record["prefix"])
    assert client.get("/api/v1/features", headers=bearer(secret)).status_code == 200

    listed = client.get("/api/v1/keys", headers=admin)
    assert record["id"] in [k["id"] for k in listed.json()]
    assert secret not in listed.text
    assert admin_key not in listed.text

    no_role = client.post("/api/v1/keys", json={"type": "secret"}, headers=admin)
    assert no_role.status_code == 422
    assert no_role.json()["detail"][0]["loc"] == ["body", "role"]
    no_project = client.post("/api/v1/keys", json={"role": "viewer", "project": "x"}, headers=admin)
    assert no_project.json()["detail"][0]["loc"] == ["body", "project"]

    revoked = client.delete(f"/api/v1/keys/{record['id']}", headers=admin)
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/features", headers=bearer(secret)).status_code == 401
    assert client.delete(f"/api/v1/keys/{record['id']}", headers=admin).status_code == 404


def test_sdk_connections(client: TestClient, admin_key: str) -> None:
    admin = bearer(admin_key)
    plain = client.post(
        "/api/v1/sdk-connections", json={"environment": "production"}, headers=admin
    )
    assert plain.status_code == 201
    assert plain.json()["decryption_key"] is None
    encrypted = client.post(
        "/api/v1/sdk-connections",
        json={"name": "web", "environment": "production", "encrypt": True},
        headers=admin,
    ).json()
    decryption_key = encrypted["decryption_key"]
    assert decryption_key
    assert encrypted["secret"].startswith("sdk-")

    listed = client.get("/api/v1/sdk-connections", headers=admin)
    by_id = {c["id"]: c for c in listed.json()}
    assert by_id[encrypted["key"]["id"]]["config"] == {"encrypted": True}
    assert decryption_key not in listed.text
    assert encrypted["secret"] not in listed.text
    # The client key reads payloads, never the admin API.
    assert client.get("/api/v1/features", headers=bearer(encrypted["secret"])).status_code == 403

    unknown = client.post("/api/v1/sdk-connections", json={"environment": "moon"}, headers=admin)
    assert unknown.json()["detail"][0]["loc"] == ["body", "environment"]
    secret_id = client.get("/api/v1/keys", params={"type": "secret"}, headers=admin).json()[0]["id"]
    assert client.delete(f"/api/v1/sdk-connections/{secret_id}", headers=admin).status_code == 404
    gone = client.delete(f"/api/v1/sdk-connections/{plain.json()['key']['id']}", headers=admin)
    assert gone.status_code == 200
    assert len(client.get("/api/v1/sdk-connections", headers=admin).json()) == 1


def test_users_roles_and_disabling(platform: Platform, client: TestClient, admin_key: str) -> None:
    admin = bearer(admin_key)
    created = client.post(
        "/api/v1/users",
        json={"email": "pat@example.com", "password": PASSWORD, "roles": {"default": "viewer"}},
        headers=admin,
    )
    assert created.status_code == 201
    user_id = created.json()["id"]
    assert created.json()["roles"] == {"default": "viewer"}
    assert "password" not in created.text
    dup = client.post(
        "/api/v1/users", json={"email": "PAT@example.com", "password": PASSWORD}, headers=admin
    )
    assert dup.status_code == 409
    bad_project = client.post(
        "/api/v1/users",
        json={"email": "x@example.com", "password": PASSWORD, "roles": {"nope": "viewer"}},
        headers=admin,
    )
    assert bad_project.json()["detail"][0]["loc"] == ["body", "roles", "nope"]

    promoted = client.put(
        f"/api/v1/users/{user_id}/roles/*", json={"role": "editor"}, headers=admin
    )
    assert promoted.json()["roles"] == {"default": "viewer", "*": "editor"}
    with TestClient(client.app) as browser:
        login(browser, "pat@example.com")
        assert browser.post("/api/v1/features", json={"key": "f"}, headers=CSRF).status_code == 201
        demoted = client.delete(f"/api/v1/users/{user_id}/roles/*", headers=admin)
        assert demoted.json()["roles"] == {"default": "viewer"}
        # Roles are read per request, so a change applies to a live session at once.
        assert browser.post("/api/v1/features", json={"key": "g"}, headers=CSRF).status_code == 403

    assert client.get("/api/v1/users", headers=admin).json()[0]["email"] == "pat@example.com"
    assert client.post("/api/v1/users/999/disable", headers=admin).status_code == 404
    actions = [e.action for e in platform.registry.audit(actor=f"key:{admin_key[:11]}")]
    assert {"user.create", "user.role"} <= set(actions)


def test_an_admin_cannot_disable_themselves(platform: Platform, client: TestClient) -> None:
    user = platform.accounts.create_user("root@example.com", PASSWORD, roles={"*": "admin"})
    login(client, "root@example.com")
    response = client.post(f"/api/v1/users/{user.id}/disable", headers=CSRF)
    assert response.status_code == 409
    assert not platform.accounts.user(user.id).disabled


# -- secrets stay out of logs -------------------------------------------------------------------


def test_secrets_never_reach_the_logs(
    platform: Platform, client: TestClient, admin_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = bearer(admin_key)
    platform.accounts.create_user("pat@example.com", PASSWORD, roles={"*": "admin"})
    sdk_secret, _ = platform.accounts.create_key(
        "sdk", created_by="t", project="default", environment="production"
    )
    wrong_password = "hunter2-wrong-password"
    unknown_key = "lk_sec_" + "x" * 32

    login(client, "pat@example.com", wrong_password)
    login(client, "pat@example.com")
    session_token = client.cookies["liftkit_session"]
    client.cookies.clear()
    client.get("/api/v1/features", headers=bearer(unknown_key))
    client.get("/api/v1/features", headers=bearer(sdk_secret))
    created = client.post("/api/v1/keys", json={"role": "viewer"}, headers=admin).json()
    encrypted = client.post(
        "/api/v1/sdk-connections",
        json={"environment": "production", "encrypt": True},
        headers=admin,
    ).json()
    client.post(
        "/api/v1/users", json={"email": "x@example.com", "password": "sh0rt!"}, headers=admin
    )

    logged = caplog.text
    # The log did record these events (by prefix and email), so the check below is not vacuous.
    assert "failed login for pat@example.com" in logged
    assert created["key"]["prefix"] in logged
    assert "rejected sdk key" in logged
    for secret in (
        PASSWORD,
        wrong_password,
        admin_key,
        sdk_secret,
        unknown_key,
        session_token,
        created["secret"],
        encrypted["secret"],
        encrypted["decryption_key"],
        "sh0rt!",
    ):
        assert secret not in logged
