"""Journey 1: a vendor fills /apply, is told about a free-mail address as they type, submits, and
confirms the signing authority's address from the mail."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from tests.e2e.conftest import Pages
from tests.e2e.steps import Vendor, fill_apply_form
from tests.e2e.support import Mailbox, check_accessibility, screenshot
from tests.factories import make_department

pytestmark = pytest.mark.e2e

FREE_MAIL_ERROR = "フリーメールアドレスは登録できません"


def test_vendor_applies_and_confirms_from_the_mail(pages: Pages, session: Session, mailbox: Mailbox) -> None:
    department = make_department(session)
    session.commit()
    vendor = Vendor()
    page = pages.desk()

    page.goto("/apply")
    check_accessibility(page, "apply form")
    screenshot(page, "apply-form")

    fill_apply_form(page, vendor, department.name)
    authority = page.get_by_role("group", name="【契約締結権限者】")
    email = authority.get_by_label("メールアドレス")
    email.fill("")
    email.press_sequentially("ichiro@gmail.com", delay=20)
    error = page.locator(f"#{email.get_attribute('id')}-error")
    expect(error).to_contain_text(FREE_MAIL_ERROR)
    expect(error).to_have_attribute("aria-live", "polite")
    expect(email).to_have_value("ichiro@gmail.com")  # the swap never touches what is being typed
    expect(email).to_have_attribute("aria-invalid", "true")
    check_accessibility(page, "apply form with a live error")

    email.fill(vendor.authority_email)
    email.blur()
    expect(error).not_to_contain_text(FREE_MAIL_ERROR)
    expect(email).not_to_have_attribute("aria-invalid", "true")

    page.get_by_role("button", name="提出する").click()
    expect(page.get_by_role("heading", name="電子契約利用申出書を受け付けました")).to_be_visible()
    receipt = page.get_by_label("受付番号").inner_text().strip()
    check_accessibility(page, "submitted")

    mail = mailbox.wait_for(vendor.authority_email, "メールアドレスの確認のお願い")
    assert receipt in str(mail["Subject"])
    page.goto(mailbox.link(mail, "/apply/confirm/"))
    expect(page.get_by_text(vendor.company_name).first).to_be_visible()
    check_accessibility(page, "confirmation link")
    page.get_by_role("button", name="確認する").click()
    expect(page.get_by_role("heading", name="メールアドレスの確認が完了しました")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(receipt)
    check_accessibility(page, "confirmed")


def test_a_refused_submit_keeps_the_input_and_announces_the_errors(pages: Pages, session: Session) -> None:
    department = make_department(session)
    session.commit()
    page = pages.desk()
    page.goto("/apply")
    fill_apply_form(page, Vendor(), department.name)
    page.get_by_label("商号(名称)").fill("")

    page.get_by_role("button", name="提出する").click()

    alert = page.get_by_role("alert").filter(has_text="入力内容に誤りがあります")
    expect(alert).to_be_visible()
    expect(page.locator("#field-company_name")).to_contain_text("入力してください。")
    expect(page.get_by_label("住所(所在地)")).to_have_value(Vendor().address)
    expect(page.get_by_label("商号(名称)")).to_have_attribute("aria-invalid", "true")
    check_accessibility(page, "apply form refused (422)")
