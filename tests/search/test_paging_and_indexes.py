"""Deep pages by keyset, the total carried by page links, scoping alternatives, the substring index."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.auth.models import Role
from portal.contracts.models import Contract, Party, PartyRole, PartyStatus
from portal.counterparties.normalize import normalize_name
from portal.search.criteria import SCREEN_STATUSES, parse_criteria
from portal.search.service import search_contracts
from tests.conftest import reread
from tests.factories import login_as, make_staff
from tests.search.conftest import World
from tests.search.factories import make_contract

NEXT_RE = re.compile(r'<a rel="next" href="([^"]+)"')
PREV_RE = re.compile(r'<a rel="prev" href="([^"]+)"')


def _many(session: Session, world: World, count: int = 23) -> None:
    for n in range(count):
        make_contract(session, number=f"P-{n:03d}", department=world.department_a, created_by=world.staff_a,
                      transaction_date=date(2024, 1, 1) + timedelta(days=n // 2), amount=1000 + n, tax_amount=0,
                      counterparty_name=f"株式会社ページ送り{n}")
    session.commit()


def _numbers(html: str) -> list[str]:
    return re.findall(r">(P-\d{3}|[AB]-\d{4}-\d{4})</a>", html)


def test_next_and_previous_links_walk_by_keyset_and_match_offset_pages(app: Flask, client: FlaskClient,
                                                                        session: Session, world: World) -> None:
    _many(session, world)
    login_as(client, world.auditor)
    with app.test_request_context():
        offset_pages = [[c.number for c in search_contracts(
            session, parse_criteria({"per_page": "10", "page": str(p)}, default_statuses=SCREEN_STATUSES),
            actor=world.auditor).items]
            for p in (1, 2, 3)]
    html = client.get("/search/?per_page=10").get_data(as_text=True)
    assert _numbers(html) == offset_pages[0]
    second_url = unescape(NEXT_RE.search(html).group(1))
    assert "after=" in second_url
    assert "total=29" in second_url  # 23 + the 6 of the fixture not drafts (the screen leaves drafts out), counted once
    second = client.get(second_url).get_data(as_text=True)
    assert _numbers(second) == offset_pages[1]
    third = client.get(unescape(NEXT_RE.search(second).group(1))).get_data(as_text=True)
    assert _numbers(third) == offset_pages[2]
    assert "3 / 3 ページ" in third
    assert NEXT_RE.search(third) is None
    back = client.get(unescape(PREV_RE.search(third).group(1))).get_data(as_text=True)
    assert _numbers(back) == offset_pages[1]


def test_page_links_carry_the_total_instead_of_recounting(client: FlaskClient, session: Session,
                                                          world: World) -> None:
    _many(session, world)
    login_as(client, world.auditor)
    html = client.get("/search/?per_page=10").get_data(as_text=True)
    second_url = unescape(NEXT_RE.search(html).group(1))
    make_contract(session, number="P-999", department=world.department_a, created_by=world.staff_a,
                  transaction_date=date(2020, 1, 1), amount=1, tax_amount=0)
    session.commit()
    assert "<strong>29</strong> 件" in client.get(second_url).get_data(as_text=True)
    assert "<strong>30</strong> 件" in client.get("/search/?per_page=10").get_data(as_text=True)


def test_a_forged_cursor_or_total_is_a_japanese_message(client: FlaskClient, world: World) -> None:
    login_as(client, world.auditor)
    cursor = "ページの指定を読み取れませんでした。最初のページから表示し直してください。"
    total = "total には 0 以上の整数を指定してください。"
    for query, message in (("after=2024-13-01.1", cursor), ("after=x%00y", cursor), ("before=" + "9" * 400, cursor),
                           ("total=-1", total), ("total=１２", total)):
        response = client.get(f"/search/?{query}")
        assert response.status_code == 422, query
        assert message in response.get_data(as_text=True), query


def test_staff_see_contracts_of_other_departments_they_sign_merged_in_date_order(
        app: Flask, session: Session, world: World) -> None:
    approver = make_staff(session, email="shonin@pref.example.jp", role=Role.APPROVER, department=world.department_a)
    other = session.scalar(select(Contract).where(Contract.number == "B-2025-0001"))
    session.add(Party(contract_id=other.id, position=9, role=PartyRole.AGENCY, organization="岡山県", name="承認者",
                      email=approver.email, staff_user_id=approver.id, status=PartyStatus.WAITING))
    session.commit()
    with app.test_request_context():
        page = search_contracts(session, parse_criteria({"per_page": "3"}), actor=approver)
        everything = search_contracts(session, parse_criteria({"per_page": "50"}), actor=approver)
    numbers = [c.number for c in everything.items]
    assert "B-2025-0001" in numbers
    assert everything.total == len(numbers) == 7  # the 6 of department A and the one signed elsewhere
    dates = [(c.transaction_date, c.id) for c in everything.items]
    assert dates == sorted(dates, reverse=True)
    assert [c.number for c in page.items] == numbers[:3]


def test_the_substring_index_follows_inserts_updates_and_deletes(app: Flask, session: Session, world: World) -> None:
    def found(text: str) -> list[str]:
        with app.test_request_context():
            reread(session)
            return [c.number for c in search_contracts(session, parse_criteria({"counterparty": text}),
                                                       actor=world.auditor).items]

    assert found("ケイヤク商事") == ["B-2025-0001", "A-2019-0002", "A-2019-0001"]
    assert found("ビルサ") == ["A-2025-0001"]
    assert found("ビル") == ["A-2025-0001"]  # two characters: below the trigram index, still found
    session.execute(update(Contract).where(Contract.number == "A-2025-0001")
                    .values(counterparty_name="株式会社 吉備ソリューションズ",
                            counterparty_name_normalized=normalize_name("株式会社 吉備ソリューションズ")))
    session.commit()
    assert found("ビルサ") == []
    assert found("吉備ソリュ") == ["A-2025-0001"]
    session.delete(session.scalar(select(Contract).where(Contract.number == "A-2019-0001")))
    session.commit()
    assert found("ケイヤク商事") == ["B-2025-0001", "A-2019-0002"]
    assert found('"株式会社" OR x') == []  # FTS syntax in the input is text, not a query
