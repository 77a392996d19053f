"""Everyone is told at every step, in a browser against a real SMTP server (aiosmtpd): each mail arrives
with its exact subject at the right address.

A vendor's confirmed 申出書 → the department; 「承認を依頼する」 → the approver; 決裁 → the sender;
a reminder three days before 締結予定日 → the vendor (with a fresh signing link) and the sender; the
vendor's 差し戻し through that link → the vendor, with the department's contact, and the staff.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.clock import JST
from portal.contracts.models import Contract
from tests.conftest import reread
from tests.e2e.conftest import Pages
from tests.e2e.steps import (
    ContractDraft,
    Vendor,
    apply_and_confirm,
    confirm_dialogs,
    fill_contract_form,
    log_in,
    today,
    upload_with_file_chooser,
    write_pdfs,
)
from tests.e2e.support import Mailbox, check_accessibility
from tests.factories import make_department, make_staff

pytestmark = pytest.mark.e2e

DEPARTMENT_MAIL = "somu-keiyaku@pref.example.jp"


def _arrived(mailbox: Mailbox, to: str, subject: str) -> EmailMessage:
    """The one mail to `to` with exactly `subject` (waits while the outbox is delivered)."""
    mailbox.wait_for(to, subject)
    matching = [m for m in mailbox.smtp.inbox.to(to) if str(m["Subject"]) == subject]
    assert len(matching) == 1, [str(m["Subject"]) for m in mailbox.smtp.inbox.to(to)]
    assert matching[0]["To"].addresses[0].addr_spec == to
    assert matching[0].get_body(preferencelist=("plain",)).get_content_charset() == "utf-8"
    return matching[0]


def test_each_step_mails_the_people_it_concerns(pages: Pages, session: Session, mailbox: Mailbox, app: Flask,
                                                tmp_path: Path) -> None:
    department = make_department(session, name="総務部 契約課")
    department.contact_email = DEPARTMENT_MAIL
    department.contact_phone = "086-226-7000"
    staff = make_staff(session, role=Role.STAFF, email="tanaka@pref.example.jp", name="田中 進",
                       department=department)
    approver = make_staff(session, role=Role.APPROVER, email="sato@pref.example.jp", name="佐藤 恵",
                          department=department, title="契約課長")
    session.commit()
    vendor = Vendor()
    draft = ContractDraft()

    # A confirmed 申出書 reaches the department's address, with the page staff review it on.
    receipt = apply_and_confirm(pages.desk(), mailbox, vendor, department.name)
    to_department = _arrived(mailbox, DEPARTMENT_MAIL,
                             f"【電子契約利用申出書】{vendor.company_name}から申出書が届きました（受付番号 {receipt}）")
    desk = pages.desk()
    log_in(desk, staff)
    desk.goto(mailbox.link(to_department, "/usage-requests/"))
    desk.get_by_role("button", name="受け付ける").click()
    expect(desk.locator("#review-panel")).to_contain_text("受付済")

    # 「承認を依頼する」 mails the department's approver.
    desk.goto("/contracts/new")
    fill_contract_form(desk, draft, approver)
    desk.get_by_role("button", name="下書きを保存").click()
    upload_with_file_chooser(desk, write_pdfs(tmp_path / "pdfs"))
    desk.get_by_role("button", name="承認を依頼する").click()
    expect(desk.get_by_text("承認待ち").first).to_be_visible()
    contract = reread(session).scalars(select(Contract).where(Contract.business_name == draft.business_name)).one()
    number = contract.number
    to_approver = _arrived(mailbox, approver.email, f"【決裁の依頼】{draft.business_name}（契約番号 {number}）")

    # The approver opens the mail's link and confirms the 決裁: the sender is told.
    approver_desk = pages.desk()
    log_in(approver_desk, approver)
    approver_desk.goto(mailbox.link(to_approver, "/contracts/"))
    approver_desk.get_by_label("決裁番号（決裁日）").fill(draft.reference)
    approver_desk.get_by_role("button", name="文書が決裁どおりであることを確認する").click()
    expect(approver_desk.locator("#status-panel")).to_contain_text("決裁確認済み")
    to_sender = _arrived(mailbox, staff.email, f"【決裁確認済み】{draft.business_name}（契約番号 {number}）")
    assert draft.reference in mailbox.text(to_sender)

    desk.goto(mailbox.link(to_sender, "/contracts/"))
    confirm_dialogs(desk)
    desk.get_by_role("button", name="署名依頼を送信する").click()
    expect(desk.get_by_text("署名依頼を送信しました。")).to_be_visible()
    request = _arrived(mailbox, vendor.authority_email, f"岡山県 様より{draft.business_name}への署名依頼が届いています")
    first_link = mailbox.link(request, "/s/")

    # Three days before 締結予定日 the periodic job reminds the vendor, with a fresh link, and the sender.
    planned = reread(session).get(Contract, contract.id).planned_conclusion_date
    assert planned == today() + timedelta(days=14)
    clock.freeze(datetime.combine(planned - timedelta(days=3), time(9), tzinfo=JST))
    result = app.test_cli_runner().invoke(args=["contracts", "deadlines"])
    assert "リマインド 1 件" in result.output, result.output
    reminder = _arrived(mailbox, vendor.authority_email,
                        f"【リマインド】岡山県 様より{draft.business_name}への署名依頼が届いています")
    fresh_link = mailbox.link(reminder, "/s/")
    assert fresh_link != first_link
    sender_reminder = _arrived(
        mailbox, staff.email,
        f"【リマインド】{draft.business_name}（契約番号 {number}）の署名が済んでいません（締結予定日まであと3日）")
    assert f"/contracts/{contract.id}" in mailbox.text(sender_reminder)

    # The vendor declines through the reminder's link on a phone: told, with the department's contact.
    phone = pages.phone()
    phone.goto(fresh_link)
    phone.get_by_role("link", name="差し戻す").click()
    phone.get_by_label("差し戻しの理由").fill("契約期間の記載が仕様書と異なります。")
    phone.get_by_role("button", name="差し戻す").click()
    expect(phone.locator("#action-panel")).to_contain_text("差し戻しました")
    to_vendor = _arrived(mailbox, vendor.authority_email, f"【差し戻し】{draft.business_name}（岡山県）")
    text = mailbox.text(to_vendor)
    assert "契約期間の記載が仕様書と異なります。" in text
    assert "086-226-7000" in text
    assert DEPARTMENT_MAIL in text
    _arrived(mailbox, staff.email, f"【差し戻し】{draft.business_name}（契約番号 {number}）")


def test_an_administrator_sends_the_mails_held_before_smtp_was_configured(pages: Pages, session: Session,
                                                                         mailbox: Mailbox, app: Flask) -> None:
    department = make_department(session, name="総務部 契約課")
    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", name="管理 太郎",
                       department=department)
    session.commit()
    smtp = app.config["MAIL_SERVER"]
    app.config["MAIL_SERVER"] = ""  # the first accounts are made before the mail server is set up
    with app.test_request_context():
        for email, name in (("yamada@pref.example.jp", "山田 花子"), ("kawa@pref.example.jp", "川 一郎")):
            auth_service.create_user(session, email=email, name=name, role=Role.STAFF, department=department,
                                     title="", actor=admin, now=clock.now())
        session.commit()
    app.config["MAIL_SERVER"] = smtp

    desk = pages.desk()
    log_in(desk, admin)
    desk.goto("/admin/mail/")
    expect(desk.get_by_text("保留中のメールが 2 件あります")).to_be_visible()
    expect(desk.get_by_text("SMTPサーバーが設定される前に作成されたため、送信せずに保管しています。").first).to_be_visible()
    check_accessibility(desk, "送信メール with held mails")
    desk.get_by_role("button", name="yamada@pref.example.jp 宛てのメールを送信する").click()
    expect(desk.get_by_text("1件のメールを送信待ちにしました。")).to_be_visible()
    first = _arrived(mailbox, "yamada@pref.example.jp", "【岡山県】けいやくポータル アカウント登録のご案内")
    assert mailbox.smtp.inbox.to("kawa@pref.example.jp") == []

    desk.get_by_role("button", name="保留中のメールをすべて送信").click()
    expect(desk.get_by_text("1件のメールを送信待ちにしました。")).to_be_visible()
    _arrived(mailbox, "kawa@pref.example.jp", "【岡山県】けいやくポータル アカウント登録のご案内")
    expect(desk.get_by_role("button", name="保留中のメールをすべて送信")).to_have_count(0)

    enrolment = pages.desk()  # the link kept sealed while the mail was held works once it is sent
    enrolment.goto(mailbox.link(first, "/account/enrol/"))
    expect(enrolment.get_by_role("heading").first).to_be_visible()
