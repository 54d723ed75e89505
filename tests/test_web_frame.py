"""The dashboard's frame in-process: login, redirects, CSRF, roles, errors, packaged assets."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from liftkit.app import create_app
from liftkit.platform import Platform
from liftkit.web._core import STATIC

HX = {"X-Liftkit-Csrf": "1", "HX-Request": "true"}
PASSWORD = "correct horse battery"
TEMPLATES = Path(STATIC).parent / "templates"


@pytest.fixture
def client(web_platform: Platform) -> Iterator[TestClient]:
    platform = web_platform
    platform.bootstrap()
    platform.accounts.create_user("ada@example.com", PASSWORD, name="Ada", roles={"*": "admin"})
    platform.accounts.create_user("val@example.com", PASSWORD, name="Val", roles={"*": "viewer"})
    platform.registry.save("projects", {"key": "web", "name": "Web"}, "user:test")
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def login(client: TestClient, email: str = "ada@example.com", next: str = "/") -> None:
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "next": next}, headers=HX
    )
    assert response.status_code == 204, response.text


def test_pages_need_a_login_and_return_to_where_they_were(client: TestClient) -> None:
    response = client.get("/?a=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/%3Fa%3D1"
    response = client.post(
        "/login", data={"email": "ada@example.com", "password": PASSWORD, "next": "/?a=1"},
        headers=HX,
    )  # fmt: skip
    assert response.headers["HX-Redirect"] == "/?a=1"
    assert "Ada" in client.get("/").text


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "javascript:x",
        "/\\evil.example",
        "/\t/evil.example",
    ],
)
def test_login_never_redirects_off_site(client: TestClient, target: str) -> None:
    response = client.post(
        "/login", data={"email": "ada@example.com", "password": PASSWORD, "next": target},
        headers=HX,
    )  # fmt: skip
    assert response.headers["HX-Redirect"] == "/"


def test_login_errors_name_the_field_and_wrong_passwords_are_refused(
    client: TestClient, web_platform: Platform
) -> None:
    missing = client.post("/login", data={"email": "ada@example.com"}, headers=HX)
    assert missing.status_code == 422
    assert "password" in missing.text and missing.headers["HX-Retarget"] == "#flash"
    wrong = client.post("/login", data={"email": "ada@example.com", "password": "x"}, headers=HX)
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    assert client.get("/", follow_redirects=False).status_code == 303
    assert [a.action for a in web_platform.registry.audit(actor="user:ada@example.com")] == []


def test_changes_need_the_csrf_header(client: TestClient) -> None:
    refused = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert refused.status_code == 403 and "X-Liftkit-Csrf" in refused.text
    assert "<h1>" in refused.text  # a page for a person, not the API's JSON
    login(client)
    assert client.post("/logout").status_code == 403
    assert client.get("/").status_code == 200


def test_logout_ends_the_session(client: TestClient, web_platform: Platform) -> None:
    login(client)
    assert client.post("/logout", headers=HX).headers["HX-Redirect"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303
    actions = [
        (a.action, a.message) for a in web_platform.registry.audit(actor="user:ada@example.com")
    ]
    assert actions == [("logout", ""), ("login", "dashboard")]


def test_switcher_keeps_only_known_projects_and_environments(client: TestClient) -> None:
    login(client)
    client.get("/switch", params={"project": "web", "environment": "staging", "next": "/"})
    page = client.get("/").text
    assert re.search(r'<option value="web" selected>', page)
    assert re.search(r'<option value="staging" selected>', page)
    client.get("/switch", params={"project": "nope", "environment": "nope", "next": "/"})
    page = client.get("/").text
    assert re.search(r'<option value="web" selected>', page), "unknown choices are ignored"
    response = client.get("/switch", params={"next": "https://evil.example/"},
                          follow_redirects=False)  # fmt: skip
    assert response.headers["location"] == "/"


def test_viewers_do_not_see_roles_they_lack(client: TestClient) -> None:
    login(client, "val@example.com")
    response = client.get("/")
    assert response.status_code == 200 and "Val" in response.text


def test_unknown_pages_are_a_404_for_people(client: TestClient) -> None:
    login(client)
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.text
    api = client.get("/api/v1/no-such-endpoint")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


def test_assets_are_packaged_and_nothing_is_fetched_from_elsewhere(client: TestClient) -> None:
    for asset in ("vendor/htmx.min.js", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css",
                  "liftkit.js", "liftkit.css", "favicon.svg"):  # fmt: skip
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and len(response.content) > 100, asset
    for licence in ("htmx.LICENSE", "uPlot.LICENSE"):
        assert (STATIC / "vendor" / licence).read_text().strip()
    external = re.compile(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", re.I)
    own = [*TEMPLATES.rglob("*.html"), STATIC / "liftkit.js", STATIC / "liftkit.css"]
    offenders = [str(p) for p in own if external.search(p.read_text())]
    assert offenders == []
    base = (TEMPLATES / "base.html").read_text()
    assert "/static/vendor/htmx.min.js" in base


def test_lists_show_only_projects_the_viewer_may_read(
    client: TestClient, web_platform: Platform
) -> None:
    """A person with a role in one project sees nothing of another on any list, nor the
    organisation-wide audit entries (logins, users, keys) that the API keeps for viewers of
    every project."""
    registry = web_platform.registry
    registry.save("features", {"key": "secret-default-flag"}, "user:test")
    registry.save("features", {"key": "visible-web-flag", "project": "web"}, "user:test")
    registry.save("experiments", {"key": "secret-default-test", "variations": [
        {"key": "a"}, {"key": "b"}]}, "user:test")  # fmt: skip
    web_platform.accounts.create_user("wes@example.com", PASSWORD, roles={"web": "viewer"})
    login(client, "wes@example.com")
    for path in ("/", "/features", "/experiments", "/playbooks", "/metrics/", "/fact-tables"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "secret-default" not in page.text, path
        assert "ada@example.com" not in page.text, f"{path} shows organisation-wide audit entries"
    assert "visible-web-flag" in client.get("/features").text
    assert client.get("/features/secret-default-flag").status_code == 403


def test_pages_cannot_be_framed_and_unknown_api_calls_stay_json(client: TestClient) -> None:
    login(client)
    page = client.get("/")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    for method in ("GET", "POST", "DELETE"):
        response = client.request(method, "/api/v1/no-such-endpoint", headers=HX)
        assert response.status_code == 404 and response.json() == {"detail": "Not Found"}, method


BIG = 2**63


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("GET", f"/experiments/anything/results?snapshot={BIG}", {}),
        ("POST", f"/settings/keys/{BIG}/revoke", {}),
        ("POST", f"/settings/users/{BIG}/role", {"role": "viewer"}),
        ("POST", f"/features/anything/revisions/{BIG}/publish", {}),
        ("POST", "/features/anything/revert", {"version": "²"}),
        ("POST", "/knowledge/briefs/new", {"key": "k", "name": "n", "criteria.min_days": "inf"}),
    ],
)
def test_out_of_range_numbers_are_a_422_not_a_server_error(
    client: TestClient, method: str, path: str, data: dict[str, str]
) -> None:
    login(client)
    response = client.request(method, path, data=data or None, headers=HX)
    assert response.status_code == 422, response.text
