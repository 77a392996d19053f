"""The 電帳法 search requirement as a table: query → the contract numbers it must return (R21-R23, R28).

Each field alone, ranges at both boundaries (inclusive), combinations, every normalisation
variant of 取引先, the 平成/令和 boundary, tax-inclusive and tax-exclusive amounts. These tests only read:
the contracts are built once for the module (`fixed_contracts`).
"""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from portal.search.criteria import InvalidCriteria, parse_criteria
from portal.search.service import search_contracts
from tests.search.conftest import FixedContracts

ALL = {"A-2019-0001", "A-2019-0002", "A-2025-0001", "A-2025-0002", "A-2026-0001", "A-2026-0002", "B-2025-0001"}

MATRIX = [
    # 取引年月日 alone, both boundaries inclusive
    ({"date_from": "2025-08-01", "date_to": "2025-08-31"}, {"A-2025-0001", "A-2025-0002", "B-2025-0001"}),
    ({"date_from": "2025/8/2", "date_to": "2025/8/30"}, {"B-2025-0001"}),
    ({"date_from": "2025-08-31"}, {"A-2025-0002", "A-2026-0001", "A-2026-0002"}),
    ({"date_to": "2019-05-01"}, {"A-2019-0001", "A-2019-0002"}),
    ({"date_from": "令和7年8月1日", "date_to": "令和7年8月31日"}, {"A-2025-0001", "A-2025-0002", "B-2025-0001"}),
    ({"date_from": "R7.8.1", "date_to": "R7.8.1"}, {"A-2025-0001"}),
    ({"date_from": "令和7年8月", "date_to": "令和7年8月"}, {"A-2025-0001", "A-2025-0002", "B-2025-0001"}),
    ({"date_from": "２０２６年３月３１日"}, {"A-2026-0001"}),
    # the era boundary: 2019-04-30 is 平成31年4月30日, 2019-05-01 is 令和元年5月1日
    ({"date_from": "平成31年4月30日", "date_to": "平成31年4月30日"}, {"A-2019-0001"}),
    ({"date_from": "H31.4.30", "date_to": "H31.4.30"}, {"A-2019-0001"}),
    ({"date_from": "令和元年5月1日", "date_to": "令和元年5月1日"}, {"A-2019-0002"}),
    ({"date_from": "R1.5.1", "date_to": "2019/5/1"}, {"A-2019-0002"}),
    ({"date_from": "令和元年", "date_to": "令和元年"}, {"A-2019-0002"}),
    ({"date_to": "平成31年4月30日"}, {"A-2019-0001"}),
    ({"date_from": "令和元年5月1日"}, ALL - {"A-2019-0001"}),
    # 金額 alone, tax-inclusive (default)
    ({"amount_min": "1100000", "amount_max": "3300000"}, {"A-2019-0001", "A-2025-0001", "B-2025-0001"}),
    ({"amount_min": "1100001", "amount_max": "3299999"}, {"B-2025-0001"}),
    ({"amount_min": "1,000,000", "amount_max": "1,000,000"}, {"A-2025-0002"}),
    ({"amount_max": "５５万"}, {"A-2019-0002"}),
    ({"amount_min": "1000万円"}, {"A-2026-0001"}),
    # tax-exclusive: 税込 - 税額
    ({"amount_min": "1,000,000", "amount_max": "1,000,000", "amount_basis": "excl"}, {"A-2019-0001", "A-2025-0002"}),
    ({"amount_min": "3000000", "amount_max": "3000000", "amount_basis": "excl"}, {"A-2025-0001"}),
    ({"amount_min": "3300000", "amount_max": "3300000", "amount_basis": "excl"}, set()),
    ({"amount_min": "9090910", "amount_max": "9090910", "amount_basis": "excl"}, {"A-2026-0001"}),
    # 取引先 alone: every normalisation variant
    ({"counterparty": "株式会社ケイヤク商事"}, {"A-2019-0001", "A-2019-0002", "B-2025-0001"}),
    ({"counterparty": "(株)ケイヤク商事"}, {"A-2019-0001", "A-2019-0002", "B-2025-0001"}),
    ({"counterparty": "（株）ケイヤク商事"}, {"A-2019-0001", "A-2019-0002", "B-2025-0001"}),
    ({"counterparty": "㈱ケイヤク商事"}, {"A-2019-0001", "A-2019-0002", "B-2025-0001"}),
    ({"counterparty": "㈱ｹｲﾔｸ商事"}, {"A-2019-0001", "A-2019-0002", "B-2025-0001"}),
    ({"counterparty": "けいやく"}, {"A-2019-0001", "A-2019-0002", "B-2025-0001"}),
    ({"counterparty": "ケイヤク　商事"}, {"A-2019-0001", "A-2019-0002", "B-2025-0001"}),
    ({"counterparty": "有限会社岡山ビル"}, {"A-2025-0001"}),
    ({"counterparty": "(有)岡山ビルサービス"}, {"A-2025-0001"}),
    ({"counterparty": "㈲岡山ビルサービス"}, {"A-2025-0001"}),
    ({"counterparty": "オカヤマテクノ"}, {"A-2025-0002"}),
    ({"counterparty": "ｵｶﾔﾏﾃｸﾉ"}, {"A-2025-0002"}),
    ({"counterparty": "おかやま てくの"}, {"A-2025-0002"}),
    ({"counterparty": "岡山"}, {"A-2025-0001"}),
    ({"counterparty": "有限会社マニワ"}, {"A-2026-0001"}),
    ({"counterparty": "まにわ建設"}, {"A-2026-0001"}),
    ({"counterparty": "100%"}, set()),
    # other fields
    ({"business_name": "点検"}, {"A-2026-0001"}),
    ({"business_name": "庁舎"}, {"A-2019-0001", "A-2019-0002"}),
    ({"number": "A-2025"}, {"A-2025-0001", "A-2025-0002"}),
    ({"number": "b-2025-0001"}, {"B-2025-0001"}),
    ({"status": "draft"}, {"A-2026-0002"}),
    ({"status": "completed", "date_from": "2026-01-01"}, {"A-2026-0001"}),
    # combinations of two and three fields
    ({"date_from": "2025-08-01", "date_to": "2025-08-31", "counterparty": "ケイヤク"}, {"B-2025-0001"}),
    ({"date_from": "R7.8.1", "date_to": "R7.8.31", "amount_max": "1,000,000"}, {"A-2025-0002"}),
    ({"amount_min": "500000", "amount_max": "1100000", "counterparty": "㈱ケイヤク"}, {"A-2019-0001", "A-2019-0002"}),
    ({"date_from": "2019-04-30", "date_to": "2019-05-01", "amount_min": "1000000", "amount_max": "2000000",
      "counterparty": "けいやく"}, {"A-2019-0001"}),
    ({"date_from": "令和7年", "date_to": "令和7年", "amount_min": "1000000", "amount_max": "1000000",
      "amount_basis": "excl"}, {"A-2025-0002"}),
    ({"date_from": "令和7年", "date_to": "令和7年", "amount_min": "1000000", "amount_max": "1000000",
      "amount_basis": "excl", "counterparty": "ケイヤク"}, set()),
    ({}, ALL),
]


@pytest.mark.parametrize(("query", "expected"), MATRIX, ids=[str(q) for q, _ in MATRIX])
def test_query_returns_exactly_these_contracts(fixed_contracts: FixedContracts, query: dict[str, str],
                                               expected: set[str]) -> None:
    app, session, world = fixed_contracts.app, fixed_contracts.session, fixed_contracts.world
    with app.app_context():
        page = search_contracts(session, parse_criteria(MultiDict(query), per_page=100), actor=world.auditor)

    assert {c.number for c in page.items} == expected
    assert page.total == len(expected)


@pytest.mark.parametrize(("actor", "expected"), [
    ("staff_a", {"A-2019-0001", "A-2019-0002"}),
    ("staff_b", {"B-2025-0001"}),
    ("auditor", {"A-2019-0001", "A-2019-0002", "B-2025-0001"}),
    ("admin", {"A-2019-0001", "A-2019-0002", "B-2025-0001"}),
])
def test_staff_see_only_their_department(fixed_contracts: FixedContracts, actor: str, expected: set[str]) -> None:
    app, session, world = fixed_contracts.app, fixed_contracts.session, fixed_contracts.world
    criteria = parse_criteria(MultiDict({"counterparty": "ケイヤク"}))
    with app.app_context():
        page = search_contracts(session, criteria, actor=getattr(world, actor))

    assert {c.number for c in page.items} == expected


@pytest.mark.parametrize(("sort", "order", "first"), [
    ("date", "desc", "A-2026-0001"), ("date", "asc", "A-2019-0001"), ("amount", "desc", "A-2026-0001"),
    ("amount", "asc", "A-2019-0002"), ("number", "asc", "A-2019-0001"), ("number", "desc", "B-2025-0001"),
])
def test_sorted_and_paginated(fixed_contracts: FixedContracts, sort: str, order: str, first: str) -> None:
    app, session, world = fixed_contracts.app, fixed_contracts.session, fixed_contracts.world
    criteria = parse_criteria(MultiDict({"sort": sort, "order": order, "per_page": "3"}))
    with app.app_context():
        page = search_contracts(session, criteria, actor=world.auditor)
        last = search_contracts(session, criteria.with_page(99), actor=world.auditor)

    assert page.items[0].number == first
    assert (page.total, page.pages, len(page.items)) == (7, 3, 3)
    assert (last.page, len(last.items)) == (3, 1)


@pytest.mark.parametrize(("query", "key", "message"), [
    ({"date_from": "平成31年5月1日"}, "date_from", "平成の期間"),
    ({"date_from": "令和元年4月30日"}, "date_from", "令和の期間"),
    ({"date_to": "2025/2/30"}, "date_to", "という日付はありません"),
    ({"date_from": "きのう"}, "date_from", "日付として読み取れません"),
    ({"date_from": "2025-09-01", "date_to": "2025-08-01"}, "date_to", "より前"),
    ({"amount_min": "百万"}, "amount_min", "円単位の数字"),
    ({"amount_min": "200", "amount_max": "100"}, "amount_max", "上限が下限より小さく"),
    ({"status": "signed"}, "status", "signed"),
])
def test_unreadable_filters_are_named(query: dict[str, str], key: str, message: str) -> None:
    with pytest.raises(InvalidCriteria) as raised:
        parse_criteria(MultiDict(query))

    assert message in raised.value.errors[key]
