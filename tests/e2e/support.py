"""What the browser journeys share: the live server, the problem collector, axe-core, mail and screenshots."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response

from portal.mail.service import deliver_pending
from tests.services.smtp import Inbox, SmtpServer

HERE = Path(__file__).parent
REPO = HERE.parent.parent
AXE_PATH = HERE / "vendor" / "axe.min.js"
SCREENSHOT_DIR = REPO / "docs" / "screenshots"
URL_RE = re.compile(r"https?://[^\s<>\"）」]+")


# ---------------------------------------------------------------- console errors and failed requests


@dataclass
class Problems:
    """Console errors, uncaught page errors, failed requests and error responses seen by any watched context.

    A test expecting an error status (a 410 for an expired link, an htmx 500 it provokes) says so
    with `allow(pattern, status)`; 422 answers to htmx requests are the forms' normal refusal.
    """

    found: list[str] = field(default_factory=list)
    _allowed: list[tuple[re.Pattern[str], int | None]] = field(default_factory=list)
    _allowed_console: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, url_pattern: str, status: int | None = None) -> None:
        """Accept responses (or, with status None, network failures too) on URLs matching url_pattern."""
        self._allowed.append((re.compile(url_pattern), status))

    def allow_console(self, text_pattern: str) -> None:
        """Accept console errors matching text_pattern (htmx logs the failures a test provokes)."""
        self._allowed_console.append(re.compile(text_pattern))

    def watch(self, context: BrowserContext) -> None:
        context.on("console", self._on_console)
        context.on("weberror", lambda error: self.found.append(f"uncaught page error: {error.error}"))
        context.on("requestfailed", self._on_request_failed)
        context.on("response", self._on_response)

    def _is_allowed(self, url: str, status: int | None) -> bool:
        return any(p.search(url) and (s is None or s == status) for p, s in self._allowed)

    def _on_console(self, message: ConsoleMessage) -> None:
        # Chromium also logs every 4xx/5xx subresource as "Failed to load resource"; _on_response
        # judges those by status, so only the other errors (script errors, CSP refusals) count here.
        if message.type != "error" or message.text.startswith("Failed to load resource"):
            return
        if not any(p.search(message.text) for p in self._allowed_console):
            self.found.append(f"console error on {message.location.get('url')}: {message.text}")

    def _on_request_failed(self, request: Request) -> None:
        failure = request.failure or ""
        if self._is_allowed(request.url, None):
            return
        # ERR_ABORTED is the page cancelling its own load: a click on an attachment link turns the
        # navigation into a download, htmx swaps out lazy page images, a navigation or closing the page
        # cancels scripts still loading. A server that fails answers with a status (_on_response) or
        # refuses the connection (another error code), and both still count.
        if "ERR_ABORTED" in failure:
            return
        self.found.append(f"request failed: {request.method} {request.url} ({failure})")

    def _on_response(self, response: Response) -> None:
        status = response.status
        if status < 400 or self._is_allowed(response.url, status):
            return
        if status == 422 and response.request.headers.get("hx-request") == "true":
            return
        self.found.append(f"HTTP {status}: {response.request.method} {response.url}")

    def assert_none(self) -> None:
        assert not self.found, "problems in the browser:\n" + "\n".join(self.found)


# ---------------------------------------------------------------- accessibility (axe-core)

AXE_SOURCE = AXE_PATH.read_text(encoding="utf-8")
BLOCKING_IMPACTS = ("serious", "critical")


def check_accessibility(page: Page, where: str, *, selector: str | None = None) -> list[dict[str, Any]]:
    """Run axe-core on the page (or one region of it); fail on any serious or critical violation.

    axe is installed into every page with add_init_script (see the `pages` fixture), so the portal's
    CSP (script-src 'self') needs no exception. Returns the minor/moderate violations for information.
    """
    page.wait_for_load_state("load")
    violations: list[dict[str, Any]] = page.evaluate(
        """async (selector) => {
            const result = await axe.run(selector ? document.querySelector(selector) : document,
                                         {resultTypes: ["violations"]});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " — " + n.failureSummary)}));
        }""",
        selector,
    )
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe-core: serious/critical violations on {where} ({page.url}):\n" + "\n".join(
        f"- [{v['impact']}] {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in blocking
    )
    return [v for v in violations if v["impact"] not in BLOCKING_IMPACTS]


# ---------------------------------------------------------------- mail


@dataclass
class Mailbox:
    """The test SMTP server's inbox, filled by running the outbox as the worker would after each commit."""

    app: Flask
    smtp: SmtpServer

    @property
    def messages(self) -> list[EmailMessage]:
        return self.smtp.inbox.messages

    def wait_for(self, to: str, subject: str, timeout: float = 10.0) -> EmailMessage:
        """The first mail to `to` whose subject contains `subject`; delivers the outbox until it arrives."""
        deadline = time.monotonic() + timeout
        while True:
            with self.app.app_context():
                deliver_pending()
            for message in self.smtp.inbox.to(to):
                if subject in str(message["Subject"]):
                    return message
            if time.monotonic() > deadline:
                seen = [f"{m['To']}: {m['Subject']}" for m in self.messages]
                raise AssertionError(f"no mail to {to} with {subject!r} within {timeout}s; inbox: {seen}")
            time.sleep(0.1)

    @staticmethod
    def text(message: EmailMessage) -> str:
        return Inbox.text(message)

    @staticmethod
    def link(message: EmailMessage, path_prefix: str) -> str:
        """The URL in the mail's text whose path starts with path_prefix (e.g. "/s/")."""
        for url in URL_RE.findall(Inbox.text(message)):
            if re.match(r"https?://[^/]+" + re.escape(path_prefix), url):
                return url
        raise AssertionError(f"no {path_prefix} link in the mail:\n{Inbox.text(message)}")


# ---------------------------------------------------------------- screenshots


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot of a main screen. Written into docs/screenshots/ when UPDATE_SCREENSHOTS=1,
    otherwise into the test's output folder, so that an ordinary test run leaves the tree clean."""
    target_dir = SCREENSHOT_DIR if os.environ.get("UPDATE_SCREENSHOTS") == "1" else _scratch_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{name}.png"
    # Let images and fonts settle: a half-painted page makes a poor picture in the README.
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="initial")
    return path


def _scratch_dir() -> Path:
    return Path(os.environ.get("E2E_OUTPUT_DIR", "/tmp/keiyaku-e2e-screenshots"))


def until(condition: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
    """Poll condition() until it returns something truthy (for state the browser does not show)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.1)
