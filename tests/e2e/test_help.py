"""困ったときは: reachable from the signing page, with the agency's contact details from the settings,
and linked from every mail a signer or vendor receives."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from tests.e2e.conftest import CONTACT, Pages
from tests.e2e.steps import Vendor, fill_apply_form, send_contract, staff_pair
from tests.e2e.support import Mailbox, check_accessibility
from tests.factories import make_department

pytestmark = pytest.mark.e2e

TOPICS = ["届かない", "有効期限", "立会人型", "Acrobat Reader"]


def test_help_is_linked_from_the_signing_page_with_the_contact_details(
    pages: Pages, session: Session, app: Flask, mailbox: Mailbox,
) -> None:
    staff, approver = staff_pair(session)
    page = pages.phone()
    page.goto(send_contract(app, session, mailbox, staff, approver))

    page.get_by_role("link", name="困ったときは").tap()

    expect(page.get_by_role("heading", name="困ったときは", level=1)).to_be_visible()
    for topic in TOPICS:
        expect(page.get_by_role("heading", name=topic).first).to_be_visible()
    expect(page.locator("main ol")).to_contain_text("署名パネル")  # step by step
    main = page.locator("main")
    expect(main).to_contain_text(CONTACT["CONTACT_PHONE"])
    expect(main).to_contain_text(CONTACT["CONTACT_HOURS"])
    expect(main).to_contain_text(CONTACT["CONTACT_EMAIL"])
    expect(main.get_by_role("link", name=CONTACT["CONTACT_FORM_URL"])).to_be_visible()
    check_accessibility(page, "help (phone)")


def test_the_mails_link_to_help(pages: Pages, session: Session, app: Flask, mailbox: Mailbox) -> None:
    staff, approver = staff_pair(session)
    send_contract(app, session, mailbox, staff, approver)
    signature_request = mailbox.wait_for(Vendor().authority_email, "への署名依頼が届いています")
    help_url = mailbox.link(signature_request, "/help")

    page = pages.desk()
    page.goto(help_url)
    expect(page.get_by_role("heading", name="困ったときは", level=1)).to_be_visible()


def test_the_usage_request_mail_links_to_help(pages: Pages, session: Session, mailbox: Mailbox) -> None:
    department = make_department(session)
    session.commit()
    page = pages.desk()
    page.goto("/apply")
    fill_apply_form(page, Vendor(), department.name)
    page.get_by_role("button", name="提出する").click()
    expect(page.get_by_role("heading", name="電子契約利用申出書を受け付けました")).to_be_visible()

    mail = mailbox.wait_for(Vendor().authority_email, "メールアドレスの確認のお願い")
    mailbox.link(mail, "/help")
