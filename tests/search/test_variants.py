"""異体字, dash and 年度 search on both databases: the stored name and the query fold the same way,
through the substring index (FTS5 trigram on SQLite, pg_trgm on PostgreSQL) and the LIKE fallback."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from portal.auth.models import Role
from portal.search.criteria import InvalidCriteria, parse_criteria
from portal.search.service import search_contracts
from tests.factories import make_department, make_staff
from tests.search.factories import make_contract

CONTRACTS = [
    ("V-1", date(2026, 4, 1), "髙橋建設株式会社"),
    ("V-2", date(2027, 3, 31), "ケーエス産業株式会社"),
    ("V-3", date(2026, 3, 31), "山﨑・渡邉設備工業"),
    ("V-4", date(2027, 4, 1), "籐家具の店"),
    ("V-5", date(2025, 4, 1), "𠮷田印刷"),
]


@pytest.fixture
def auditor(session: Session):
    department = make_department(session, code="V", name="検索課")
    staff = make_staff(session, email="v@pref.example.jp", department=department)
    for number, day, name in CONTRACTS:
        make_contract(session, number=number, department=department, created_by=staff, transaction_date=day,
                      amount=1_100_000, tax_amount=100_000, counterparty_name=name)
    return make_staff(session, email="va@pref.example.jp", role=Role.AUDITOR, department=department)


def _numbers(app: Flask, session: Session, actor, **query: str) -> set[str]:
    with app.app_context():
        page = search_contracts(session, parse_criteria(MultiDict(query), per_page=100), actor=actor)
    return {c.number for c in page.items}


@pytest.mark.parametrize(("typed", "expected"), [
    ("高橋", {"V-1"}),  # two characters: LIKE
    ("高橋建設", {"V-1"}),  # three or more: the trigram index
    ("髙橋建設", {"V-1"}),
    ("ｹｰｴｽ", {"V-2"}), ("ケ－エス産業", {"V-2"}), ("ケ‐エス", {"V-2"}), ("けーえす", {"V-2"}), ("ケ—エス産業", {"V-2"}),
    ("山崎・渡辺", {"V-3"}), ("渡邊設備", {"V-3"}), ("崎", {"V-3"}),
    ("吉田印刷", {"V-5"}), ("𠮷田", {"V-5"}),
    ("藤家具", set()),  # 籐 is not a 藤
])
def test_a_variant_finds_the_stored_name(app: Flask, session: Session, auditor, typed: str,
                                         expected: set[str]) -> None:
    assert _numbers(app, session, auditor, counterparty=typed) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ({"date_from": "令和8年度", "date_to": "令和8年度"}, {"V-1", "V-2"}),
    ({"date_from": "R8年度", "date_to": "R8年度"}, {"V-1", "V-2"}),
    ({"date_from": "2026年度", "date_to": "2026年度"}, {"V-1", "V-2"}),
    ({"date_from": "令和7年度", "date_to": "令和8年度"}, {"V-1", "V-2", "V-3", "V-5"}),
    ({"date_from": "令和八年四月一日", "date_to": "令和九年三月三十一日"}, {"V-1", "V-2"}),
    ({"date_from": "令和9年度"}, {"V-4"}),
    ({"date_to": "令和7年度"}, {"V-3", "V-5"}),
    ({"date_from": "令和8年度", "date_to": "令和8年度", "counterparty": "高橋"}, {"V-1"}),
])
def test_fiscal_years_and_kanji_dates(app: Flask, session: Session, auditor, query: dict[str, str],
                                      expected: set[str]) -> None:
    assert _numbers(app, session, auditor, **query) == expected


@pytest.mark.parametrize("hostile", ["令和8年度\x00", "<b>令和8年度</b>", "=令和8年度", "令和" + "八" * 150 + "年度"])
def test_hostile_dates_are_refused_with_a_message(hostile: str) -> None:
    with pytest.raises(InvalidCriteria) as caught:
        parse_criteria(MultiDict({"date_from": hostile}))
    assert "date_from" in caught.value.errors
