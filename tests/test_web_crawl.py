"""Every page a person can reach by following links renders, without a console error.

A breadth-first walk from the overview over same-site links (the dashboard's own pages, not the
API, static files or the switcher), in a real browser on the demo's data, so a detail page that
only breaks on some object's data is found without naming it in a test.
"""

from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest

from web_support import Console, Live

pytestmark = pytest.mark.browser

#: More than the demo's pages (every list and each object's detail page), as a safety stop.
LIMIT = 300
SKIP_PREFIXES = ("/static/", "/api/", "/switch", "/logout", "/docs", "/openapi.json")
#: The Prometheus endpoint (the dashboard's metrics are at /metrics/).
PROMETHEUS = "/metrics"


def _page_path(live: Live, href: str) -> str | None:
    url, _ = urldefrag(href)
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != live.url:
        return None
    path = parts.path or "/"
    if path == PROMETHEUS or path.startswith(SKIP_PREFIXES):
        return None
    # One visit per path: query strings are filters, sort orders and calendar windows of pages
    # already visited (and "Later" links would go on for ever).
    return path


def test_every_linked_page_renders_without_console_errors(
    page: Any, live: Live, console: Console
) -> None:
    seen: set[str] = {"/"}
    queue = ["/"]
    failures: list[str] = []
    visited = 0
    while queue and visited < LIMIT:
        path = queue.pop(0)
        before = len(console.errors)
        response = page.goto(f"{live.url}{path}")
        visited += 1
        status = response.status if response is not None else 0
        kind = (response.headers.get("content-type", "") if response is not None else "").lower()
        if status >= 400:
            failures.append(f"{path}: HTTP {status}")
        if "text/html" not in kind:
            continue
        if page.locator("h1").count() != 1:
            failures.append(f"{path}: {page.locator('h1').count()} <h1> elements")
        page.wait_for_load_state("networkidle")
        if len(console.errors) > before:
            failures.append(f"{path}: console {console.errors[before:]}")
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        for href in hrefs:
            found = _page_path(live, href)
            if found is not None and found not in seen:
                seen.add(found)
                queue.append(found)
    console.errors.clear()  # reported above, with the page they came from
    assert failures == [], "\n".join(failures)
    assert visited < LIMIT, "the walk did not finish: raise LIMIT or skip a generated link"
    assert visited >= 60, f"only {visited} pages were reachable: {sorted(seen)}"
