"""Settings (users, keys, SDK connections, webhooks) and live counters, in-process."""

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from liftkit.app import create_app
from liftkit.automation.notify import Notifier
from liftkit.platform import Platform
from liftkit.registry.briefs import KnowledgeSettings
from liftkit.registry.playbooks import Webhook
from liftkit.settings import Settings
from liftkit.web import Web, install

HX = {"X-Liftkit-Csrf": "1", "HX-Request": "true"}
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One SQLite platform for the module (building an app takes seconds); tests that write
    use objects of their own."""
    data_dir = tmp_path_factory.mktemp("web-settings") / "data"
    settings = Settings(data_dir=data_dir, controller=False, reminders_interval_seconds=0)
    instance = Platform(settings)
    instance.bootstrap()
    accounts = instance.accounts
    accounts.create_user("ada@example.com", PASSWORD, name="Ada", roles={"*": "admin"})
    accounts.create_user("val@example.com", PASSWORD, name="Val", roles={"*": "viewer"})
    instance.registry.save("projects", {"key": "web", "name": "Web"}, "user:test")
    accounts.create_user("pat@example.com", PASSWORD, name="Pat", roles={"web": "admin"})
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="module")
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


@pytest.fixture
def admin(client: TestClient) -> TestClient:
    login(client, "ada@example.com")
    return client


def login(client: TestClient, email: str) -> None:
    response = client.post("/login", data={"email": email, "password": PASSWORD}, headers=HX)
    assert response.status_code == 204, response.text


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# -- users ----------------------------------------------------------------------------------


def test_admin_sees_every_section(admin: TestClient, platform: Platform) -> None:
    page = admin.get("/settings")
    assert page.status_code == 200
    for section in ('id="users"', 'id="keys"', 'id="sdk"', 'id="notifications"'):
        assert section in page.text
    for user in platform.accounts.users():
        assert user.email in page.text


def test_create_user_change_role_disable_enable(admin: TestClient, platform: Platform) -> None:
    created = admin.post(
        "/settings/users",
        data={"email": "new@example.com", "name": "New", "password": "long enough pw",
              "role": "editor", "project": "web"},
        headers=HX,
    )  # fmt: skip
    assert created.status_code == 200, created.text
    assert 'id="users"' in created.text and "new@example.com" in created.text
    user = next(u for u in platform.accounts.users() if u.email == "new@example.com")
    assert user.roles == {"web": "editor"}
    assert platform.accounts.authenticate("new@example.com", "long enough pw") is not None

    changed = admin.post(
        f"/settings/users/{user.id}/role", data={"project": "*", "role": "analyst"}, headers=HX
    )
    assert changed.status_code == 200, changed.text
    assert platform.accounts.user(user.id).roles == {"web": "editor", "*": "analyst"}
    removed = admin.post(
        f"/settings/users/{user.id}/role", data={"project": "web", "role": ""}, headers=HX
    )
    assert removed.status_code == 200
    assert platform.accounts.user(user.id).roles == {"*": "analyst"}

    assert admin.post(f"/settings/users/{user.id}/disable", headers=HX).status_code == 200
    assert platform.accounts.user(user.id).disabled
    assert platform.accounts.authenticate("new@example.com", "long enough pw") is None
    assert admin.post(f"/settings/users/{user.id}/enable", headers=HX).status_code == 200
    assert not platform.accounts.user(user.id).disabled
    actions = [a.action for a in platform.registry.audit(actor="user:ada@example.com")]
    for action in ("user.create", "user.role", "user.disable", "user.enable"):
        assert action in actions


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "", "password": "long enough pw", "role": "viewer"}, "email"),
        ({"email": "x@example.com", "password": "short", "role": "viewer"}, "password"),
        ({"email": "x@example.com", "password": "long enough pw", "role": "boss"}, "role"),
        ({"email": "x@example.com", "password": "long enough pw", "role": "viewer",
          "project": "nope"}, "project"),
        ({"email": "not-an-email", "password": "long enough pw", "role": "viewer"}, "email"),
    ],
)  # fmt: skip
def test_user_form_errors_name_the_field(
    admin: TestClient, platform: Platform, data: dict[str, str], field: str
) -> None:
    response = admin.post("/settings/users", data=data, headers=HX)
    assert response.status_code == 422, response.text
    assert field in response.text and response.headers["HX-Retarget"] == "#flash"
    assert "x@example.com" not in [u.email for u in platform.accounts.users()]


def test_admins_cannot_disable_themselves(admin: TestClient, platform: Platform) -> None:
    me = next(u for u in platform.accounts.users() if u.email == "ada@example.com")
    response = admin.post(f"/settings/users/{me.id}/disable", headers=HX)
    assert response.status_code == 409 and "yourself" in response.text
    assert not platform.accounts.user(me.id).disabled


# -- keys and SDK connections ---------------------------------------------------------------


def test_key_secret_is_shown_once_and_lists_show_the_prefix(
    admin: TestClient, platform: Platform
) -> None:
    response = admin.post(
        "/settings/keys",
        data={"type": "secret", "name": "ci deploys", "role": "editor", "project": ""},
        headers=HX,
    )
    assert response.status_code == 200, response.text
    secret = re.search(r'id="created-secret"[^>]*value="([^"]+)"', response.text)
    assert secret is not None
    key = platform.accounts.resolve_key(secret.group(1))
    assert key is not None and key.name == "ci deploys" and key.role == "editor"
    assert "will not be shown again" in response.text
    page = admin.get("/settings").text
    assert f"{key.prefix}…" in page and secret.group(1) not in page
    assert "ci deploys" in page
    audit = platform.registry.audit(actor="user:ada@example.com", limit=5)
    assert any(a.action == "key.create" and key.prefix in a.message for a in audit)

    revoked = admin.post(f"/settings/keys/{key.id}/revoke", headers=HX)
    assert revoked.status_code == 200 and "Revoked" in revoked.text
    assert platform.accounts.resolve_key(secret.group(1)) is None
    assert platform.accounts.key(key.id).revoked_at is not None
    again = admin.post(f"/settings/keys/{key.id}/revoke", headers=HX)
    assert again.status_code == 404


def test_ingest_key_works_on_the_events_endpoint(admin: TestClient, platform: Platform) -> None:
    response = admin.post("/settings/keys", data={"type": "ingest", "name": "web"}, headers=HX)
    found = re.search(r'id="created-secret"[^>]*value="([^"]+)"', response.text)
    assert found is not None and found.group(1).startswith("lk_ing_")
    posted = admin.post(
        "/api/v1/events", json=[], headers={"Authorization": f"Bearer {found.group(1)}"}
    )
    assert posted.status_code == 200


def test_sdk_connection_shows_urls_and_snippets(admin: TestClient, platform: Platform) -> None:
    base = platform.settings.base_url
    response = admin.post(
        "/settings/keys",
        data={"type": "sdk", "name": "mobile", "project": "web", "environment": "staging"},
        headers=HX,
    )
    assert response.status_code == 200, response.text
    found = re.search(r'id="created-secret"[^>]*value="([^"]+)"', response.text)
    assert found is not None
    full = found.group(1)
    key = platform.accounts.resolve_key(full)
    assert key is not None and (key.type, key.project, key.environment) == (
        "sdk", "web", "staging"
    )  # fmt: skip
    shown = text(response.text)
    assert f"{base}/api/features/{full}" in shown and f"{base}/sub/{full}" in shown
    assert f'client_key="{full}"' in shown and f'clientKey: "{full}"' in shown
    # The connections list is refreshed out of band.
    assert re.search(r'<section id="sdk"[^>]*hx-swap-oob="true"', response.text)
    deadline = time.monotonic() + 10  # the payload cache notices new keys within a poll
    while (payload := admin.get(f"/api/features/{full}")).status_code == 404:
        assert time.monotonic() < deadline, "the new SDK key never served a payload"
        time.sleep(0.1)
    assert payload.status_code == 200 and "features" in payload.json()
    page = text(admin.get("/settings").text)
    assert f"{base}/api/features/{key.prefix}…" in page and full not in page


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "secret", "name": "x"}, "role"),
        ({"type": "ingest", "role": "admin"}, "role"),
        ({"type": "sdk", "environment": "moon"}, "environment"),
        ({"type": "secret", "role": "viewer", "project": "nope"}, "project"),
        ({"type": "root"}, "type"),
    ],
)
def test_key_form_errors_name_the_field(
    admin: TestClient, platform: Platform, data: dict[str, str], field: str
) -> None:
    before = len(platform.accounts.keys(include_revoked=True))
    response = admin.post("/settings/keys", data=data, headers=HX)
    assert response.status_code == 422, response.text
    assert field in response.text
    assert len(platform.accounts.keys(include_revoked=True)) == before


def test_project_admins_manage_their_keys_only(client: TestClient, platform: Platform) -> None:
    login(client, "pat@example.com")
    page = client.get("/settings")
    assert page.status_code == 200 and 'id="users"' not in page.text
    assert 'id="keys"' in page.text
    made = client.post(
        "/settings/keys", data={"type": "ingest", "name": "pat's", "project": "web"}, headers=HX
    )
    assert made.status_code == 200, made.text
    everywhere = client.post("/settings/keys", data={"type": "ingest", "name": "all"}, headers=HX)
    assert everywhere.status_code == 403
    users = client.post("/settings/users", data={"email": "a@b.c"}, headers=HX)
    assert users.status_code == 403


def test_viewers_see_sdk_connections_read_only(client: TestClient, platform: Platform) -> None:
    platform.accounts.create_key("sdk", created_by="test", name="site", environment="production")
    login(client, "val@example.com")
    page = client.get("/settings")
    assert page.status_code == 200
    assert 'id="sdk"' in page.text and 'id="users"' not in page.text
    assert 'id="keys"' not in page.text and "Revoke" not in page.text
    assert "managed by admins" in page.text
    refused = client.post("/settings/keys", data={"type": "ingest"}, headers=HX)
    assert refused.status_code == 403
    key = platform.accounts.keys("sdk")[0]
    assert client.post(f"/settings/keys/{key.id}/revoke", headers=HX).status_code == 403
    assert platform.accounts.key(key.id).revoked_at is None
    hooks = client.post("/settings/notifications", data={"url": ""}, headers=HX)
    assert hooks.status_code == 403


# -- webhooks -------------------------------------------------------------------------------


def kb_settings(platform: Platform) -> KnowledgeSettings:
    found = platform.registry.find("knowledge-settings", "default")
    assert isinstance(found, KnowledgeSettings)
    return found


def test_knowledge_webhooks_and_recipients_are_edited(
    admin: TestClient, platform: Platform
) -> None:
    saved = admin.post(
        "/settings/notifications",
        data={"url": ["https://hooks.example.com/kb", ""], "format": ["slack", "liftkit"],
              "secret": ["${KB_SECRET}", ""], "digest_recipients": "a@example.com\nb@example.com"},
        headers=HX,
    )  # fmt: skip
    assert saved.status_code == 204, saved.text
    settings = kb_settings(platform)
    assert [(str(h.url), h.format, h.secret) for h in settings.notify] == [
        ("https://hooks.example.com/kb", "slack", "${KB_SECRET}")
    ]
    assert settings.digest_recipients == ["a@example.com", "b@example.com"]
    page = admin.get("/settings").text
    assert "https://hooks.example.com/kb" in page and "${KB_SECRET}" not in page
    # A blank secret keeps the one the same URL had; a second row adds a webhook.
    again = admin.post(
        "/settings/notifications",
        data={"url": ["https://hooks.example.com/kb", "https://other.example.com/x"],
              "format": ["slack", "liftkit"], "secret": ["", ""], "digest_recipients": ""},
        headers=HX,
    )  # fmt: skip
    assert again.status_code == 204
    hooks = kb_settings(platform).notify
    assert [h.secret for h in hooks] == ["${KB_SECRET}", ""]
    assert kb_settings(platform).digest_recipients == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"url": "not a url", "format": "liftkit", "secret": ""}, "url"),
        ({"url": "", "digest_recipients": "nobody"}, "digest_recipients"),
    ],
)
def test_notification_errors_name_the_field(
    admin: TestClient, data: dict[str, str], field: str
) -> None:
    response = admin.post("/settings/notifications", data=data, headers=HX)
    assert response.status_code == 422 and field in response.text


def test_outbox_lists_deliveries_with_status(admin: TestClient, platform: Platform) -> None:
    notifier = Notifier(platform.engine, clock=platform.clock)
    try:
        hook = Webhook(url="https://receiver.example.com/hook")  # type: ignore[arg-type]
        assert notifier.enqueue("ramp-up", "evt-outbox-1", [hook], {"type": "test"}) == 1
        queued = notifier.deliveries()
    finally:
        notifier.close()
    page = admin.get("/settings").text
    section = page[page.index('id="notifications"') :]
    assert "https://receiver.example.com/hook" in section and "ramp-up" in section
    assert f">{queued[0].status}<" in section


# -- live counters --------------------------------------------------------------------------


def exposures(experiment: str, counts: list[int], prefix: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    events = []
    for variation, count in enumerate(counts):
        for i in range(count):
            events.append({
                "type": "exposure", "event_id": f"{prefix}-{variation}-{i}", "timestamp": now,
                "experiment_key": experiment, "variation_id": variation, "hash_attribute": "id",
                "hash_value": f"{prefix}-user-{variation}-{i}",
            })  # fmt: skip
    return events


def live_units(html: str, experiment: str) -> list[int]:
    cells = re.findall(
        rf'data-experiment="{re.escape(experiment)}" data-variation="(\d+)".*?'
        r'class="num units">([\d,]+)<',
        html,
        flags=re.S,
    )
    return [int(n.replace(",", "")) for _, n in sorted(cells, key=lambda c: int(c[0]))]


def test_live_counters_follow_posted_events(admin: TestClient, platform: Platform) -> None:
    started = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    platform.registry.save(
        "experiments",
        {"key": "live-button", "name": "Live button", "status": "running",
         "variations": [{"key": "control"}, {"key": "blue"}],
         "phases": [{"name": "main", "started_at": started}]},
        "user:test",
    )  # fmt: skip
    page = admin.get("/live")
    assert page.status_code == 200
    assert 'hx-get="/live/counters"' in page.text and 'hx-trigger="every 2s"' in page.text
    assert "Live button" in page.text  # running, waiting for exposures
    ingest, _ = platform.accounts.create_key("ingest", created_by="test")
    admin_key, _ = platform.accounts.create_key("secret", created_by="test", role="admin")
    bearer = {"Authorization": f"Bearer {ingest}"}
    posted = admin.post(
        "/api/v1/events", json=exposures("live-button", [7, 4], "a"), headers=bearer
    )
    assert posted.status_code == 200 and posted.json()["accepted"] == 11
    api = admin.get("/api/v1/experiments/live-button/exposures", headers={
        "Authorization": f"Bearer {admin_key}"}).json()  # fmt: skip
    fragment = admin.get("/live/counters", headers=HX)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="live-counters"')
    assert live_units(fragment.text, "live-button") == api["units"]
    more = exposures("live-button", [0, 5], "b")
    assert admin.post("/api/v1/events", json=more, headers=bearer).status_code == 200
    after = admin.get("/live/counters", headers=HX).text
    assert live_units(after, "live-button") == [api["units"][0], api["units"][1] + 5]
    assert "Blue" in after or "blue" in after
    assert admin.app.state.pipeline.flush()  # type: ignore[attr-defined]
    status = admin.get("/api/v1/events/status", headers={"Authorization": f"Bearer {admin_key}"})
    stored = status.json()["loaded"]["exposures"]
    shown = re.search(r'class="exposures-stored">([\d,]+)<', admin.get("/live/counters").text)
    assert shown is not None and int(shown.group(1).replace(",", "")) == stored


def test_live_counters_say_when_there_is_no_pipeline(platform: Platform) -> None:
    api = FastAPI()
    install(api, Web(platform))
    with TestClient(api) as bare:
        login(bare, "ada@example.com")
        page = bare.get("/live")
        assert page.status_code == 200
        assert "Live counters are unavailable" in page.text
        assert 'hx-trigger="every 2s"' not in page.text
