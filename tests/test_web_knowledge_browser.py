"""The knowledge base in a real browser against the live demo: search as you type, open a
result, move a brief, write one, and look at ideas, the calendar, the leaderboard and the digest.

The demo is shared by every browser test, so this module writes only briefs with keys of its
own. What the pages should show is read from the ``KnowledgeBase`` facade over the live
platform (the one the API uses), never written down here.
"""

import re
import secrets
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from liftkit.knowledge.base import KnowledgeBase
from web_support import Console, Live, expect_console_errors, shot

pytestmark = pytest.mark.browser


def make_brief(live: Live, word: str) -> str:
    """A brief with a word no demo brief uses, written through the API like a script would."""
    key = f"kb-browser-{word}"
    body = {
        "key": key,
        "name": f"Browser probe {word}",
        "hypothesis": {
            "change": f"a {word} banner on the product page",
            "audience": "returning visitors",
            "result": "add more to their carts",
            "reason": "they look for what is new",
        },
        "surface": "product-page",
        "team": "growth",
        "tags": ["browser-test"],
        "metrics": {"primary": ["orders"]},
        "owners": ["someone@example.com"],
        "scores": {"impact": 6, "confidence": 5, "ease": 7},
    }
    with live.api() as api:
        response = api.post("/api/v1/briefs", json=body)
        assert response.status_code == 201, response.text
    return key


def test_search_the_knowledge_base_and_open_a_result(page: Any, live: Live) -> None:
    word = "zq" + secrets.token_hex(4)
    key = make_brief(live, word)
    kb = KnowledgeBase(live.platform)
    assert [h.key for h in kb.search(word)[0]] == [key]

    page.goto("/knowledge")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Knowledge base")
    page.get_by_label("Search", exact=True).fill(word)  # htmx fetches results as you type
    result = page.locator(".kb-hit").get_by_role("link", name=f"Browser probe {word}")
    expect(result).to_be_visible()
    expect(page.locator(".kb-hit")).to_have_count(1)
    expect(page.locator(".kb-snippet mark").first).to_have_text(word)
    expect(page).to_have_url(re.compile(rf"q={word}"))
    shot(page, "knowledge")

    result.click()
    page.wait_for_url(f"**/knowledge/briefs/{key}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Browser probe {word}")
    checklist = kb.checklist(kb.brief(key))
    expect(page.locator(".kb-checklist tbody tr")).to_have_count(len(checklist))
    # Lifecycle: an htmx button, then the page again with the facade's new stage.
    page.get_by_role("button", name="Move to planned").click()
    expect(page.locator(".kb-status .badge.stage")).to_have_text("planned")
    assert kb.record(key).stage == "planned"
    shot(page, "brief")


def test_write_a_brief_in_the_form(page: Any, live: Live, console: Console) -> None:
    expect_console_errors(console)  # the first try is refused with a 422 on purpose
    key = "kb-form-" + secrets.token_hex(3)
    page.goto("/knowledge/briefs/new")
    page.get_by_label("Key", exact=True).fill(key)
    page.get_by_label("Title").fill("Written in the browser")
    page.get_by_label("Change", exact=True).fill(
        "a free sample bag with the first subscription order"
    )
    page.get_by_label("Minimum detectable effect").fill("-2")
    page.get_by_role("button", name="Create brief").click()
    expect(page.locator("#flash")).to_contain_text("criteria.mde")
    page.get_by_label("Minimum detectable effect").fill("0.05")
    page.get_by_role("button", name="Create brief").click()
    page.wait_for_url(f"**/knowledge/briefs/{key}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Written in the browser")
    assert KnowledgeBase(live.platform).brief(key).criteria.mde == 0.05


def test_planning_pages_show_the_facades_data(page: Any, live: Live) -> None:
    kb = KnowledgeBase(live.platform)
    make_brief(live, "zq" + secrets.token_hex(4))  # at least one idea
    page.goto("/ideas")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ideas")
    ideas = [i.record.key for i in kb.ideas()]
    shown = page.locator(".kb-ideas tbody tr").evaluate_all("rs => rs.map(r => r.dataset.key)")
    assert shown == ideas
    shot(page, "ideas")

    # Two briefs planned on one surface at once (a surface of their own): a conflict.
    surface, today = "kb-surface-" + secrets.token_hex(3), live.platform.clock().date()
    with live.api() as api:
        for n in (1, 2):
            brief = {
                "key": f"{surface}-{n}", "name": f"Conflicting {n}", "surface": surface,
                "stage": "planned", "planned_start": (today + timedelta(days=n)).isoformat(),
                "planned_end": (today + timedelta(days=n + 14)).isoformat(),
            }  # fmt: skip
            assert api.post("/api/v1/briefs", json=brief).status_code == 201
    _, conflicts = kb.calendar()
    start = min(c.start for c in conflicts).date()
    page.goto(f"/calendar?start={start.isoformat()}&weeks=52")
    expect(page.get_by_role("heading", level=1)).to_contain_text("calendar")
    end = datetime.combine(start, time(), tzinfo=UTC) + timedelta(weeks=53)
    in_window = [c for c in conflicts if c.start < end]
    expect(page.locator(".kb-conflicts li")).to_have_count(len(in_window))
    for c in in_window:
        for key in (c.a, c.b):
            expect(page.locator(f'tr[data-key="{key}"]')).to_have_class("conflict")
    page.goto("/calendar")
    expect(page.locator(f'tr[data-key="{surface}-1"] td.week.conflict').first).to_be_visible()
    shot(page, "calendar")

    page.goto("/leaderboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Leaderboard")
    shot(page, "leaderboard")

    page.goto("/digest")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Digest")
    frame = page.frame_locator("iframe.kb-digest")
    expect(frame.get_by_role("heading", level=1)).to_contain_text("liftkit digest")
    shot(page, "digest")
