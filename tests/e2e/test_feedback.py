"""Feedback people notice: htmx failures show a visible, announced message instead of doing nothing,
and uploads show their progress."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from tests.e2e.conftest import Pages
from tests.e2e.steps import log_in, staff_pair
from tests.e2e.support import Problems, check_accessibility
from tests.factories import make_contract
from tests.pdfs import make_pdf

pytestmark = pytest.mark.e2e

STATUS_TAB = r"/usage-requests/\?status="


def _usage_requests_page(pages: Pages, session: Session) -> Page:
    staff, _ = staff_pair(session)
    page = pages.desk()
    log_in(page, staff)
    page.goto("/usage-requests/")
    return page


def test_a_server_error_shows_a_message(pages: Pages, session: Session, problems: Problems) -> None:
    page = _usage_requests_page(pages, session)
    problems.allow(STATUS_TAB, 500)
    problems.allow_console(r"Response Status Error Code 500")
    page.route("**/usage-requests/?status=*", lambda route: route.fulfill(status=500, body="boom"))

    page.get_by_role("link", name="受付済").click()

    message = page.get_by_role("alert")
    expect(message).to_be_visible()
    expect(message).to_contain_text("処理できませんでした。画面を再読み込みしてから")
    expect(message).not_to_contain_text("500")  # words, not a bare status code
    check_accessibility(page, "htmx 500 message")


def test_a_refusal_shows_the_servers_words(pages: Pages, session: Session, problems: Problems) -> None:
    page = _usage_requests_page(pages, session)
    problems.allow(STATUS_TAB, 429)
    problems.allow_console(r"Response Status Error Code 429")
    partial = ('<div class="alert alert-error" role="alert" data-error-message><p><strong>'
               '操作が多すぎます。一時的に受け付けを止めています。</strong></p>'
               '<p>1 分ほど待ってから、もう一度お試しください。</p></div>')
    page.route("**/usage-requests/?status=*", lambda route: route.fulfill(status=429, body=partial,
                                                                          content_type="text/html"))

    page.get_by_role("link", name="受付済").click()

    message = page.locator("#htmx-error")
    expect(message).to_be_visible()
    expect(message).to_contain_text("一時的に受け付けを止めています。 1 分ほど待ってから")


def test_a_lost_connection_shows_a_message(pages: Pages, session: Session, problems: Problems) -> None:
    page = _usage_requests_page(pages, session)
    problems.allow(STATUS_TAB)
    problems.allow_console(r"^htmx:(sendError|afterRequest)$")
    page.route("**/usage-requests/?status=*", lambda route: route.abort("internetdisconnected"))

    page.get_by_role("link", name="受付済").click()

    message = page.get_by_role("alert")
    expect(message).to_be_visible()
    expect(message).to_contain_text("通信できませんでした")

    page.unroute("**/usage-requests/?status=*")
    page.get_by_role("link", name="差戻し").click()
    expect(message).to_be_hidden()  # the next request that goes through clears it


def test_an_upload_shows_its_progress(pages: Pages, session: Session, app: Flask) -> None:
    staff, approver = staff_pair(session)
    contract = make_contract(session, staff=staff, approver=approver, business_name="令和8年度 公用車リース")
    page = pages.desk()
    log_in(page, staff)
    page.goto(f"/contracts/{contract.id}")
    # Record what the progress bar shows at each progress event (after upload.js has updated it).
    page.evaluate("""() => { window.progressSeen = [];
        document.addEventListener("htmx:xhr:progress", () => {
            const bar = document.querySelector("progress.upload-progress");
            if (bar) window.progressSeen.push({visible: !bar.hidden, value: bar.value});
        }); }""")
    # A slow office line: 1 MB at 4 Mbit/s takes about two seconds.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20, "downloadThroughput": -1,
                                                  "uploadThroughput": 512 * 1024})

    page.get_by_label("PDF を追加（複数選択・ドラッグ＆ドロップ可）").set_input_files(
        files=[{"name": "見積書.pdf", "mimeType": "application/pdf", "buffer": make_pdf("Estimate", size=1024 * 1024)}])
    page.get_by_role("button", name="アップロード").click()
    expect(page.locator("progress.upload-progress")).to_be_visible()

    expect(page.locator("#documents").get_by_role("link", name=re.compile("^見積書"))).to_be_visible(timeout=30_000)
    seen = page.evaluate("() => window.progressSeen")
    assert any(s["visible"] and 0 < s["value"] < 100 for s in seen), seen
    check_accessibility(page, "contract after upload")
