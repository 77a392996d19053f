"""Journeys 2–4, one contract from the vendor's application to the signed PDF, in one browser session each:

staff log in with TOTP and accept the usage request; create a contract and choose two PDFs in the
file chooser; an approver confirms the 決裁; staff send. The vendor opens the mail's link on a phone,
switches between the two document tabs and signs (「完了する」 → 「署名手続きを完了する」); the approver
signs; the completion mail's download link gives PDFs that validate.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from portal.auth.models import Role
from portal.signing import service as signing
from portal.signing.verification import verify
from tests.conftest import require_tool
from tests.e2e.conftest import Pages
from tests.e2e.steps import (
    ContractDraft,
    Vendor,
    apply_and_confirm,
    complete_signing,
    confirm_dialogs,
    fill_contract_form,
    log_in,
    upload_with_file_chooser,
    write_pdfs,
)
from tests.e2e.support import Mailbox, check_accessibility, screenshot
from tests.factories import make_department, make_staff

pytestmark = pytest.mark.e2e


def test_contract_from_application_to_signed_pdf(pages: Pages, session: Session, mailbox: Mailbox, app: Flask,
                                                 tmp_path: Path) -> None:
    department = make_department(session)
    staff = make_staff(session, role=Role.STAFF, email="tanaka@pref.example.jp", name="田中 進",
                       department=department)
    approver = make_staff(session, role=Role.APPROVER, email="sato@pref.example.jp", name="佐藤 恵",
                          department=department, title="契約課長")
    vendor = Vendor()
    draft = ContractDraft()

    # Journey 1 (short form): the vendor applies; test_apply.py covers its screens in detail.
    vendor_desk = pages.desk()
    receipt = apply_and_confirm(vendor_desk, mailbox, vendor, department.name)

    # Journey 2: staff accept the request, create the contract, upload two PDFs, ask for approval.
    desk = pages.desk()
    log_in(desk, staff)
    check_accessibility(desk, "staff home")
    desk.goto("/usage-requests/")
    check_accessibility(desk, "usage requests")
    screenshot(desk, "staff-usage-requests")
    desk.get_by_role("link", name=receipt).click()
    check_accessibility(desk, "usage request")
    desk.get_by_role("button", name="受け付ける").click()
    expect(desk.locator("#review-panel")).to_contain_text("受付済")

    desk.goto("/contracts/")
    check_accessibility(desk, "contracts dashboard")
    desk.get_by_role("link", name="新しい契約を作成").click()
    check_accessibility(desk, "new contract form")
    fill_contract_form(desk, draft, approver)
    screenshot(desk, "contract-new")
    desk.get_by_role("button", name="下書きを保存").click()
    expect(desk.get_by_role("heading", name=re.compile(re.escape(draft.business_name)))).to_be_visible()
    contract_url = desk.url

    upload_with_file_chooser(desk, write_pdfs(tmp_path / "pdfs"))
    check_accessibility(desk, "contract with documents")
    desk.get_by_role("button", name="承認を依頼する").click()
    expect(desk.get_by_text("承認待ち").first).to_be_visible()
    screenshot(desk, "contract-show")

    # The approver, on another PC, confirms that these are the documents of the 決裁.
    approver_desk = pages.desk()
    log_in(approver_desk, approver)
    approver_desk.goto(contract_url)
    approver_desk.get_by_label("決裁番号（決裁日）").fill(draft.reference)
    approver_desk.get_by_role("button", name="文書が決裁どおりであることを確認する").click()
    expect(approver_desk.locator("#status-panel")).to_contain_text("決裁確認済み")
    check_accessibility(approver_desk, "contract approved")

    # Staff send; the browser asks 「署名依頼を送信しますか？」 first.
    desk.reload()
    dialogs = confirm_dialogs(desk)
    desk.get_by_role("button", name="署名依頼を送信する").click()
    expect(desk.get_by_text("署名依頼を送信しました。")).to_be_visible()
    assert dialogs == ["署名依頼を送信しますか？"]
    desk.goto("/contracts/")
    screenshot(desk, "staff-dashboard")

    # Journey 3: the vendor opens the mail on a phone, reads both documents, signs.
    request_mail = mailbox.wait_for(vendor.authority_email, "への署名依頼が届いています")
    phone = pages.phone()
    phone.goto(mailbox.link(request_mail, "/s/"))
    expect(phone.get_by_role("heading", name=draft.business_name)).to_be_visible()
    check_accessibility(phone, "signing page (phone)")
    tabs = phone.get_by_role("tab")
    expect(tabs).to_have_count(2)
    _switch_tab(phone, "仕様書")
    _switch_tab(phone, "業務委託契約書")
    screenshot(phone, "signing-phone", full_page=False)
    complete_signing(phone, where="signing page (phone)")
    check_accessibility(phone, "signed (phone)")

    # Journey 4: the approver signs from the mail's link; the completion mail goes to both.
    agency_mail = mailbox.wait_for(approver.email, "【署名依頼】")
    approver_desk.goto(mailbox.link(agency_mail, "/s/staff/"))
    check_accessibility(approver_desk, "approver signing page")
    complete_signing(approver_desk, where="approver signing page")
    expect(approver_desk.get_by_role("status")).to_contain_text("全ての署名者の署名が完了しました")
    approver_desk.locator("#action-panel").scroll_into_view_if_needed()
    screenshot(approver_desk, "signing-completed", full_page=False)

    completion = mailbox.wait_for(vendor.authority_email, "電子署名完了のお知らせ", timeout=30)
    mailbox.wait_for(approver.email, "電子署名完了のお知らせ")
    mailbox.link(completion, "/help")  # 困ったときは, in every mail
    phone.goto(mailbox.link(completion, "/d/"))
    check_accessibility(phone, "download page (phone)")
    screenshot(phone, "completion-download", full_page=False)
    with phone.expect_download() as download:
        phone.get_by_role("link", name=re.compile("^業務委託契約書")).click()
    signed = Path(download.value.path()).read_bytes()
    _assert_signed_pdf_validates(app, signed, tmp_path / "signed.pdf")


def _switch_tab(page: Page, filename: str) -> None:
    """Touch a document tab: the viewer swaps to that document, its tab selected, its pages shown."""
    page.get_by_role("tab", name=re.compile(re.escape(filename))).tap()
    expect(page.get_by_role("tab", name=re.compile(re.escape(filename)))).to_have_attribute("aria-selected", "true")
    panel = page.get_by_role("tabpanel")
    expect(panel).to_contain_text(filename)
    expect(panel.get_by_role("img").first).to_be_visible()
    check_accessibility(page, f"signing page, tab {filename}")


def _assert_signed_pdf_validates(app: Flask, data: bytes, path: Path) -> None:
    """Both approvals and the archive timestamp validate by the portal's verifier; the approvals by pdfsig."""
    assert data.startswith(b"%PDF")
    with app.app_context():
        report = verify(data, context=signing.configure(app.config))
    assert report.is_valid, report
    approvals = [s for s in report.signatures if not s.is_document_timestamp]
    assert len(approvals) == 2, report
    assert report.level == "B-LTA", report

    path.write_bytes(data)
    pdfsig = require_tool("pdfsig")
    output = subprocess.run([pdfsig, str(path)], capture_output=True, text=True, check=False).stdout
    verdicts = [v.strip() for v in re.findall(r"Signature Validation: (.+)", output)]
    # poppler 22.12 cannot check the archive document timestamp (the third); the portal's verifier did.
    assert verdicts[:2] == ["Signature is Valid.", "Signature is Valid."], output
    assert len(verdicts) == 3, output
