"""The dashboard under test: the demo organisation served by uvicorn, and a real browser.

``live`` builds the whole demo once per session (``liftkit.demo.build``) and serves it on a free
loopback port in a background thread, lifespan and all (pipeline, controller, reminders).
``browser`` is Debian's headless Chromium driven by Playwright through ``executable_path``; it is
required, never skipped: the Makefile installs it (``make browser``), and a missing binary fails
with the command that fixes it.

``page`` is a fresh, logged-in browser tab; any console error or uncaught exception on it fails
the test at teardown (tests that provoke an error on purpose call ``expect_console_errors``).
``shot(page, name)`` saves a screenshot under ``artifacts/screenshots`` (``LIFTKIT_ARTIFACTS``
moves it) so a person can look at what the tests saw.
"""

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from liftkit.app import create_app
from liftkit.demo import Demo, build
from liftkit.platform import Platform
from liftkit.settings import Settings

CHROMIUM = os.environ.get("LIFTKIT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("LIFTKIT_ARTIFACTS", Path(__file__).parent.parent / "artifacts"))
CSRF = {"X-Liftkit-Csrf": "1"}


@dataclass
class Live:
    """A served demo: its address, the platform behind it, and the demo's credentials."""

    url: str
    platform: Platform
    demo: Demo

    def api(self) -> httpx.Client:
        """An admin API client (bearer key) against the live server."""
        key = self.demo.credentials.admin_key
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    port = _free_port()
    settings = Settings(data_dir=tmp_path_factory.mktemp("web-demo"), port=port)
    demo = build(settings, users=4_000)
    platform = Platform(settings)
    config = uvicorn.Config(
        create_app(platform), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.05)
    try:
        yield Live(f"http://127.0.0.1:{port}", platform, demo)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        platform.close()


@pytest.fixture
def web_platform(tmp_path: Path) -> Iterator[Platform]:
    """A platform on SQLite only, for in-process page tests (the registry's PostgreSQL path is
    covered by the registry and API tests; pages add nothing database-specific)."""
    instance = Platform(Settings(data_dir=tmp_path / "data"))
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"the browser tests need Debian's chromium at {CHROMIUM}: run `make browser` "
            "(apt-get install chromium) or set LIFTKIT_CHROMIUM"
        )
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class Console:
    """Console errors and uncaught exceptions seen on a page."""

    errors: list[str] = field(default_factory=list)
    expected: bool = False


def log_in(page: Any, live: Live, email: str | None = None, password: str | None = None) -> None:
    """Log in through the real form, as a person would."""
    credentials = live.demo.credentials
    page.goto(f"{live.url}/login")
    page.get_by_label("Email").fill(email or credentials.admin_email)
    page.get_by_label("Password").fill(password or credentials.admin_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.url}/")


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def anonymous_page(browser: Any, live: Live, console: Console) -> Iterator[Any]:
    """A fresh browser tab, not logged in, with console errors collected."""
    context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.on("console", lambda m: m.type == "error" and console.errors.append(m.text))
    tab.on("pageerror", lambda e: console.errors.append(f"uncaught: {e}"))
    try:
        yield tab
    finally:
        context.close()
    if not console.expected:
        assert console.errors == [], f"console errors on the page: {console.errors}"


@pytest.fixture
def page(anonymous_page: Any, live: Live) -> Any:
    """A fresh, logged-in (demo admin) browser tab."""
    log_in(anonymous_page, live)
    return anonymous_page


def expect_console_errors(console: Console) -> None:
    """For a test that provokes a 4xx on purpose: Chromium logs failed requests as errors."""
    console.expected = True


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artefact and return its path."""
    path = ARTIFACTS / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
