"""Journeys of the sender's tools (「送信者の操作」 on the contract page), each mail on the real SMTP server:

- the vendor lost the request mail: staff press 「署名依頼を再送する」; the old link says it was replaced,
  the new one signs;
- the download link of the completion mail expired: staff press 「ダウンロード用リンクを再発行」 for the
  vendor; the new link downloads;
- the vendor typed a wrong アクセスコード five times: the lock page; staff unlock; the vendor signs.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.auth.models import StaffUser
from portal.contracts import sender
from portal.contracts import service as contracts
from portal.contracts.models import Contract, Party
from tests.conftest import reread
from tests.e2e.conftest import Pages
from tests.e2e.steps import complete_signing, confirm_dialogs, log_in, send_contract, staff_pair
from tests.e2e.support import Mailbox, Problems, check_accessibility
from tests.factories import make_contract
from tests.pdfs import make_pdf

pytestmark = pytest.mark.e2e

VENDOR = "ichiro@keiyaku-shoji.example.jp"


def _contract_id(session: Session) -> int:
    return reread(session).scalars(select(Contract.id).order_by(Contract.id.desc())).first()


def _staff_page(pages: Pages, staff: StaffUser, contract_id: int) -> Page:
    desk = pages.desk()
    log_in(desk, staff)
    confirm_dialogs(desk)
    desk.goto(f"/contracts/{contract_id}")
    expect(desk.get_by_role("heading", name="送信者の操作")).to_be_visible()
    return desk


def test_resend_after_a_lost_mail(pages: Pages, session: Session, app: Flask, mailbox: Mailbox,
                                  problems: Problems) -> None:
    staff, approver = staff_pair(session)
    old_link = send_contract(app, session, mailbox, staff, approver)  # the vendor never saw this mail
    desk = _staff_page(pages, staff, _contract_id(session))
    check_accessibility(desk, "contract page with the sender tools")
    desk.get_by_role("button", name="署名依頼を再送する").click()
    expect(desk.locator(".flash")).to_contain_text("署名依頼を新しいリンクで再送しました")
    expect(desk.locator(".timeline")).to_contain_text("署名依頼を新しいリンクで再送しました")

    mail = mailbox.wait_for(VENDOR, "【再送】")
    assert "への署名依頼が届いています" in str(mail["Subject"])
    new_link = mailbox.link(mail, "/s/")
    assert new_link != old_link

    problems.allow(re.escape(old_link) + "$", 410)
    vendor = pages.phone()
    vendor.goto(old_link)
    expect(vendor.get_by_text("新しいリンクに置き換えられたため使えません")).to_be_visible()
    check_accessibility(vendor, "replaced link")
    vendor.goto(new_link)
    complete_signing(vendor, where="resent link")


def test_reissue_an_expired_download_link(pages: Pages, session: Session, app: Flask, mailbox: Mailbox,
                                          problems: Problems) -> None:
    staff, approver = staff_pair(session)
    vendor = pages.phone()
    vendor.goto(send_contract(app, session, mailbox, staff, approver))
    complete_signing(vendor, where="vendor")
    contract_id = _contract_id(session)
    agency_party = reread(session).scalar(select(Party.id).where(Party.contract_id == contract_id,
                                                                 Party.staff_user_id == approver.id))
    desk_approver = pages.desk()
    log_in(desk_approver, approver)
    desk_approver.goto(f"/s/staff/{agency_party}")
    complete_signing(desk_approver, where="approver")
    old_link = mailbox.link(mailbox.wait_for(VENDOR, "電子署名完了のお知らせ"), "/d/")

    clock.freeze(clock.now() + timedelta(days=app.config["DOWNLOAD_LINK_DAYS"], minutes=1))
    problems.allow(re.escape(old_link) + "$", 410)
    vendor.goto(old_link)
    expect(vendor.get_by_text(re.compile(r"リンクの有効期限（\d+日）が切れています"))).to_be_visible()

    desk = _staff_page(pages, staff, contract_id)
    recipient = desk.get_by_label("送付先")
    recipient.select_option(recipient.locator("option", has_text="相手方の署名者").get_attribute("value"))
    desk.get_by_role("button", name="ダウンロード用リンクを再発行").click()
    expect(desk.locator(".flash")).to_contain_text("ダウンロード用リンクを再発行し、メールで送りました")

    mail = mailbox.wait_for(VENDOR, "【再発行】締結済み文書のダウンロード用リンク")
    assert "令和8年度 庁舎清掃業務委託" in str(mail["Subject"])
    vendor.goto(mailbox.link(mail, "/d/"))
    with vendor.expect_download() as download:
        vendor.get_by_role("link", name=re.compile("業務委託契約書")).first.click()
    assert download.value.suggested_filename.endswith("_署名済.pdf")


def _send_with_code(app: Flask, session: Session, mailbox: Mailbox, staff: StaffUser, approver: StaffUser,
                    code: str) -> str:
    contract = make_contract(session, staff=staff, approver=approver, business_name="令和8年度 公用車点検業務委託",
                             signer_email=VENDOR, documents={"契約書.pdf": make_pdf(title="契約書", japanese=True)})
    with app.app_context():
        now = clock.now()
        sender.change_access_code(session, contract, code, actor=staff, now=now)
        contracts.confirm_internal_approval(session, contract, approver=approver, reference="総契第2号", now=now)
        contracts.send_for_signature(session, contract, actor=staff, now=now)
        session.commit()
    return mailbox.link(mailbox.wait_for(VENDOR, "への署名依頼が届いています"), "/s/")


def test_unlock_after_five_wrong_codes(pages: Pages, session: Session, app: Flask, mailbox: Mailbox,
                                       problems: Problems) -> None:
    staff, approver = staff_pair(session)
    link = _send_with_code(app, session, mailbox, staff, approver, "4821")
    problems.allow(r"/access-code$", 422)
    problems.allow(r"/access-code$", 423)
    problems.allow(re.escape(link) + "$", 423)
    vendor = pages.phone()
    vendor.goto(link)
    for attempt in range(app.config["ACCESS_CODE_MAX_ATTEMPTS"]):
        vendor.get_by_role("textbox", name="アクセスコード").fill(f"000{attempt}")
        vendor.get_by_role("button", name="文書を表示する").click()
    expect(vendor.get_by_role("heading", name="このリンクはロックされています")).to_be_visible()
    check_accessibility(vendor, "locked link")
    mailbox.wait_for(staff.email, "【署名用リンクのロック】")

    desk = _staff_page(pages, staff, _contract_id(session))
    expect(desk.locator("#sender-tools")).to_contain_text("署名用リンクがロックされています")
    desk.get_by_role("button", name="ロックを解除する").click()
    expect(desk.locator(".flash")).to_contain_text("署名用リンクのロックを解除しました")
    unlocked = mailbox.wait_for(VENDOR, "【署名用リンクのロック解除】")
    assert "4821" not in Mailbox.text(unlocked)

    vendor.goto(link)
    vendor.get_by_role("textbox", name="アクセスコード").fill("４８２１")  # full-width, as a phone keyboard may give
    vendor.get_by_role("button", name="文書を表示する").click()
    complete_signing(vendor, where="unlocked link")
