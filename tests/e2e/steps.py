"""Steps people take in the browser, reused by the journeys: log in, apply, create and send a contract, sign.

Every step finds elements by the label, role or text a person sees (the Japanese of the screens and of
the seed document), so that a renamed button breaks the journey the way it would confuse a user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from portal import clock
from portal.auth.models import Role, StaffUser
from portal.contracts import service as contracts
from portal.contracts.models import Contract
from tests import factories
from tests.e2e.support import Mailbox, check_accessibility
from tests.factories import PASSWORD, make_department, make_staff, totp_code
from tests.pdfs import make_pdf

# ---------------------------------------------------------------- documents


def write_pdfs(folder: Path) -> list[Path]:
    """The two documents of the journey, as files a person would pick in the file chooser."""
    folder.mkdir(parents=True, exist_ok=True)
    contract = folder / "業務委託契約書.pdf"
    contract.write_bytes(make_pdf(title="業務委託契約書", pages=2, japanese=True))
    specification = folder / "仕様書.pdf"
    specification.write_bytes(make_pdf(title="庁舎清掃業務 仕様書", japanese=True))
    return [contract, specification]


# ---------------------------------------------------------------- vendor: 電子契約利用申出書


@dataclass(frozen=True)
class Vendor:
    company_name: str = "株式会社けいやく商事"
    address: str = "岡山県岡山市北区内山下2-4-6"
    representative: str = "代表取締役 岡山 太郎"
    contact_person: str = "営業部 主任 吉備 花子"
    contact_phone: str = "086-224-2111"
    contact_email: str = "hanako@keiyaku-shoji.example.jp"
    contract_name: str = "令和8年度 庁舎清掃業務委託"
    authority_title: str = "代表取締役"
    authority_name: str = "髙橋 一郎"
    authority_email: str = "ichiro@keiyaku-shoji.example.jp"


def fill_apply_form(page: Page, vendor: Vendor, department_name: str) -> None:
    """Fill the 別記様式 the way a person does: field by field, by their labels."""
    page.get_by_label("提出先（担当課）").select_option(label=department_name)
    page.get_by_label("住所(所在地)").fill(vendor.address)
    page.get_by_label("商号(名称)", exact=True).fill(vendor.company_name)
    page.get_by_label("代表者職・氏名", exact=True).fill(vendor.representative)
    page.get_by_label("担当者職・氏名").fill(vendor.contact_person)
    page.get_by_label("電話番号").fill(vendor.contact_phone)
    applicant = page.get_by_role("group", name="申出者")
    applicant.get_by_label("メールアドレス").fill(vendor.contact_email)
    page.get_by_label("契約業務名").fill(vendor.contract_name)
    authority = page.get_by_role("group", name="【契約締結権限者】")
    authority.get_by_label("役職").fill(vendor.authority_title)
    authority.get_by_label("氏名", exact=True).fill(vendor.authority_name)
    authority.get_by_label("メールアドレス").fill(vendor.authority_email)


def apply_and_confirm(page: Page, mailbox: Mailbox, vendor: Vendor, department_name: str) -> str:
    """Submit /apply and open the confirmation link from the mail; returns the receipt number."""
    page.goto("/apply")
    fill_apply_form(page, vendor, department_name)
    page.get_by_role("button", name="提出する").click()
    expect(page.get_by_role("heading", name="電子契約利用申出書を受け付けました")).to_be_visible()
    receipt = page.get_by_label("受付番号").inner_text().strip()
    mail = mailbox.wait_for(vendor.authority_email, "メールアドレスの確認のお願い")
    page.goto(mailbox.link(mail, "/apply/confirm/"))
    page.get_by_role("button", name="確認する").click()
    expect(page.get_by_role("heading", name="メールアドレスの確認が完了しました")).to_be_visible()
    return receipt


# ---------------------------------------------------------------- staff


def log_in(page: Page, user: StaffUser) -> None:
    """The two-step staff login: password, then the TOTP code of the user's authenticator."""
    page.goto("/login")
    page.get_by_label("メールアドレス").fill(user.email)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="次へ").click()
    page.get_by_label("確認コード").fill(totp_code(user))
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()


@dataclass(frozen=True)
class ContractDraft:
    business_name: str = "令和8年度 庁舎清掃業務委託"
    counterparty_name: str = "株式会社けいやく商事"
    amount: int = 1_100_000
    tax_amount: int = 100_000
    signer_title: str = "代表取締役"
    signer_name: str = "髙橋 一郎"
    signer_email: str = "ichiro@keiyaku-shoji.example.jp"
    reference: str = "総契第123号（令和8年11月20日決裁）"
    contract_type: str = "委託"


def in_days(days: int) -> str:
    return (clock.now().astimezone(clock.JST).date() + timedelta(days=days)).isoformat()


def today() -> date:
    return clock.now().astimezone(clock.JST).date()


def choose_counterparty(page: Page, name: str) -> None:
    """Step 1 of a new contract: type part of the name (htmx search as you type), pick the 取引先."""
    page.get_by_label("取引先の名称（一部でも可）").fill(name[-4:])
    page.locator("#counterparty-results").get_by_role("link", name=name).click()
    expect(page.locator("#chosen-counterparty")).to_have_text(name)


def fill_contract_form(page: Page, draft: ContractDraft, approver: StaffUser, *,
                       override_reason: str | None = None) -> None:
    """The form after choosing the 取引先; the signer is the registered authority unless a reason is given."""
    if page.locator("#counterparty-picker").count():
        choose_counterparty(page, draft.counterparty_name)
    page.get_by_label("契約の種類").select_option(draft.contract_type)
    page.get_by_label("業務名").fill(draft.business_name)
    page.get_by_label("契約金額（税込・円）").fill(str(draft.amount))
    page.get_by_label("うち消費税及び地方消費税額（円）").fill(str(draft.tax_amount))
    page.get_by_label("取引年月日").fill(in_days(0))
    page.get_by_label("契約期間（開始）").fill(in_days(1))
    page.get_by_label("契約期間（終了）").fill(in_days(120))
    page.get_by_label("締結予定日（署名期限）").fill(in_days(14))
    if override_reason is not None:
        page.locator("#signer-override summary").click()
        page.get_by_label("登録された契約締結権限者とは別の人を署名者にする").check()
        page.get_by_label("別の署名者にする理由").fill(override_reason)
        page.get_by_label("契約締結権限者の役職").fill(draft.signer_title)
        page.get_by_label("契約締結権限者の氏名").fill(draft.signer_name)
        page.get_by_label("契約締結権限者のメールアドレス").fill(draft.signer_email)
    agency_signer = page.get_by_label("庁内の署名者（承認者・契約担当者）")
    agency_signer.select_option(agency_signer.locator("option", has_text=approver.name).get_attribute("value"))


def upload_with_file_chooser(page: Page, files: list[Path]) -> None:
    """Click the file input, pick the PDFs in the chooser, upload; wait until both are listed."""
    with page.expect_file_chooser() as chooser:
        page.get_by_label(re.compile("PDF を追加")).click()
    chooser.value.set_files([str(f) for f in files])
    page.get_by_role("button", name="アップロード").click()
    documents = page.locator("#documents")
    for file in files:
        expect(documents.get_by_role("link", name=re.compile("^" + re.escape(file.stem)))).to_be_visible()


def confirm_dialogs(page: Page) -> list[str]:
    """Accept hx-confirm dialogs (「署名依頼を送信しますか？」) as a person pressing OK; returns their texts."""
    seen: list[str] = []

    def accept(dialog: object) -> None:
        seen.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept()  # type: ignore[attr-defined]

    page.on("dialog", accept)
    return seen


# ---------------------------------------------------------------- signing


def complete_signing(page: Page, *, where: str) -> None:
    """「完了する」, then 「署名手続きを完了する」; waits for the done panel."""
    page.get_by_role("link", name="完了する", exact=True).click()
    expect(page.get_by_role("button", name="署名手続きを完了する")).to_be_visible()
    check_accessibility(page, f"{where}: confirmation")
    page.get_by_role("button", name="署名手続きを完了する").click()
    expect(page.get_by_role("heading", name="署名手続きが完了しました。")).to_be_visible(timeout=30_000)


# ---------------------------------------------------------------- data set up through the services


def make_contract(app: Flask, session: Session, staff: StaffUser, approver: StaffUser, **fields: Any) -> Contract:
    """tests.factories.make_contract for a 取引先 whose authority is registered (R10) as the signer it names,
    so that editing and copying in the browser start from the registry like a new contract."""
    factories.register_counterparty(session, fields.get("counterparty", "株式会社けいやく商事"), title="代表取締役",
                                    signer=fields.get("signer_name", "山田 太郎"),
                                    email=fields.get("signer_email", "yamada@keiyaku-shoji.co.jp"))
    return factories.make_contract(session, staff=staff, approver=approver, **fields)


def send_contract(app: Flask, session: Session, mailbox: Mailbox, staff: StaffUser, approver: StaffUser, *,
                  business_name: str = "令和8年度 庁舎清掃業務委託") -> str:
    """A contract with two PDFs, approved and sent to Vendor()'s authority; returns the signing link from the mail."""
    vendor = Vendor()
    documents = {f"{title}.pdf": make_pdf(title=title, pages=pages, japanese=True)
                 for title, pages in (("業務委託契約書", 2), ("仕様書", 1))}
    factories.register_counterparty(session, vendor.company_name, title=vendor.authority_title,
                                    signer=vendor.authority_name, email=vendor.authority_email)
    contract = factories.make_contract(session, staff=staff, approver=approver, business_name=business_name,
                                       signer_name=vendor.authority_name, signer_email=vendor.authority_email,
                                       documents=documents)
    with app.app_context():
        now = clock.now()
        contracts.confirm_internal_approval(session, contract, approver=approver, reference="総契第1号", now=now)
        contracts.send_for_signature(session, contract, actor=staff, now=now)
        session.commit()
    mail = mailbox.wait_for(contract.parties[0].email, "への署名依頼が届いています")
    return mailbox.link(mail, "/s/")


def staff_pair(session: Session) -> tuple[StaffUser, StaffUser]:
    """A contract clerk and an approver of one department."""
    department = make_department(session)
    staff = make_staff(session, role=Role.STAFF, email="tanaka@pref.example.jp", name="田中 進",
                       department=department)
    approver = make_staff(session, role=Role.APPROVER, email="sato@pref.example.jp", name="佐藤 恵",
                          department=department, title="契約課長")
    return staff, approver
