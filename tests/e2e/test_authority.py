"""Journeys: the usage request binds the contract (R10). A 申出書 returned by staff is corrected by the vendor
from the pre-filled form and accepted; the clerk then creates a contract from the registered 取引先 with its
authority as the signer, and another contract with another signer and a reason the operation log shows."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from tests.e2e.conftest import Pages
from tests.e2e.steps import ContractDraft, Vendor, apply_and_confirm, fill_contract_form, log_in, staff_pair
from tests.e2e.support import Mailbox
from tests.factories import make_department, make_staff

pytestmark = pytest.mark.e2e


def test_return_correct_accept_then_contract_from_the_registered_authority(pages: Pages, session: Session,
                                                                          mailbox: Mailbox) -> None:
    from portal.auth.models import Role

    staff, approver = staff_pair(session)
    auditor = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp", name="監査 一郎",
                         department=make_department(session, code="KAN", name="監査委員事務局"))
    session.commit()
    vendor = Vendor()

    # The vendor applies with a typo in the authority's title; staff return it with a reason.
    vendor_page = pages.phone()
    receipt = apply_and_confirm(vendor_page, mailbox, Vendor(authority_title="代表取締"), staff.department.name)
    desk = pages.desk()
    log_in(desk, staff)
    desk.goto("/usage-requests/")
    desk.get_by_role("link", name=receipt).click()
    desk.get_by_label("差戻しの理由").fill("契約締結権限者の役職を正しく記入してください（代表取締役）。")
    desk.get_by_role("button", name="差し戻す").click()
    expect(desk.locator("#review-panel")).to_contain_text("差戻し")

    # The return mail's link opens the form pre-filled, with the reason; the vendor corrects one field.
    mail = mailbox.wait_for(vendor.contact_email, "差戻し")
    vendor_page.goto(mailbox.link(mail, "/apply/correct/"))
    expect(vendor_page.locator("#return-reason")).to_contain_text("役職を正しく記入してください")
    expect(vendor_page.get_by_label("商号(名称)", exact=True)).to_have_value(vendor.company_name)
    vendor_page.get_by_label("役職").fill("代表取締役")
    vendor_page.get_by_role("button", name="提出する").click()
    expect(vendor_page.get_by_role("heading", name="電子契約利用申出書を受け付けました")).to_be_visible()
    corrected = vendor_page.get_by_label("受付番号").inner_text().strip()
    from portal.mail.service import deliver_pending

    with mailbox.app.app_context():
        deliver_pending()
    confirm = [m for m in mailbox.smtp.inbox.to(vendor.authority_email) if "確認" in str(m["Subject"])][-1]
    vendor_page.goto(mailbox.link(confirm, "/apply/confirm/"))
    vendor_page.get_by_role("button", name="確認する").click()

    # Staff accept the corrected request: the 取引先 and its authority are registered.
    desk.goto("/usage-requests/")
    desk.get_by_role("link", name=corrected).click()
    desk.get_by_role("button", name="受け付ける").click()
    expect(desk.locator("#review-panel")).to_contain_text("受付済")

    # A contract from the registered 取引先: picked by searching, the authority shown read-only.
    desk.goto("/contracts/new")
    draft = ContractDraft()
    fill_contract_form(desk, draft, approver)
    expect(desk.locator("#registered-authority")).to_contain_text(vendor.authority_email)
    desk.get_by_role("button", name="下書きを保存").click()
    expect(desk.get_by_role("heading", name=re.compile(re.escape(draft.business_name)))).to_be_visible()
    expect(desk.get_by_text("利用申出書で登録された契約締結権限者")).to_be_visible()

    # Another signer needs a reason; it shows on the contract and in the operation log.
    desk.goto("/contracts/new")
    other = ContractDraft(business_name="令和8年度 公用車点検業務委託", signer_title="大阪支店長",
                          signer_name="吉備 次郎",
                          signer_email="jiro@keiyaku-shoji.example.jp")
    fill_contract_form(desk, other, approver, override_reason="大阪支店長に契約締結権限を委任（委任状受領済み）")
    desk.get_by_role("button", name="下書きを保存").click()
    expect(desk.locator("p#signer-override")).to_contain_text("大阪支店長に契約締結権限を委任")
    number = desk.locator("h1 small").inner_text().strip()

    audit_page = pages.desk()
    log_in(audit_page, auditor)
    audit_page.goto(f"/audit/?contract={number}")
    expect(audit_page.locator("main")).to_contain_text("登録された契約締結権限者と異なる署名者を指定しました")
    expect(audit_page.locator("main")).to_contain_text("大阪支店長に契約締結権限を委任")
