"""The Features pages in-process: list filters, drafts and diffs, publishing, revert, approvals,
the kill switch, roles and form errors. Expected selections come from the registry itself."""

import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

import liftkit
from liftkit.app import create_app
from liftkit.platform import Platform
from liftkit.registry.accounts import Role
from liftkit.registry.features import Feature
from liftkit.registry.hygiene import stale_flags
from liftkit.registry.payload import compile_payload
from liftkit.settings import Settings

HX = {"X-Liftkit-Csrf": "1", "HX-Request": "true"}
PASSWORD = "correct horse battery"
ACTOR = "user:seed@example.com"


class Clock:
    """A clock the test moves, so flags can grow stale without waiting a month."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _everywhere(enabled: bool, *rules: dict[str, Any]) -> dict[str, Any]:
    return {e: {"enabled": enabled, "rules": list(rules)} for e in ("development", "production")}


SEED: list[dict[str, Any]] = [
    {"key": "dark-mode", "owner": "sam", "tags": ["ui"],
     "environments": {"production": {"enabled": True,
                                     "rules": [{"type": "force", "value": True}]}}},
    {"key": "search-v2", "owner": "chen", "tags": ["search", "ui"],
     "description": "Faster search backend", "environments": _everywhere(False)},
    {"key": "checkout-kill", "kind": "kill-switch", "owner": "ops",
     "environments": _everywhere(True)},
    {"key": "pricing-copy", "kind": "experiment", "value_type": "string",
     "default_value": "control", "owner": "maya",
     "environments": _everywhere(True, {"type": "experiment", "experiment": "no-such-test"})},
    {"key": "web-banner", "project": "web", "owner": "sam", "tags": ["ui"]},
]  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One seeded platform for the module (building the app takes seconds): tests that change
    things work on features of their own, so they can run in any order."""
    clock = Clock()
    settings = Settings(data_dir=tmp_path_factory.mktemp("features") / "data", controller=False)
    platform = Platform(settings, clock=clock)
    platform.bootstrap()
    platform.registry.save("projects", {"key": "web", "name": "Web"}, ACTOR)
    for body in SEED:
        platform.registry.save("features", body, ACTOR, message="seed")
    clock.now += timedelta(days=40)  # old enough for the age-based hygiene findings
    users: list[tuple[str, Role]] = [("ada", "admin"), ("ed", "editor"), ("val", "viewer")]
    for email, role in users:
        platform.accounts.create_user(f"{email}@example.com", PASSWORD, roles={"*": role})
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture(scope="module")
def app(site: Platform) -> Any:
    return create_app(site)


@pytest.fixture
def login(app: Any) -> Callable[[str], TestClient]:
    """A logged-in client (own cookies) for ``ada`` (admin), ``ed`` (editor) or ``val``."""

    def log_in(who: str) -> TestClient:
        client = TestClient(app)
        response = client.post(
            "/login", data={"email": f"{who}@example.com", "password": PASSWORD}, headers=HX
        )
        assert response.status_code == 204, response.text
        return client

    return log_in


@pytest.fixture
def ada(login: Callable[[str], TestClient]) -> TestClient:
    return login("ada")


def make(site: Platform, key: str, **body: Any) -> str:
    site.registry.save("features", {"key": key, **body}, ACTOR, message="test setup")
    return key


def listed(client: TestClient, **params: str) -> set[str]:
    response = client.get("/features", params=params)
    assert response.status_code == 200, response.text
    return set(re.findall(r'<tr data-key="([^"]+)"', response.text))


def served(platform: Platform, key: str, env: str = "production") -> Any:
    """What an SDK for ``env`` gets for ``key`` from the payload compiled now."""
    compiled = compile_payload(platform.registry.snapshot(), environment=env, now=platform.clock())
    client = liftkit.Client(payload=compiled.payload, streaming=False)
    try:
        return client.for_user({"id": "user-1"}).get(key, "absent")
    finally:
        client.close()


def live(platform: Platform, key: str) -> Feature:
    found = platform.registry.get("features", key)
    assert isinstance(found, Feature)
    return found


def post(client: TestClient, url: str, data: dict[str, str] | None = None) -> Any:
    return client.post(url, data=data or {}, headers=HX)


def redirected(response: Any) -> str:
    assert response.status_code == 204, response.text
    return str(response.headers["HX-Redirect"])


# -- the list ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params", [{"kind": "kill-switch"}, {"kind": "experiment"}, {"tag": "ui"}, {"owner": "sam"}]
)
def test_indexed_filters_select_what_the_registry_selects(
    site: Platform, ada: TestClient, params: dict[str, str]
) -> None:
    names = {"kind": "status"}
    query: dict[str, Any] = {names.get(k, k): v for k, v in params.items()}
    expected = site.registry.page("features", **query)
    assert listed(ada, **params) == {f.key for f in expected.items}
    assert listed(ada, **params)  # the example data matches something


def test_search_covers_key_and_description(ada: TestClient) -> None:
    assert listed(ada, q="faster") == {"search-v2"}  # in the description only
    assert listed(ada, q="DARK") == {"dark-mode"}
    assert listed(ada, q="nothing-like-this") == set()


@pytest.mark.parametrize("stale", ["stale", "fresh", "off-everywhere", "broken-reference"])
def test_staleness_filter_follows_the_hygiene_report(
    site: Platform, ada: TestClient, stale: str
) -> None:
    findings = stale_flags(site.registry, site.clock())
    every = {f.key for f in site.registry.all("features")}
    flagged = {f.key for f in findings if stale in ("stale", f.category)}
    expected = every - {f.key for f in findings} if stale == "fresh" else flagged
    assert listed(ada, stale=stale) == expected
    assert "checkout-kill" not in {f.key for f in findings}  # kill switches are meant to stay
    assert {"search-v2", "pricing-copy"} <= {f.key for f in findings}


def test_the_list_shows_state_in_the_switchers_environment_and_project(
    site: Platform, ada: TestClient
) -> None:
    page = ada.get("/features").text
    row = re.search(r'<tr data-key="dark-mode">(.*?)</tr>', page, re.S)
    assert row is not None and 'badge good">on<' in row.group(1)  # on in production
    assert "stale: off-everywhere" in page
    ada.cookies.set("liftkit_environment", "development")
    row = re.search(r'<tr data-key="dark-mode">(.*?)</tr>', ada.get("/features").text, re.S)
    assert row is not None and 'badge">off<' in row.group(1)
    ada.cookies.set("liftkit_project", "web")
    web = {f.key for f in site.registry.page("features", project="web").items}
    assert listed(ada) == web == {"web-banner"}


# -- drafts, diffs, publishing, revert --------------------------------------------------------


def test_create_draft_diff_publish_reaches_the_payload(site: Platform, ada: TestClient) -> None:
    form = {"key": "new-checkout", "kind": "release", "value_type": "boolean",
            "default_value": "false", "owner": "ada", "project": "default"}  # fmt: skip
    assert redirected(post(ada, "/features", form)) == "/features/new-checkout?done=draft"
    assert site.registry.find("features", "new-checkout") is None  # a draft, not live
    assert "new-checkout" in ada.get("/features").text  # under "never published"

    url = "/features/new-checkout/environments/production"
    redirected(post(ada, f"{url}/rules", {"type": "force", "value": "true", "condition": ""}))
    redirected(post(ada, f"{url}/enabled", {"enabled": "true"}))
    history = site.registry.revisions("features", "new-checkout")
    assert [r.status for r in history] == ["discarded", "discarded", "draft"]
    draft = history[-1]
    assert draft.body is not None and draft.body["environments"]["production"]["enabled"]
    assert draft.message.split("; ") == [
        "created in the dashboard", "add a force rule in production", "turn on in production"
    ]  # fmt: skip

    page = ada.get("/features/new-checkout").text
    assert f"Draft v{draft.version}" in page
    for field in draft.body:  # never published: the diff lists every field as added
        assert f"<code>{field}</code>" in page
    assert served(site, "new-checkout") == "absent"

    done = redirected(post(ada, f"/features/new-checkout/revisions/{draft.version}/publish"))
    assert done == "/features/new-checkout?done=published"
    assert served(site, "new-checkout") is True
    assert served(site, "new-checkout", "development") == "absent"  # only production is on
    assert "Published" in ada.get(done).text


def test_edits_add_to_ones_own_draft_and_revert_restores_a_version(
    site: Platform, ada: TestClient
) -> None:
    key = make(site, "revert-me", tags=["ui"], environments={
        "production": {"enabled": True, "rules": [{"type": "force", "value": True}]}})  # fmt: skip
    first = site.registry.revisions("features", key)[-1]
    details = {"default_value": "true", "owner": "sam", "tags": "ui, dark", "description": "x"}
    redirected(post(ada, f"/features/{key}/details", details))
    redirected(post(ada, f"/features/{key}/environments/production/rules/production-1/remove"))
    draft = site.registry.revisions("features", key)[-1]
    assert draft.status == "draft" and draft.body is not None
    assert draft.body["default_value"] is True and draft.body["tags"] == ["ui", "dark"]
    assert draft.body["environments"]["production"]["rules"] == []
    page = ada.get(f"/features/{key}").text
    changes = site.registry.diff("features", key, draft.version)
    assert {c.path for c in changes} >= {"default_value", "tags"}
    for change in changes:
        assert f"<code>{change.path}</code>" in page
    redirected(post(ada, f"/features/{key}/revisions/{draft.version}/publish"))
    assert live(site, key).default_value is True

    assert f"Revert to v{first.version}" in ada.get(f"/features/{key}").text
    done = redirected(post(ada, f"/features/{key}/revert", {"version": str(first.version)}))
    assert done.endswith("done=published")
    assert live(site, key).model_dump(mode="json") == first.body
    message = f"revert to version {first.version}"
    assert site.registry.revisions("features", key)[-1].message == message
    assert message in ada.get(f"/features/{key}").text  # the audit trail


def test_discarding_a_draft_leaves_the_live_object(site: Platform, ada: TestClient) -> None:
    key = make(site, "discard-me")
    before = live(site, key)
    redirected(post(ada, f"/features/{key}/environments/development/enabled", {"enabled": "true"}))
    draft = site.registry.revisions("features", key)[-1]
    done = redirected(post(ada, f"/features/{key}/revisions/{draft.version}/discard"))
    assert done.endswith("done=discarded")
    assert site.registry.revision("features", key, draft.version).status == "discarded"
    assert live(site, key) == before


# -- approvals --------------------------------------------------------------------------------


def test_where_approval_is_required_someone_else_must_approve(
    site: Platform, ada: TestClient, login: Callable[[str], TestClient]
) -> None:
    # an environment of its own, so the other tests' features never need approval
    site.registry.save("environments", {"key": "guarded", "requires_approval": True}, ACTOR)
    key = make(site, "needs-review", environments={"guarded": {"enabled": False}})
    redirected(post(ada, f"/features/{key}/environments/guarded/enabled", {"enabled": "true"}))
    version = site.registry.revisions("features", key)[-1].version
    base = f"/features/{key}/revisions/{version}"
    page = ada.get(f"/features/{key}").text
    assert "needs approval" in page and f'hx-post="{base}/approve"' not in page  # own draft

    refused = post(ada, f"{base}/publish")
    assert refused.status_code == 409 and refused.headers["HX-Retarget"] == "#flash"
    assert "requires approval" in refused.text
    assert post(ada, f"{base}/approve").status_code == 403
    assert redirected(post(ada, f"{base}/request-review")).endswith("done=review")

    ed = login("ed")
    assert f'hx-post="{base}/approve"' in ed.get(f"/features/{key}").text
    assert redirected(post(ed, f"{base}/approve")).endswith("done=approved")
    assert redirected(post(ada, f"{base}/publish")).endswith("done=published")
    assert live(site, key).environments["guarded"].enabled
    assert served(site, key, "guarded") is False  # on, serving the default
    assert site.registry.revision("features", key, version).reviewer == "user:ed@example.com"

    # the quick "off" publishes at once elsewhere, but waits for review here
    done = redirected(post(ada, f"/features/{key}/environments/guarded/off"))
    assert done.endswith("done=review")
    assert live(site, key).environments["guarded"].enabled
    assert "Waiting for review" in ada.get(done).text


# -- the kill switch --------------------------------------------------------------------------


def test_kill_switch_and_quick_off_publish_at_once_and_are_audited(
    site: Platform, ada: TestClient
) -> None:
    key = make(site, "kill-me", kind="kill-switch", environments=_everywhere(True))
    assert "Activate kill switch in production" in ada.get(f"/features/{key}").text
    assert served(site, key) is False
    url = f"/features/{key}/environments/production/kill"
    assert redirected(post(ada, url, {"active": "true"})).endswith("done=published")
    assert served(site, key) is True
    assert served(site, key, "development") is False
    entry = site.registry.audit(collection_name="features", key=key, limit=1)[0]
    assert entry.actor == "user:ada@example.com" and "activated in production" in entry.message
    assert "ACTIVE" in ada.get(f"/features/{key}").text
    redirected(post(ada, url, {"active": "false"}))
    assert served(site, key) is False

    flag = make(site, "quick-off", environments={
        "production": {"enabled": True, "rules": [{"type": "force", "value": True}]}})  # fmt: skip
    refused = post(ada, f"/features/{flag}/environments/production/kill", {"active": "true"})
    assert refused.status_code == 422 and "kill-switch flags" in refused.text
    assert served(site, flag) is True
    redirected(post(ada, f"/features/{flag}/environments/production/off"))
    assert served(site, flag) == "absent"
    assert not live(site, flag).environments["production"].enabled
    assert site.registry.revisions("features", flag)[-1].status == "published"


# -- roles and bad input ----------------------------------------------------------------------


def test_viewers_see_no_edit_controls_and_are_refused(
    site: Platform, login: Callable[[str], TestClient]
) -> None:
    val = login("val")
    assert "New feature" not in val.get("/features").text
    page = val.get("/features/dark-mode").text
    assert "dark-mode" in page and 'hx-post="/features' not in page
    count = len(site.registry.revisions("features", "dark-mode"))
    for url, data in [
        ("/features", {"key": "sneaky", "default_value": "false"}),
        ("/features/dark-mode/environments/production/enabled", {"enabled": "false"}),
        ("/features/dark-mode/environments/production/off", {}),
        ("/features/dark-mode/details", {"default_value": "true"}),
        ("/features/dark-mode/revert", {"version": "1"}),
        ("/features/dark-mode/revisions/1/publish", {}),
    ]:
        response = post(val, url, data)
        assert response.status_code == 403, (url, response.text)
        assert "editor role" in response.text
    assert len(site.registry.revisions("features", "dark-mode")) == count
    assert site.registry.find("features", "sneaky") is None


@pytest.mark.parametrize(
    ("url", "data", "field"),
    [
        ("/features", {"key": "", "default_value": "false"}, "key"),
        ("/features", {"key": "has spaces", "default_value": "false"}, "key"),
        ("/features", {"key": "n", "value_type": "number", "default_value": "1x"},
         "default_value"),
        ("/features", {"key": "k", "kind": "forever", "default_value": "false"}, "kind"),
        ("/features/dark-mode/environments/production/json", {"rules": "[{oops"}, "rules"),
        ("/features/dark-mode/environments/production/json", {"rules": '[{"type": "force"}]'},
         "environments.production.rules.0"),
        ("/features/dark-mode/environments/production/rules",
         {"type": "rollout", "value": "true", "coverage": "150"}, "coverage"),
        ("/features/dark-mode/environments/production/rules",
         {"type": "force", "value": "true", "condition": "[1]"}, "condition"),
    ],
)  # fmt: skip
def test_bad_input_is_a_422_naming_the_field_and_saves_nothing(
    site: Platform, ada: TestClient, url: str, data: dict[str, str], field: str
) -> None:
    audit = len(site.registry.audit(collection_name="features", limit=500))
    response = post(ada, url, data)
    assert response.status_code == 422, response.text
    assert response.headers["HX-Retarget"] == "#flash"
    assert field in response.text
    assert len(site.registry.audit(collection_name="features", limit=500)) == audit


def test_unknown_feature_and_environment_are_404(ada: TestClient) -> None:
    assert ada.get("/features/no-such-flag").status_code == 404
    assert post(ada, "/features/dark-mode/environments/mars/off").status_code == 404


def test_the_json_editor_round_trips_an_environments_rules(site: Platform, ada: TestClient) -> None:
    key = make(site, "json-me", value_type="string", default_value="a", environments={
        "production": {"enabled": True, "rules": [
            {"type": "rollout", "value": "b", "coverage": 0.25, "condition": {"plan": "pro"}},
            {"type": "force", "value": "c", "saved_groups": [{"match": "any", "ids": ["x"]}]},
        ]}})  # fmt: skip
    page = ada.get(f"/features/{key}").text
    found = re.search(
        r'<textarea id="j-rules-production" name="rules"[^>]*>(.*?)</textarea>', page, re.S
    )
    assert found is not None
    text = html.unescape(found.group(1))
    redirected(post(ada, f"/features/{key}/environments/production/json",
                    {"rules": text, "enabled": "on"}))  # fmt: skip
    draft = site.registry.revisions("features", key)[-1]
    assert draft.status == "draft"
    assert site.registry.diff("features", key, draft.version) == []
