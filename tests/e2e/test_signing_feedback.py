"""Signing with the keyboard alone, and the feedback around the signing button: it cannot be pressed
twice, and it says 「署名処理中…」 while the signature is being made."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, Route, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from tests.conftest import reread
from tests.e2e.conftest import Pages
from tests.e2e.steps import send_contract, staff_pair
from tests.e2e.support import Mailbox, check_accessibility

pytestmark = pytest.mark.e2e

SIGNING_IN_PROGRESS = "署名処理中…"


def focused_name(page: Page) -> str:
    """What a screen reader would roughly announce for the focused element: its text or label."""
    return str(page.evaluate(
        """() => { const el = document.activeElement;
                   if (!el || el === document.body) return "";
                   return (el.getAttribute("aria-label") || el.innerText || el.value || "").trim(); }"""))


def tab_to(page: Page, name: str, *, limit: int = 60) -> None:
    """Press Tab until the element named `name` has the focus; assert the focus is visible there."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused_name(page).startswith(name):
            outline = page.evaluate(
                """() => { const s = getComputedStyle(document.activeElement);
                           return s.outlineStyle !== "none" && s.outlineWidth !== "0px" || s.boxShadow !== "none"; }""")
            assert outline, f"「{name}」 has the focus but no visible focus indicator"
            return
    raise AssertionError(f"「{name}」 not reached with {limit} presses of Tab")


def test_a_vendor_signs_with_the_keyboard_alone(pages: Pages, session: Session, app: Flask,
                                                mailbox: Mailbox) -> None:
    staff, approver = staff_pair(session)
    link = send_contract(app, session, mailbox, staff, approver)
    page = pages.desk()
    page.goto(link)

    tab_to(page, "2. 仕様書")
    page.keyboard.press("Enter")
    expect(page.get_by_role("tab", name="2. 仕様書")).to_have_attribute("aria-selected", "true")

    tab_to(page, "完了する")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="署名手続きを完了する")).to_be_visible()
    check_accessibility(page, "confirmation reached by keyboard")

    tab_to(page, "署名手続きを完了する")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="署名手続きが完了しました。")).to_be_visible(timeout=30_000)
    check_accessibility(page, "signed by keyboard")


def _hold_signing_requests(page: Page) -> list[Route]:
    """Keep the browser's POST …/complete waiting until the test releases it, to look at the button meanwhile."""
    held: list[Route] = []
    page.route("**/complete", lambda route: held.append(route))
    return held


def _open_confirmation(pages: Pages, session: Session, app: Flask, mailbox: Mailbox) -> Page:
    staff, approver = staff_pair(session)
    page = pages.phone()
    page.goto(send_contract(app, session, mailbox, staff, approver))
    page.get_by_role("link", name="完了する", exact=True).tap()
    expect(page.get_by_role("button", name="署名手続きを完了する")).to_be_visible()
    return page


def test_the_signing_button_cannot_be_pressed_twice(pages: Pages, session: Session, app: Flask,
                                                    mailbox: Mailbox) -> None:
    page = _open_confirmation(pages, session, app, mailbox)
    held = _hold_signing_requests(page)
    button = page.locator("#action-panel form button[type=submit]")

    button.tap()
    expect(button).to_be_disabled()
    button.dispatch_event("click")  # a second press, the way an impatient thumb does it
    button.tap(force=True)
    expect(button).to_be_disabled()
    assert len(held) == 1
    held[0].continue_()

    expect(page.get_by_role("heading", name="署名手続きが完了しました。")).to_be_visible(timeout=30_000)
    signed = reread(session).scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == AuditAction.CONTRACT_SIGNED))
    assert signed == 1
    assert len(held) == 1


def test_the_signing_button_says_that_it_is_signing(pages: Pages, session: Session, app: Flask,
                                                    mailbox: Mailbox) -> None:
    page = _open_confirmation(pages, session, app, mailbox)
    held = _hold_signing_requests(page)

    page.get_by_role("button", name="署名手続きを完了する").tap()

    try:
        expect(page.locator("#action-panel")).to_contain_text(SIGNING_IN_PROGRESS, timeout=3_000)
    finally:
        for route in held:
            route.continue_()
        expect(page.get_by_role("heading", name="署名手続きが完了しました。")).to_be_visible(timeout=30_000)
