"""Real-browser fixtures: Debian's Chromium driven by Playwright against create_app() on a loopback port.

- `live_server`: the app of tests/conftest.py (real commits on the test database) served by a threaded
  werkzeug server; request exceptions on the server fail the test.
- `mailbox`: the aiosmtpd server of tests/services/smtp.py; `mailbox.wait_for()` runs the outbox.
- `pages.desk()` / `pages.phone()`: a page in a fresh browser context (one per person: staff, approver,
  vendor), an office PC (1280×800) or a phone (390×844, touch). axe-core is preloaded; console errors,
  uncaught errors, failed requests and 4xx/5xx answers fail the test (see support.Problems).

Playwright is started per package, not per session: while the sync API is alive it marks an asyncio
loop as running in the main thread, which would break later tests that call asyncio.run().
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import POSTGRES_URL, require_tool
from tests.e2e.support import AXE_PATH, Mailbox, Problems
from tests.services.live import LiveServer
from tests.services.smtp import SmtpServer, free_port

# The flags of .library machines' notes: no GPU, and no background calls to Google's hosts, which
# this closed network refuses (they would show up as noise, and slow every start).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESK = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}
CONTACT = {"CONTACT_PHONE": "086-224-2111", "CONTACT_EMAIL": "keiyaku@pref.example.jp",
           "CONTACT_HOURS": "平日 8:30-17:15", "CONTACT_FORM_URL": "https://www.pref.example.jp/form/keiyaku"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser journeys on one database: PostgreSQL when configured (CI), else SQLite.

    Developers run them on SQLite with every `make test`; CI adds PostgreSQL's row locks under a
    threaded server. Twice would double the suite's ~2 minutes for little more coverage.
    """
    if not POSTGRES_URL:
        return
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_sqlite = item.get_closest_marker("e2e") is not None and params.get("database_url") == "sqlite"
        (drop if on_sqlite else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """Debian's /usr/bin/chromium (never a downloaded browser); under CI=true a missing one fails."""
    executable = require_tool("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def live_port() -> int:
    return free_port()


@pytest.fixture
def app_config(smtp_server: SmtpServer, live_port: int) -> dict[str, Any]:
    """Mails go to the test SMTP server; links in them point at the live server."""
    return {**smtp_server.settings, **CONTACT, "PUBLIC_BASE_URL": f"http://127.0.0.1:{live_port}"}


@pytest.fixture
def live_server(app: Flask, live_port: int) -> Iterator[LiveServer]:
    with LiveServer(app, live_port) as server:
        yield server
    assert not server.errors, "exceptions on the server:\n" + "\n".join(server.errors)


@pytest.fixture
def mailbox(app: Flask, smtp_server: SmtpServer) -> Mailbox:
    return Mailbox(app, smtp_server)


@pytest.fixture
def problems() -> Problems:
    return Problems()


class Pages:
    """Opens pages, each in its own browser context (own cookies), as the different people of a journey."""

    def __init__(self, browser: Browser, server: LiveServer, problems: Problems) -> None:
        self.browser = browser
        self.server = server
        self.problems = problems
        self.contexts: list[BrowserContext] = []

    def desk(self, width: int = 1280, height: int = 800) -> Page:
        """An office PC (staff, or a vendor at their desk); the manual's screenshots use 1366×768."""
        return self._open({"viewport": {"width": width, "height": height}} if (width, height) != (1280, 800)
                          else DESK)

    def phone(self) -> Page:
        """A phone-sized touch screen, 390×844 (a vendor opening the link from the mail)."""
        return self._open(PHONE)

    def _open(self, device: dict[str, Any]) -> Page:
        context = self.browser.new_context(
            base_url=self.server.url, locale="ja-JP", timezone_id="Asia/Tokyo", accept_downloads=True,
            **device,
        )
        context.set_default_timeout(10_000)
        context.add_init_script(path=str(AXE_PATH))
        self.problems.watch(context)
        self.contexts.append(context)
        return context.new_page()

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(chromium: Browser, live_server: LiveServer, problems: Problems) -> Iterator[Pages]:
    """Factory of pages; after the test, any console error or failed request fails it."""
    opened = Pages(chromium, live_server, problems)
    yield opened
    opened.close()
    problems.assert_none()
