"""Journey 5: staff find a contract on the search screen by a variant of the counterparty's name
(half-width katakana, (株)) combined with an amount range (電帳法: date × amount × counterparty)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from portal import clock
from portal.auth.models import Department, Role, StaffUser
from portal.contracts import service as contracts
from portal.contracts.models import Contract, PartyRole
from tests.e2e.conftest import Pages
from tests.e2e.steps import log_in, today
from tests.e2e.support import check_accessibility, screenshot
from tests.factories import make_department, make_staff

pytestmark = pytest.mark.e2e


def _contract(app: Flask, session: Session, staff: StaffUser, approver: StaffUser, department: Department, *,
              business_name: str, counterparty: str, amount: int) -> Contract:
    signers = [
        contracts.SignerInput(role=PartyRole.COUNTERPARTY, organization=counterparty, title="代表取締役",
                              name="髙橋 一郎", email="ichiro@keiyaku-shoji.example.jp"),
        contracts.SignerInput(role=PartyRole.AGENCY, user_email=approver.email),
    ]
    data = contracts.ContractInput(
        business_name=business_name, department=department, counterparty_name=counterparty, amount=amount,
        tax_amount=amount // 11, transaction_date=today(), term_start=today(),
        term_end=today() + timedelta(days=180), planned_conclusion_date=today() + timedelta(days=14),
        signers=signers,
    )
    with app.app_context():
        contract = contracts.create_draft(session, data, actor=staff, now=clock.now())
        session.commit()
    return contract


@pytest.mark.parametrize("typed", ["(株)ｹｲﾔｸ商事", "㈱けいやく"], ids=["half-width-kana", "kabu-sign"])
def test_staff_find_a_contract_by_a_name_variant_and_an_amount_range(
    pages: Pages, session: Session, app: Flask, typed: str,
) -> None:
    department = make_department(session)
    staff = make_staff(session, role=Role.STAFF, email="tanaka@pref.example.jp", name="田中 進",
                       department=department)
    approver = make_staff(session, role=Role.APPROVER, email="sato@pref.example.jp", name="佐藤 恵",
                          department=department)
    wanted = _contract(app, session, staff, approver, department, business_name="令和8年度 庁舎清掃業務委託",
                       counterparty="株式会社けいやく商事", amount=1_100_000)
    _contract(app, session, staff, approver, department, business_name="令和8年度 庁舎警備業務委託",
              counterparty="株式会社けいやく商事", amount=9_900_000)
    _contract(app, session, staff, approver, department, business_name="令和8年度 公用車リース",
              counterparty="有限会社きびリース", amount=1_320_000)

    page = pages.desk()
    log_in(page, staff)
    page.goto("/search/")
    check_accessibility(page, "search screen")

    page.get_by_label("取引先").fill(typed)
    page.get_by_label("金額（以上）").fill("1,000,000")
    page.get_by_label("金額（以下）").fill("5,000,000")
    page.get_by_role("button", name="検索").click()

    results = page.locator("#search-results")
    expect(results).to_contain_text("1 件")
    rows = results.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(wanted.number)
    expect(rows.first).to_contain_text("株式会社けいやく商事")
    expect(page).to_have_url(re.compile(r"amount_min="))  # the query is bookmarkable
    check_accessibility(page, "search results")
    if typed.startswith("(株)"):
        screenshot(page, "search")

    rows.first.get_by_role("link", name=wanted.number).click()
    expect(page.get_by_role("heading", name=wanted.business_name)).to_be_visible()
