"""Phone layouts: at 390×844 no public or staff page is wider than the screen (no sideways scrolling),
and a refused form brings its errors into view."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from portal import clock
from portal.auth.models import Role
from portal.contracts.models import Contract, DownloadLink
from portal.tokens import new_token
from portal.usage_requests.models import UsageRequest
from tests.e2e.conftest import Pages
from tests.e2e.steps import Vendor, fill_apply_form, log_in, send_contract, staff_pair
from tests.e2e.support import Mailbox, Problems, check_accessibility
from tests.factories import make_contract, make_staff, register_counterparty

pytestmark = pytest.mark.e2e


def page_width(page: Page) -> tuple[int, int]:
    """(document width, viewport width) in CSS pixels, after the page has settled.

    A mobile browser zooms out a page wider than the screen, which makes window.innerWidth grow with it:
    the viewport that counts is the smaller of innerWidth and the device's width (390 px).
    """
    page.wait_for_load_state("load")
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    device = (page.viewport_size or {"width": inner})["width"]
    return int(width), min(int(inner), int(device))


def overflowing(page: Page, viewport: int) -> list[str]:
    """The outermost elements reaching past the viewport's right edge (what to fix), as tag.class."""
    return list(page.evaluate("""(limit) => {
        const wide = [...document.body.querySelectorAll("*")].filter(
            (el) => el.getBoundingClientRect().right > limit + 1);
        const outermost = wide.filter((el) => !wide.includes(el.parentElement) ||
            el.parentElement.getBoundingClientRect().width <= limit);
        return outermost.slice(0, 5).map((el) => el.tagName.toLowerCase() +
            (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : "") +
            (el.id ? "#" + el.id : "") + " " + Math.round(el.getBoundingClientRect().right) + "px");
    }""", viewport))


class Widths:
    """Visits pages and collects the ones wider than the viewport, to report all of them at once."""

    def __init__(self) -> None:
        self.too_wide: list[str] = []

    def check(self, page: Page, name: str, url: str | None = None) -> None:
        if url is not None:
            page.goto(url)
        width, viewport = page_width(page)
        if width > viewport:
            self.too_wide.append(f"{name} ({page.url}): {width} px in a {viewport} px viewport, "
                                 f"because of {', '.join(overflowing(page, viewport))}")


def test_no_page_is_wider_than_a_phone(pages: Pages, session: Session, app: Flask, mailbox: Mailbox) -> None:
    staff, approver = staff_pair(session)
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp", name="管理 花子",
                       department=staff.department)
    auditor = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp", name="監査 次郎",
                         department=staff.department)
    session.commit()
    signing_link = send_contract(app, session, mailbox, staff, approver)
    sent = session.query(Contract).one()
    vendor = Vendor()  # send_contract registered this 取引先's authority: the draft is signed by the same (R10)
    draft = make_contract(session, staff=staff, approver=approver,
                          business_name="令和8年度 公用車リース（長期継続契約）",
                          signer_name=vendor.authority_name, signer_email=vendor.authority_email)
    # The download page of the completion mail, for the sent contract's documents.
    token, token_hash = new_token()
    session.add(DownloadLink(contract=sent, recipient=sent.parties[0].email, token_hash=token_hash,
                             created_at=clock.now(), expires_at=clock.now() + timedelta(days=14)))
    session.commit()
    widths = Widths()

    # The vendor, on a phone: the public pages, the 申出書 from the form to its confirmation.
    vendor_page = pages.phone()
    for url in ["/", "/help", "/verify", "/login"]:
        widths.check(vendor_page, url, url)
    widths.check(vendor_page, "/apply", "/apply")
    fill_apply_form(vendor_page, vendor, staff.department.name)
    vendor_page.get_by_role("button", name="提出する").click()
    expect(vendor_page.get_by_role("heading", name="電子契約利用申出書を受け付けました")).to_be_visible()
    widths.check(vendor_page, "申出書 submitted")
    mail = mailbox.wait_for(vendor.authority_email, "メールアドレスの確認のお願い")
    widths.check(vendor_page, "申出書 confirmation", mailbox.link(mail, "/apply/confirm/"))
    vendor_page.get_by_role("button", name="確認する").click()
    expect(vendor_page.get_by_role("heading", name="メールアドレスの確認が完了しました")).to_be_visible()
    widths.check(vendor_page, "申出書 confirmed")
    widths.check(vendor_page, "signing page", signing_link)
    vendor_page.get_by_role("link", name="完了する", exact=True).tap()
    expect(vendor_page.get_by_role("button", name="署名手続きを完了する")).to_be_visible()
    widths.check(vendor_page, "signing confirmation")
    widths.check(vendor_page, "download page", f"/d/{token}")

    # Staff on a phone.
    usage_request = session.query(UsageRequest).one()
    staff_page = pages.phone()
    log_in(staff_page, staff)
    for name, url in [
        ("staff dashboard", "/"), ("contract list", "/contracts/"), ("new contract", "/contracts/new"),
        ("new contract form", f"/contracts/new?counterparty={register_counterparty(session).id}"),
        ("counterparties", "/counterparties/"),
        ("contract with documents", f"/contracts/{sent.id}"), ("draft contract", f"/contracts/{draft.id}"),
        ("usage requests", "/usage-requests/"), ("usage request", f"/usage-requests/{usage_request.id}"),
        ("search with results", "/search/?counterparty=けいやく&status=draft&status=awaiting_counterparty"),
    ]:
        widths.check(staff_page, name, url)
    expect(staff_page.locator("#search-results tbody tr")).to_have_count(2)
    check_accessibility(staff_page, "search results (phone), the table scrolling")

    admin_page = pages.phone()
    log_in(admin_page, admin)
    for name, url in [("admin home", "/"), ("admin users", "/admin/users"),
                      ("admin departments", "/admin/departments"), ("mails", "/admin/mail/")]:
        widths.check(admin_page, name, url)

    auditor_page = pages.phone()
    log_in(auditor_page, auditor)
    widths.check(auditor_page, "audit log", "/audit/")
    check_accessibility(auditor_page, "audit log (phone), its table scrolling")

    assert not widths.too_wide, "pages wider than a 390 px phone:\n" + "\n".join(widths.too_wide)


def test_a_refused_contract_form_focuses_its_error_summary(pages: Pages, session: Session) -> None:
    staff, _ = staff_pair(session)
    session.commit()
    page = pages.phone()
    log_in(page, staff)
    counterparty = register_counterparty(session)
    page.goto(f"/contracts/new?counterparty={counterparty.id}")
    page.get_by_label("業務名").fill("令和8年度 庁舎清掃業務委託")
    page.locator("#signer-override summary").tap()
    page.get_by_label("登録された契約締結権限者とは別の人を署名者にする").check()
    page.get_by_label("契約締結権限者のメールアドレス").fill("ichiro@")
    page.get_by_role("button", name="下書きを保存").tap()

    summary = page.locator("#contract-form .error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_have_attribute("role", "alert")
    assert page.evaluate("() => document.activeElement === document.querySelector('.error-summary')")
    top, bottom = page.evaluate(
        "() => { const r = document.activeElement.getBoundingClientRect(); return [r.top, r.bottom]; }")
    assert top >= 0, (top, bottom)  # the summary is on the screen, not 1,000 px above it
    assert bottom <= 844, (top, bottom)
    links = summary.get_by_role("link")
    assert links.count() >= 2, summary.inner_text()
    expect(summary).to_contain_text("別の署名者にする理由")
    expect(summary).to_contain_text("契約締結権限者のメールアドレス")

    # Each link brings its field to the screen and into focus.
    summary.get_by_role("link", name=re.compile("メールアドレス")).tap()
    email = page.get_by_label("契約締結権限者のメールアドレス")
    assert page.evaluate("() => document.activeElement.id") == email.get_attribute("id")
    check_accessibility(page, "contract form with its error summary (phone)")


def test_the_refused_setup_form_lists_every_error_in_its_focused_summary(pages: Pages, app: Flask,
                                                                        problems: Problems) -> None:
    problems.allow(r"/setup/", 422)
    output = app.test_cli_runner().invoke(args=["init"]).output
    setup = re.search(r"https?://\S+(/setup/\S+)", output)
    assert setup, output
    page = pages.phone()
    page.goto(setup.group(1))
    page.get_by_label("メールアドレス").fill("admin@")
    page.get_by_label("パスワード", exact=True).fill("short")
    page.get_by_label("パスワード（確認）").fill("different")
    page.get_by_role("button", name="登録して次へ").tap()  # a plain form: the page comes back with a 422

    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("link")).to_have_count(5)  # 氏名, メールアドレス, 所属, both passwords
    assert page.evaluate("() => document.activeElement === document.querySelector('.error-summary')")
    check_accessibility(page, "setup form with its error summary (phone)")
