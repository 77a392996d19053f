"""Journeys: a clerk edits a draft after its 決裁 (amount and signer) and sees the new values and the
operation-log entry; a vendor declines, the clerk duplicates the declined contract with its documents."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.contracts import service as contracts
from portal.contracts.models import Contract
from tests.e2e.conftest import Pages
from tests.e2e.steps import log_in, send_contract, staff_pair
from tests.e2e.support import Mailbox, check_accessibility
from tests.factories import make_contract, register_counterparty
from tests.pdfs import make_pdf

pytestmark = pytest.mark.e2e
FITS = "() => document.documentElement.scrollWidth <= window.innerWidth"


def test_a_clerk_edits_an_approved_draft_and_the_approver_must_approve_again(pages: Pages, session: Session,
                                                                             app: Flask) -> None:
    staff, approver = staff_pair(session)
    register_counterparty(session)  # the accepted 申出書's authority signs (R10); editing starts from it
    contract = make_contract(session, staff=staff, approver=approver, business_name="令和8年度 庁舎清掃業務委託")
    with app.app_context():
        contracts.attach_document(session, contract, filename="業務委託契約書.pdf",
                                  data=make_pdf(title="業務委託契約書", japanese=True), actor=staff, now=clock.now())
        contracts.confirm_internal_approval(session, contract, approver=approver, reference="総契第7号",
                                            now=clock.now())
        session.commit()

    desk = pages.desk()
    log_in(desk, staff)
    desk.goto(f"/contracts/{contract.id}")
    desk.get_by_role("link", name="編集する").click()
    expect(desk.get_by_role("heading", name=re.compile("契約の編集"))).to_be_visible()
    expect(desk.locator("#edit-notice")).to_contain_text("決裁の確認は取り消されて下書きに戻り")
    expect(desk.get_by_label("契約金額（税込・円）")).to_have_value("1100000")
    check_accessibility(desk, "edit form")
    desk.get_by_label("自動更新条項がある").check()  # refused (R12), the form keeps what was typed
    desk.get_by_label("業務名").fill("令和8年度 庁舎清掃業務委託（本館）")
    desk.get_by_role("button", name="変更を保存").click()
    expect(desk.get_by_role("alert")).to_contain_text("自動更新条項が設けられた契約は、電子契約の対象外です")
    expect(desk.get_by_label("業務名")).to_have_value("令和8年度 庁舎清掃業務委託（本館）")
    desk.get_by_label("自動更新条項がある").uncheck()
    desk.get_by_label("契約金額（税込・円）").fill("1210000")
    desk.get_by_label("うち消費税及び地方消費税額（円）").fill("110000")
    desk.locator("#signer-override summary").click()  # another signer than the registered one: a reason
    desk.get_by_label("登録された契約締結権限者とは別の人を署名者にする").check()
    desk.get_by_label("別の署名者にする理由").fill("代表者の交代（新しい申出書は提出予定）")
    desk.get_by_label("契約締結権限者の役職").fill("取締役社長")
    desk.get_by_label("契約締結権限者の氏名").fill("吉備 次郎")
    desk.get_by_label("契約締結権限者のメールアドレス").fill("jiro@keiyaku-shoji.example.jp")
    desk.get_by_role("button", name="変更を保存").click()

    expect(desk.get_by_role("status").first).to_contain_text("決裁の確認は取り消されました")
    expect(desk.get_by_text("金1,210,000円（うち消費税及び地方消費税額 金110,000円）")).to_be_visible()
    signers = desk.get_by_role("heading", name="署名者（署名順）").locator("..")
    expect(signers).to_contain_text("取締役社長 吉備 次郎 <jiro@keiyaku-shoji.example.jp>")
    expect(desk.locator(".status").first).to_have_text("下書き")
    history = desk.locator(".timeline")
    expect(history).to_contain_text("の内容を編集しました")
    expect(history).to_contain_text("契約金額（税込）: 金1,100,000円 → 金1,210,000円")
    expect(history).to_contain_text("吉備 次郎")
    expect(history).to_contain_text("文書または内容の変更により")
    expect(desk.get_by_role("button", name="署名依頼を送信する")).to_have_count(0)

    approver_desk = pages.desk()
    log_in(approver_desk, approver)
    approver_desk.goto(f"/contracts/{contract.id}")
    approver_desk.get_by_label("決裁番号（決裁日）").fill("総契第8号")
    approver_desk.get_by_role("button", name="文書が決裁どおりであることを確認する").click()
    expect(approver_desk.locator("#status-panel")).to_contain_text("決裁確認済み: 総契第8号")

    desk.set_viewport_size({"width": 390, "height": 844})  # the same clerk on a phone-sized window
    desk.goto(f"/contracts/{contract.id}/edit")
    assert desk.evaluate(FITS), "the edit page is wider than a 390 px phone"


def test_a_clerk_duplicates_a_contract_the_vendor_declined(pages: Pages, session: Session, app: Flask,
                                                          mailbox: Mailbox) -> None:
    staff, approver = staff_pair(session)
    link = send_contract(app, session, mailbox, staff, approver)

    phone = pages.phone()
    phone.goto(link)
    phone.get_by_role("link", name="差し戻す").click()
    phone.get_by_label("差し戻しの理由").fill("契約金額が見積書と異なります。")
    phone.get_by_role("button", name="差し戻す").click()
    expect(phone.locator("#action-panel")).to_contain_text("差し戻しました")

    desk = pages.desk()
    log_in(desk, staff)
    [declined] = session.scalars(select(Contract)).all()
    desk.goto(f"/contracts/{declined.id}")
    expect(desk.locator(".status").first).to_have_text("差し戻し")
    original_number = desk.locator("h1 small").inner_text().strip()
    desk.get_by_role("link", name="この契約を複製して作成").click()
    expect(desk.get_by_role("heading", name=f"新しい契約（{original_number} の複製）")).to_be_visible()
    expect(desk.get_by_label("業務名")).to_have_value("令和8年度 庁舎清掃業務委託")
    expect(desk.get_by_label("契約締結権限者のメールアドレス")).to_have_value("ichiro@keiyaku-shoji.example.jp")
    expect(desk.get_by_label("文書もコピーする")).to_be_checked()
    check_accessibility(desk, "copy form")
    desk.get_by_label("契約金額（税込・円）").fill("1000000")
    desk.get_by_label("うち消費税及び地方消費税額（円）").fill("90909")
    desk.get_by_role("button", name="下書きを保存").click()

    expect(desk.get_by_role("status").first).to_contain_text(f"{original_number} を複製して下書き")
    expect(desk.get_by_role("status").first).to_contain_text("文書 2 件もコピーしました")
    new_number = desk.locator("h1 small").inner_text().strip()
    assert new_number != original_number
    expect(desk.locator(".status").first).to_have_text("下書き")
    expect(desk.get_by_text("金1,000,000円（うち消費税及び地方消費税額 金90,909円）")).to_be_visible()
    documents = desk.locator("#documents")
    expect(documents.get_by_role("link", name=re.compile("^業務委託契約書"))).to_be_visible()
    expect(documents.get_by_role("link", name=re.compile("^仕様書"))).to_be_visible()
    signers = desk.get_by_role("heading", name="署名者（署名順）").locator("..")
    expect(signers).to_contain_text("髙橋 一郎 <ichiro@keiyaku-shoji.example.jp> — 順番待ち")
    expect(desk.locator(".timeline")).to_contain_text(f"複製元: {original_number}")
    desk.get_by_role("link", name=re.compile(re.escape(original_number))).click()
    expect(desk.get_by_text("契約金額が見積書と異なります。").first).to_be_visible()
    expect(desk.get_by_role("link", name=re.compile(re.escape(new_number)))).to_be_visible()

    desk.set_viewport_size({"width": 390, "height": 844})  # the same clerk on a phone-sized window
    desk.goto(f"/contracts/{declined.id}/copy")
    assert desk.evaluate(FITS), "the copy form is wider than a 390 px phone"
