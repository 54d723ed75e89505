"""The dashboard frame in a real browser: logging in, every page, accessibility basics."""

import re
from typing import Any

import pytest

from web_support import Console, Live, expect_console_errors, log_in, shot

pytestmark = pytest.mark.browser

#: Every page in the main navigation (the per-area tests go deeper).
PAGES = [
    "/",
    "/features",
    "/experiments",
    "/playbooks",
    "/metrics/",  # /metrics itself is the Prometheus endpoint
    "/fact-tables",
    "/knowledge",
    "/ideas",
    "/calendar",
    "/leaderboard",
    "/digest",
    "/live",
    "/settings",
]


def test_login_redirects_back_and_wrong_password_says_so(
    anonymous_page: Any, live: Live, console: Console
) -> None:
    page = anonymous_page
    page.goto(f"{live.url}/features")
    assert "/login" in page.url
    expect_console_errors(console)  # the failed login is a 401 on purpose
    page.get_by_label("Email").fill(live.demo.credentials.admin_email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    assert "Wrong email or password" in alert.inner_text()
    page.get_by_label("Password").fill(live.demo.credentials.admin_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.url}/features")


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_without_console_errors(page: Any, live: Live, path: str) -> None:
    response = page.goto(f"{live.url}{path}")
    assert response is not None and response.status == 200, path
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").count() >= 1, f"{path} has no heading"
    name = "home" if path == "/" else path.strip("/").replace("/", "-")
    shot(page, name)


@pytest.mark.parametrize("path", PAGES)
def test_every_form_control_has_a_label(page: Any, live: Live, path: str) -> None:
    page.goto(f"{live.url}{path}")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => el.type !== 'hidden' && !el.closest('dialog:not([open])'))
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby'))
            .map(el => el.outerHTML.slice(0, 120))"""
    )
    assert unlabelled == [], f"{path}: form controls without a label: {unlabelled}"


def test_keyboard_reaches_the_navigation_and_skip_link(page: Any, live: Live) -> None:
    page.goto(f"{live.url}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
    reached = []
    page.goto(f"{live.url}/")
    for _ in range(20):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.getAttribute('href')"))
    assert "/features" in reached and "/experiments" in reached


def test_switcher_scopes_lists_to_a_project(page: Any, live: Live) -> None:
    page.goto(f"{live.url}/")
    page.get_by_label("Project").select_option("checkout")
    page.wait_for_url(re.compile(r".*/$"))
    assert page.get_by_label("Project").input_value() == "checkout"
    assert "Overview · checkout" in page.locator("h1").inner_text()


def test_logout_ends_the_session(browser: Any, live: Live) -> None:
    context = browser.new_context(base_url=live.url)
    tab = context.new_page()
    try:
        log_in(tab, live)
        tab.get_by_role("button", name="Log out").click()
        tab.wait_for_url(re.compile(r".*/login$"))
        tab.goto(f"{live.url}/")
        assert "/login" in tab.url
    finally:
        context.close()
