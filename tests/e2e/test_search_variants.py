"""Journey: staff find contracts by a 異体字 or dash variant of the counterparty and by 「令和8年度」, on a
form that fits above the fold (1366×768 and a 390×844 phone), sort by a column, and export a CSV whose
「タイムスタンプ時刻」 is filled for a contract completed a moment ago, without any 一括検証."""

from __future__ import annotations

import csv
import io
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from portal.auth.models import Role
from portal.contracts.models import Contract
from portal.search.export import CSV_COLUMNS
from tests.contracts.fixtures import World
from tests.e2e.conftest import Pages
from tests.e2e.steps import log_in
from tests.e2e.support import check_accessibility, screenshot
from tests.factories import make_staff
from tests.pdfs import make_pdf
from tests.search.factories import make_contract

pytestmark = pytest.mark.e2e


def _button_bottom(page: Page) -> float:
    box = page.get_by_role("button", name="検索", exact=True).bounding_box()
    assert box is not None
    return box["y"] + box["height"]


def _search(page: Page, **fields: str) -> None:
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="検索", exact=True).click()
    wanted = fields.get("取引先", "")
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query).get("counterparty", [""]) == [wanted])
    # Typing in the 取引先 box also queued the form's own search (400 ms debounce): let it land before the next
    # click, or its answer replaces what that click brought (a column sort, under load).
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def test_itaiji_dash_and_fiscal_year_search_and_the_csv_timestamp(pages: Pages, session: Session,
                                                                  app: Flask) -> None:
    world = World(app, session)
    completed = session.get(Contract, world.completed_contract(make_pdf("Agreement", 1)))
    assert completed is not None
    completed_number = completed.number
    for number, day, name in [("KEI-R8-9001", date(2026, 4, 1), "髙橋建設株式会社"),
                              ("KEI-R7-9002", date(2026, 3, 31), "髙橋建設株式会社"),
                              ("KEI-R8-9003", date(2026, 6, 1), "ケーエス産業株式会社")]:
        make_contract(session, number=number, department=world.department, created_by=world.staff,
                      transaction_date=day, amount=2_200_000, tax_amount=200_000, counterparty_name=name)

    # Browser users of their own: World's clients have used this time step's TOTP codes of its staff.
    clerk = make_staff(session, email="kensaku@pref.example.jp", department=world.department)
    auditor = make_staff(session, email="kansa@pref.example.jp", role=Role.AUDITOR, department=world.department)
    page = pages.desk()
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, clerk)
    page.goto("/search/")
    assert _button_bottom(page) <= 768, "the search button is below the fold at 1366×768"
    page.get_by_text("詳しい条件").click()
    assert _button_bottom(page) <= 768, "with 詳しい条件 open the form still fits at 1366×768"
    check_accessibility(page, "search form")

    rows = page.locator("#search-results tbody tr")
    _search(page, **{"取引年月日（から）": "令和8年度", "取引年月日（まで）": "令和8年度", "取引先": "高橋"})
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("KEI-R8-9001")
    expect(rows.first).to_contain_text("髙橋建設株式会社")

    _search(page, **{"取引先": "ｹ-ｴｽ"})  # half-width katakana, an ASCII hyphen for the 長音
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("KEI-R8-9003")

    _search(page, **{"取引年月日（から）": "令和八年四月一日", "取引年月日（まで）": "令和九年三月三十一日",
                     "取引先": ""})
    expect(rows).to_have_count(3)  # the completed one (today), 9001 and 9003; 9002 is 令和7年度
    page.locator("#search-results thead").get_by_role("link", name="金額（税込）").click()
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("金額")
    expect(rows.last).to_contain_text(completed_number)  # 1,100,000 after the 2,200,000s
    page.locator("#search-results thead").get_by_role("link", name="金額（税込） ▼").click()
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("金額")
    expect(rows.first).to_contain_text(completed_number)
    screenshot(page, "search-fiscal-year")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV を出力").click()
    text = download_info.value.path().read_bytes().decode("utf-8-sig")
    lines = {line[CSV_COLUMNS.index("契約番号")]: line for line in csv.reader(io.StringIO(text))}
    stamp = lines[completed_number][CSV_COLUMNS.index("タイムスタンプ時刻")]
    assert stamp.startswith(date.today().strftime("%Y-")), stamp
    assert stamp.endswith("+09:00"), stamp
    assert lines[completed_number][CSV_COLUMNS.index("状態")] == "締結済み"

    phone = pages.phone()
    log_in(phone, auditor)
    phone.goto("/search/")
    assert _button_bottom(phone) <= 844, "the search button is below the fold on a 390×844 phone"
    width, inner = phone.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= min(inner, 390)
    check_accessibility(phone, "search form on a phone")


def test_a_column_sorted_right_after_typing_sorts_the_typed_search(pages: Pages, session: Session,
                                                                     app: Flask) -> None:
    """A click on a column header within the 取引先 box's 400 ms pause: the list shows the typed search in the
    clicked order (the form's request carries both), not the typed search in the old order arriving last."""
    world = World(app, session)
    for number, day, name, amount in [("KEI-S-0001", date(2026, 4, 1), "髙橋建設株式会社", 3_300_000),
                                      ("KEI-S-0002", date(2026, 6, 1), "高橋商事株式会社", 1_100_000),
                                      ("KEI-S-0003", date(2026, 5, 1), "山田工業株式会社", 9_900_000)]:
        make_contract(session, number=number, department=world.department, created_by=world.staff,
                      transaction_date=day, amount=amount, tax_amount=amount // 11, counterparty_name=name)
    clerk = make_staff(session, email="narabe@pref.example.jp", department=world.department)
    page = pages.desk()
    log_in(page, clerk)
    page.goto("/search/")
    rows = page.locator("#search-results tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label("取引先", exact=True).fill("高橋")
    page.locator("#search-results thead").get_by_role("link", name="金額（税込）").click()
    page.wait_for_timeout(800)  # past the pause: the typed search's own request has been sent by now
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("金額")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("KEI-S-0001")
    query = parse_qs(urlsplit(page.url).query)
    assert (query.get("counterparty"), query.get("sort")) == (["高橋"], ["amount"])
