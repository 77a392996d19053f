"""What keeps the search fast at a million contracts, seen from the outside: a total counted up to a
limit (「1,000 件以上」), counterparty needles of two characters matched on the distinct names, keyset
page links in the orders other than 取引年月日, and page links a user may have edited."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.auth.models import Role, StaffUser
from portal.contracts.models import Contract, ContractStatus, Party, PartyRole, PartyStatus
from portal.counterparties.normalize import normalize_name
from portal.preservation import service as preservation
from portal.search import service
from portal.search.criteria import SCREEN_STATUSES, parse_criteria
from portal.search.models import CounterpartyName
from portal.search.service import search_contracts
from tests.conftest import reread
from tests.factories import login_as, make_staff
from tests.search.conftest import World
from tests.search.factories import make_contract

NEXT_RE = re.compile(r'<a rel="next" href="([^"]+)"')
PREV_RE = re.compile(r'<a rel="prev" href="([^"]+)"')
COUNT_RE = re.compile(r'<a href="([^"]+)"[^>]*>正確な件数を数える</a>')


def _many(session: Session, world: World, count: int = 23) -> None:
    for n in range(count):
        make_contract(session, number=f"P-{n:03d}", department=world.department_a, created_by=world.staff_a,
                      transaction_date=date(2024, 1, 1) + timedelta(days=n // 2), amount=1000 + (n * 7) % 5,
                      tax_amount=0, counterparty_name=f"株式会社ページ送り{n % 4}")
    session.commit()


def _numbers(html: str) -> list[str]:
    return re.findall(r">(P-\d{3}|[AB]-\d{4}-\d{4})</a>", html)


def test_past_the_count_limit_the_total_reads_at_least_and_can_be_counted(app: Flask, client: FlaskClient,
                                                                         session: Session, world: World) -> None:
    _many(session, world)
    app.config["SEARCH_COUNT_LIMIT"] = 12
    login_as(client, world.auditor)
    first = client.get("/search/?per_page=10").get_data(as_text=True)
    assert "<strong>12</strong> 件以上（1〜10 件目）" in first
    assert "PDF と CSV を ZIP で出力（12 件以上）" in first
    assert "1 ページ目" in first
    assert "/ 3 ページ" not in first
    seen = _numbers(first)
    url = unescape(NEXT_RE.search(first).group(1))
    assert "total=12%2B" in url  # the lower bound travels with the link, marked as such
    while url:
        html = client.get(url).get_data(as_text=True)
        assert "<strong>12</strong> 件以上" in html
        seen += _numbers(html)
        found = NEXT_RE.search(html)
        url = unescape(found.group(1)) if found else ""
    assert len(seen) == len(set(seen)) == 29  # every row once, the last page offers no 次へ
    counted = client.get(unescape(COUNT_RE.search(first).group(1))).get_data(as_text=True)
    assert "<strong>29</strong> 件（1〜10 件目）" in counted
    assert "1 / 3 ページ" in counted
    assert "正確な件数を数える" not in counted


def test_under_the_count_limit_the_total_is_exact(app: Flask, client: FlaskClient, session: Session,
                                                  world: World) -> None:
    _many(session, world)
    app.config["SEARCH_COUNT_LIMIT"] = 29
    login_as(client, world.auditor)
    html = client.get("/search/?per_page=10").get_data(as_text=True)
    assert "<strong>29</strong> 件（1〜10 件目）" in html
    assert "件以上" not in html


def test_a_bookmarked_page_past_the_end_under_a_lower_bound_is_the_last_page(app: Flask, session: Session,
                                                                            world: World) -> None:
    _many(session, world)
    with app.test_request_context():
        page = search_contracts(session, parse_criteria({"per_page": "10", "page": "9"},
                                                        default_statuses=SCREEN_STATUSES),
                                actor=world.auditor, count_limit=12)
    assert (page.page, page.total, page.total_is_lower_bound, len(page.items)) == (3, 29, False, 9)


@pytest.mark.parametrize("typed", ["髙島", "高島", "ﾀｶ", "タカ", "島屋"])
def test_two_characters_find_the_counterparty_with_variant_kanji_and_widths(app: Flask, session: Session,
                                                                             world: World, typed: str) -> None:
    make_contract(session, number="T-0001", department=world.department_a, created_by=world.staff_a,
                  transaction_date=date(2024, 5, 1), amount=1, tax_amount=0, counterparty_name="株式会社髙島屋ﾀｶﾗ")
    session.commit()
    with app.test_request_context():
        page = search_contracts(session, parse_criteria({"counterparty": typed}), actor=world.auditor)
    assert [c.number for c in page.items] == ["T-0001"]


def test_two_characters_follow_renames_and_find_old_names_in_the_history(app: Flask, session: Session,
                                                                          world: World) -> None:
    contract = session.scalar(select(Contract).where(Contract.number == "A-2025-0001"))  # 有限会社 岡山ビルサービス

    def found(text: str, history: bool = False) -> list[str]:
        with app.test_request_context():
            reread(session)
            criteria = parse_criteria({"counterparty": text, **({"history": "1"} if history else {})})
            return [c.number for c in search_contracts(session, criteria, actor=world.auditor).items]

    with app.app_context():
        preservation.correct_metadata(session, contract, {"counterparty_name": "株式会社 吉備ソリューションズ"},
                                      reason="商号の誤記", actor=world.staff_a, now=clock.now())
    session.commit()
    assert found("吉備") == ["A-2025-0001"]  # the new name reached the names table
    assert found("ビル") == []
    assert found("ビル", history=True) == ["A-2025-0001"]  # the old name, from the correction
    session.execute(update(Contract).where(Contract.number == "A-2019-0001")
                    .values(counterparty_name="邉見工業", counterparty_name_normalized=normalize_name("邉見工業")))
    session.commit()
    assert found("辺見") == ["A-2019-0001"]


def test_every_way_of_taking_the_names_finds_the_same_contracts(app: Flask, session: Session, world: World,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _many(session, world)

    def numbers(text: str) -> list[str]:
        with app.test_request_context():
            criteria = parse_criteria({"counterparty": text, "per_page": "7", "date_from": "2024-01-02",
                                       "amount_min": "1001"})
            page = search_contracts(session, criteria, actor=world.staff_a, count_limit=5)
            rest = search_contracts(session, parse_criteria(
                {"counterparty": text, "per_page": "7", "date_from": "2024-01-02", "amount_min": "1001",
                 "after": page.next_after or "", "page": "2", "total": "5+"}), actor=world.staff_a, count_limit=5)
            return [c.number for c in [*page.items, *rest.items]]

    listed = numbers("ジ送")
    assert len(listed) == 14
    monkeypatch.setattr(service, "COMMON_NAME_CONTRACTS", 1)  # walk the date order, test the name
    assert numbers("ジ送") == listed
    monkeypatch.setattr(service, "MAX_MATCHED_NAMES", 1)  # too many names: the substring index / LIKE
    assert numbers("ジ送") == listed
    assert session.scalar(select(CounterpartyName.id).where(
        CounterpartyName.name_normalized == normalize_name("株式会社ページ送り3"))) is not None


@pytest.mark.parametrize(("sort", "order"), [("amount", "asc"), ("amount", "desc"), ("counterparty", "asc"),
                                             ("number", "desc"), ("business", "asc"), ("completed", "asc"),
                                             ("completed", "desc")])
def test_other_orders_page_by_keyset_and_match_offset_pages(app: Flask, client: FlaskClient, session: Session,
                                                             world: World, sort: str, order: str) -> None:
    _many(session, world)
    login_as(client, world.auditor)
    query = {"per_page": "10", "sort": sort, "order": order}
    with app.test_request_context():
        offset_pages = [[c.number for c in search_contracts(
            session, parse_criteria({**query, "page": str(p)}, default_statuses=SCREEN_STATUSES),
            actor=world.auditor).items] for p in (1, 2, 3)]
    html = client.get(f"/search/?per_page=10&sort={sort}&order={order}").get_data(as_text=True)
    assert _numbers(html) == offset_pages[0]
    second_url = unescape(NEXT_RE.search(html).group(1))
    assert "after=" in second_url
    second = client.get(second_url).get_data(as_text=True)
    assert _numbers(second) == offset_pages[1]
    third = client.get(unescape(NEXT_RE.search(second).group(1))).get_data(as_text=True)
    assert _numbers(third) == offset_pages[2]
    back = client.get(unescape(PREV_RE.search(third).group(1))).get_data(as_text=True)
    assert _numbers(back) == offset_pages[1]


@pytest.mark.parametrize("query", [
    "sort=amount&after=1e5.3", "sort=amount&after=1000", "sort=amount&after=" + "9" * 30 + ".1",
    "sort=counterparty&after=%E6%A0%AA%00.3", "sort=counterparty&after=x." + "1" * 19,
    "sort=number&before=" + "A" * 201 + ".1", "sort=completed&after=2024-01-01.1", "sort=date&after=2024-02-30.1",
    "sort=completed&after=2024-01-01T12:00:00.1", "sort=completed&after=2024-01-01T12:00:00%2B09:00.1",
    "sort=completed&before=2024-13-01T00:00:00%2B00:00.1", "sort=completed&after=null.x", "sort=completed&after=NULL.1",
    "sort=completed&after=2024-01-01T12:00:00.5%2B00:00.1", "sort=date&after=null.1",
    "total=%2B", "total=5%2B%2B", "total=-5%2B",
])
def test_an_edited_page_link_is_a_japanese_message(client: FlaskClient, world: World, query: str) -> None:
    login_as(client, world.auditor)
    response = client.get(f"/search/?{query}")
    assert response.status_code == 422, query
    assert re.search("ページの指定を読み取れませんでした|total には 0 以上の整数を指定してください",
                     response.get_data(as_text=True)), query


def _with_unconcluded(session: Session, world: World) -> StaffUser:
    """_many's 23 (締結日時 tied in pairs: noon JST of the same day), 7 contracts not concluded yet (no
    締結日時) in both departments, and an approver of department A who signs one of each kind in B."""
    _many(session, world)
    for n in range(7):
        make_contract(session, number=f"P-{100 + n}", department=world.department_b if n % 2 else world.department_a,
                      created_by=world.staff_a, transaction_date=date(2024, 3, 1) - timedelta(days=n), amount=500 + n,
                      tax_amount=0, status=ContractStatus.AWAITING_COUNTERPARTY)
    approver = make_staff(session, email="shonin@pref.example.jp", role=Role.APPROVER, department=world.department_a)
    for number in ("P-101", "B-2025-0001"):
        signed = session.scalar(select(Contract).where(Contract.number == number))
        session.add(Party(contract_id=signed.id, position=9, role=PartyRole.AGENCY, organization="岡山県",
                          name="承認者", email=approver.email, staff_user_id=approver.id, status=PartyStatus.WAITING))
    session.commit()
    return approver


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("who", ["auditor", "approver"])
def test_completion_time_pages_by_keyset_with_the_unconcluded_after_the_latest(
        app: Flask, client: FlaskClient, session: Session, world: World, order: str, who: str) -> None:
    approver = _with_unconcluded(session, world)
    actor = world.auditor if who == "auditor" else approver
    visible = [c for c in session.scalars(select(Contract).where(Contract.status.in_(SCREEN_STATUSES)))
               if who == "auditor" or c.department_id == world.department_a.id
               or c.number in ("P-101", "B-2025-0001")]
    never = datetime.min.replace(tzinfo=UTC)
    expected = [c.number for c in sorted(visible, key=lambda c: (c.completed_at is None, c.completed_at or never,
                                                                 c.id), reverse=order == "desc")]
    assert len({c.completed_at for c in visible if c.completed_at}) < len([c for c in visible if c.completed_at])
    login_as(client, actor)
    html = client.get(f"/search/?per_page=4&sort=completed&order={order}").get_data(as_text=True)
    pages, cursors = [_numbers(html)], set()
    while found := NEXT_RE.search(html):
        url = unescape(found.group(1))
        cursors.add(re.search(r"after=([^.&]+)", url).group(1)[:4])
        html = client.get(url).get_data(as_text=True)
        pages.append(_numbers(html))
    assert [n for page in pages for n in page] == expected
    assert {"null", "2024"} <= cursors  # pages continued from a contract without 締結日時 and from one with
    for index in range(len(pages) - 1, 0, -1):  # 前へ back to the first page
        html = client.get(unescape(PREV_RE.search(html).group(1))).get_data(as_text=True)
        assert _numbers(html) == pages[index - 1]
    with app.test_request_context():  # a bookmarked page number (OFFSET) shows the same rows
        for number, page in enumerate(pages, start=1):
            criteria = parse_criteria({"per_page": "4", "sort": "completed", "order": order, "page": str(number)},
                                      default_statuses=SCREEN_STATUSES)
            assert [c.number for c in search_contracts(session, criteria, actor=actor).items] == page


def test_the_export_lists_the_unconcluded_where_the_screen_does(app: Flask, session: Session, world: World) -> None:
    _with_unconcluded(session, world)
    for order in ("asc", "desc"):
        with app.test_request_context():
            criteria = parse_criteria({"sort": "completed", "order": order, "per_page": "100"},
                                      default_statuses=SCREEN_STATUSES)
            shown = [c.id for c in search_contracts(session, criteria, actor=world.auditor).items]
            exported = [row.contract_id for row in service.export_rows(session, criteria, actor=world.auditor)]
        assert exported == shown
        assert shown[0 if order == "desc" else -1] in {c.id for c in session.scalars(
            select(Contract).where(Contract.completed_at.is_(None)))}


@pytest.mark.parametrize("sort", ["date", "completed", "counterparty"])
def test_an_amount_range_pages_by_keyset_like_offset_pages(app: Flask, client: FlaskClient, session: Session,
                                                           world: World, sort: str) -> None:
    _with_unconcluded(session, world)
    login_as(client, world.staff_a)
    query = {"per_page": "4", "sort": sort, "amount_min": "1001", "amount_max": "1003"}
    with app.test_request_context():
        expected = [c.number for c in search_contracts(
            session, parse_criteria({**query, "per_page": "100"}, default_statuses=SCREEN_STATUSES),
            actor=world.staff_a).items]
    html = client.get("/search/?" + "&".join(f"{k}={v}" for k, v in query.items())).get_data(as_text=True)
    seen = _numbers(html)
    while found := NEXT_RE.search(html):
        html = client.get(unescape(found.group(1))).get_data(as_text=True)
        seen += _numbers(html)
    assert len(expected) > 8
    assert seen == expected


def test_a_name_holding_the_separator_of_the_names_parameter_is_found(app: Flask, session: Session,
                                                                       world: World) -> None:
    make_contract(session, number="T-0002", department=world.department_a, created_by=world.staff_a,
                  transaction_date=date(2024, 5, 1), amount=1, tax_amount=0, counterparty_name="株式会社区切")
    make_contract(session, number="T-0003", department=world.department_a, created_by=world.staff_a,
                  transaction_date=date(2024, 5, 2), amount=1, tax_amount=0, counterparty_name="株式会社区切")
    session.execute(update(Contract).where(Contract.number == "T-0003")  # written past normalize_name
                    .values(counterparty_name_normalized="株式会社区\x1f切"))
    session.commit()
    with app.test_request_context():
        page = search_contracts(session, parse_criteria({"counterparty": "区"}), actor=world.staff_a)
    assert sorted(c.number for c in page.items) == ["T-0002", "T-0003"]
