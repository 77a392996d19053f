"""Journey 5: staff find a contract on the search screen by a variant of the counterparty's name
(half-width katakana, (株)) combined with an amount range (電帳法: date × amount × counterparty)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from tests.e2e.conftest import Pages
from tests.e2e.steps import log_in, staff_pair
from tests.e2e.support import check_accessibility, screenshot
from tests.factories import make_contract

pytestmark = pytest.mark.e2e


def test_staff_find_a_contract_by_a_name_variant_and_an_amount_range(
    pages: Pages, session: Session, app: Flask,
) -> None:
    staff, approver = staff_pair(session)
    wanted = make_contract(session, staff=staff, approver=approver, business_name="令和8年度 庁舎清掃業務委託",
                           counterparty="株式会社けいやく商事", amount=1_100_000)
    make_contract(session, staff=staff, approver=approver, business_name="令和8年度 庁舎警備業務委託",
                  counterparty="株式会社けいやく商事", amount=9_900_000)
    make_contract(session, staff=staff, approver=approver, business_name="令和8年度 公用車リース",
                  counterparty="有限会社きびリース", amount=1_320_000)

    page = pages.desk()
    log_in(page, staff)
    page.goto("/search/")
    check_accessibility(page, "search screen")
    page.get_by_label("下書き", exact=True).check()  # these contracts are drafts: left out unless asked

    page.get_by_label("金額（以上）").fill("1,000,000")
    page.get_by_label("金額（以下）").fill("5,000,000")
    results = page.locator("#search-results")
    rows = results.locator("tbody tr")
    for typed in ["(株)ｹｲﾔｸ商事", "㈱けいやく"]:  # half-width katakana; ㈱ and hiragana
        page.get_by_label("取引先").fill(typed)
        page.get_by_role("button", name="検索").click()
        page.wait_for_url(lambda url, typed=typed: parse_qs(urlsplit(url).query).get("counterparty") == [typed])
        expect(results).to_contain_text("1 件")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(wanted.number)
        expect(rows.first).to_contain_text("株式会社けいやく商事")
        check_accessibility(page, f"search results for {typed}")
    expect(page).to_have_url(re.compile(r"amount_min="))  # the whole query is in the URL: bookmarkable
    screenshot(page, "search")

    rows.first.get_by_role("link", name=wanted.number).click()
    expect(page.get_by_role("heading", name=wanted.business_name)).to_be_visible()
