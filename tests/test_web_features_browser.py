"""The Features pages in a real browser: create a flag, publish it, and see an SDK pick it up.

Each test makes features with keys of its own: the demo server is shared by every browser test.
The SDK is liftkit's own client fetching from the live server with the demo's production key.
"""

import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

import liftkit
from web_support import Live, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def sdk(live: Live) -> Iterator[liftkit.Client]:
    client = liftkit.Client(
        api_host=live.url, client_key=live.demo.credentials.sdk_key, streaming=False
    )
    try:
        yield client
    finally:
        client.close()


def eventually(client: liftkit.Client, key: str, expected: Any, seconds: float = 10) -> None:
    """Refresh the SDK until it serves ``expected`` for ``key`` (payloads are recompiled on
    publish, so this is quick; the loop only absorbs the server's scheduling)."""
    deadline = time.monotonic() + seconds
    read: Callable[[], Any] = lambda: client.for_user({"id": "visitor-1"}).get(key, "absent")  # noqa: E731
    while True:
        client.refresh()
        if read() == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert read() == expected


def create(page: Any, live: Live, key: str, kind: str = "release", publish: bool = False) -> None:
    page.goto(f"{live.url}/features")
    page.get_by_role("button", name="New feature").click()
    dialog = page.locator("dialog#new-feature")
    dialog.get_by_label("Key").fill(key)
    dialog.get_by_label("Kind").select_option(kind)
    dialog.get_by_label("Value type").select_option("boolean")
    dialog.get_by_label("Default value").fill("false")
    if publish:
        dialog.get_by_label("Publish at once").check()
    dialog.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(rf"/features/{re.escape(key)}\?done="))
    expect(page.get_by_role("heading", level=1)).to_have_text(key)


def test_create_publish_and_an_sdk_picks_it_up_then_turn_it_off(
    page: Any, live: Live, sdk: liftkit.Client
) -> None:
    key = f"web-flag-{secrets.token_hex(4)}"
    page.goto(f"{live.url}/features")
    shot(page, "features")
    create(page, live, key)
    expect(page.get_by_text("Saved as a draft")).to_be_visible()

    card = page.locator("section[aria-labelledby='env-production']")
    card.get_by_text("Add a rule (draft)").click()
    card.get_by_label("Rule type").select_option("force")
    card.get_by_label("Value", exact=True).fill("true")
    card.get_by_role("button", name="Add rule").click()
    expect(card.get_by_role("cell", name="everyone")).to_be_visible()
    card.get_by_role("button", name="Turn on in production (draft)").click()
    expect(card.get_by_role("button", name="Turn off in production (draft)")).to_be_visible()

    diff = page.locator("table.diff")
    expect(diff).to_have_count(1)
    expect(diff).to_contain_text("environments")
    expect(diff).to_contain_text("production-1")
    eventually(sdk, key, "absent")  # a draft reaches nobody

    page.get_by_role("button", name=re.compile(r"^Publish v\d+$")).click()
    expect(page.get_by_text("Published: SDKs get the change")).to_be_visible()
    expect(page.get_by_text("No open drafts.")).to_be_visible()
    shot(page, "feature-detail")
    eventually(sdk, key, True)

    with live.api() as api:
        response = api.get(f"/api/v1/features/{key}")
    assert response.json()["environments"]["production"]["enabled"] is True

    card = page.locator("section[aria-labelledby='env-production']")
    card.get_by_role("button", name="Turn off in production now").click()
    page.locator("dialog#off-production").get_by_role("button", name="Yes, turn it off").click()
    expect(page.get_by_text("Published: SDKs get the change")).to_be_visible()
    expect(card.get_by_role("button", name="Turn off in production now")).to_have_count(0)
    eventually(sdk, key, "absent")
    trail = page.locator("table.audit")
    expect(trail).to_contain_text("turned off in production")


def test_kill_switch_flips_what_an_sdk_serves(page: Any, live: Live, sdk: liftkit.Client) -> None:
    key = f"web-kill-{secrets.token_hex(4)}"
    create(page, live, key, kind="kill-switch", publish=True)
    expect(page.get_by_text("Published: SDKs get the change")).to_be_visible()
    eventually(sdk, key, "absent")  # on in no environment yet

    page.get_by_role("button", name="Activate kill switch in production").click()
    confirm = page.locator("dialog#kill-production")
    expect(confirm).to_contain_text("Everyone in production gets true")
    confirm.get_by_role("button", name="Yes, activate it").click()
    expect(page.get_by_text("ACTIVE: serving true")).to_be_visible()
    eventually(sdk, key, True)
    shot(page, "feature-kill-switch")

    page.get_by_role("button", name="Release kill switch in production").click()
    page.locator("dialog#kill-production").get_by_role("button", name="Yes, release it").click()
    expect(page.get_by_text("ACTIVE: serving true")).to_have_count(0)
    eventually(sdk, key, False)  # still on, back to its default
    with live.api() as api:
        history = api.get(f"/api/v1/features/{key}/revisions").json()
    assert [r["status"] for r in history] == ["published"] * 3


def test_list_filters_narrow_the_table(page: Any, live: Live) -> None:
    page.goto(f"{live.url}/features")
    page.locator("form.filters").get_by_label("Kind").select_option("kill-switch")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"kind=kill-switch"))
    shown = page.locator("table.features tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.key)"
    )
    with live.api() as api:
        found = api.get("/api/v1/features", params={"status": "kill-switch", "limit": 500})
    assert set(shown) == {f["key"] for f in found.json()["items"]}
    assert "checkout-kill-switch" in shown


def test_detail_page_controls_are_labelled_and_dialogs_open_by_keyboard(
    page: Any, live: Live
) -> None:
    page.goto(f"{live.url}/features/checkout-kill-switch")
    page.locator("details.editor > summary").evaluate_all("els => els.forEach(e => e.click())")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => el.type !== 'hidden' && !el.closest('dialog:not([open])'))
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.outerHTML.slice(0, 120))"""
    )
    assert unlabelled == []
    assert page.locator("h1").count() == 1
    page.get_by_role("button", name="Activate kill switch in staging").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#kill-staging")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
