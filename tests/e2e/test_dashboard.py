"""The staff home page as a to-do list: its counts (and the menu's) follow one contract from the draft
to the last signature, for the clerk who sends it and the approver who decides and signs."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from portal.contracts import service as contracts
from tests.e2e.conftest import Pages
from tests.e2e.steps import complete_signing, confirm_dialogs, log_in, make_contract, staff_pair
from tests.e2e.support import Mailbox, check_accessibility, screenshot
from tests.pdfs import make_pdf

pytestmark = pytest.mark.e2e


def count(page: Page, key: str) -> str:
    """The count of one to-do section, read afresh from the home page."""
    page.goto("/")
    return page.locator(f"#todo-{key} .todo-count").inner_text()


def test_the_dashboard_counts_follow_a_contract(pages: Pages, session: Session, mailbox: Mailbox,
                                               app: Flask) -> None:
    staff, approver = staff_pair(session)
    session.commit()
    contract = make_contract(app, session, staff, approver, business_name="令和8年度 庁舎清掃業務委託")
    with app.app_context():
        contracts.attach_document(session, contract, filename="業務委託契約書.pdf",
                                  data=make_pdf(title="業務委託契約書", japanese=True), actor=staff,
                                  now=contract.created_at)
        session.commit()

    desk = pages.desk()
    log_in(desk, staff)
    approver_desk = pages.desk()
    log_in(approver_desk, approver)
    assert count(approver_desk, "approval") == "0件"
    assert count(desk, "ready-to-send") == "0件"

    # 「承認を依頼する」: the approver's 決裁待ち shows it, on the home page and in the menu.
    desk.goto(f"/contracts/{contract.id}")
    desk.get_by_role("button", name="承認を依頼する").click()
    expect(desk.get_by_text("承認待ち").first).to_be_visible()
    assert count(approver_desk, "approval") == "1件"
    expect(approver_desk.get_by_role("navigation").get_by_role("link", name=re.compile("決裁待ち 1件"))).to_be_visible()
    check_accessibility(approver_desk, "staff home with a 決裁 waiting")
    screenshot(approver_desk, "staff-home-todo")

    # The approver follows the row to the contract and confirms the 決裁: the clerk's 送信待ち is 1.
    approver_desk.locator("#todo-approval").get_by_role("link", name="令和8年度 庁舎清掃業務委託").click()
    approver_desk.get_by_label("決裁番号（決裁日）").fill("総契第123号（令和8年11月20日決裁）")
    approver_desk.get_by_role("button", name="文書が決裁どおりであることを確認する").click()
    expect(approver_desk.locator("#status-panel")).to_contain_text("決裁確認済み")
    assert count(approver_desk, "approval") == "0件"
    assert count(desk, "ready-to-send") == "1件"
    expect(desk.get_by_role("navigation").get_by_role("link", name=re.compile("送信待ち 1件"))).to_be_visible()

    # Sent: waiting for the vendor, with the days left to the 締結予定日 (14 days: not red).
    desk.locator("#todo-ready-to-send").get_by_role("link", name="令和8年度 庁舎清掃業務委託").click()
    confirm_dialogs(desk)
    desk.get_by_role("button", name="署名依頼を送信する").click()
    expect(desk.get_by_text("署名依頼を送信しました。")).to_be_visible()
    assert count(desk, "ready-to-send") == "0件"
    assert count(desk, "awaiting-vendor") == "1件"
    days = desk.locator("#todo-awaiting-vendor .days-left")
    expect(days).to_have_text("締結予定日まであと14日")
    expect(days).not_to_have_class(re.compile("urgent"))

    # The vendor signs: nothing waits for the vendor; the approver's signature is due, linked to their page.
    phone = pages.phone()
    phone.goto(mailbox.link(mailbox.wait_for(contract.parties[0].email, "への署名依頼が届いています"), "/s/"))
    complete_signing(phone, where="vendor signing page")
    assert count(desk, "awaiting-vendor") == "0件"
    assert count(approver_desk, "signature") == "1件"
    approver_desk.locator("#todo-signature").get_by_role("link", name="令和8年度 庁舎清掃業務委託").click()
    expect(approver_desk).to_have_url(re.compile(r"/s/staff/\d+$"))
    complete_signing(approver_desk, where="approver signing page")
    assert count(approver_desk, "signature") == "0件"
    expect(approver_desk.get_by_role("navigation").get_by_role("link", name="契約", exact=True)).to_be_visible()
