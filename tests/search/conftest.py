"""A fixed set of contracts across the era boundary, amounts and counterparty spellings.

`world` builds them for one test (use it when the test writes anything, a login included);
`fixed_contracts` builds them once per module for tests that only read, and fails a test whose
writes would otherwise leak into the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import create_app
from portal.audit.models import AuditEvent
from portal.auth.models import Department, Role, StaffUser
from portal.contracts.models import Contract, ContractStatus
from tests.conftest import empty_tables, test_config
from tests.factories import make_department, make_staff
from tests.search.factories import make_contract


@dataclass
class World:
    department_a: Department
    department_b: Department
    staff_a: StaffUser
    staff_b: StaffUser
    auditor: StaffUser
    admin: StaffUser


# number, department, 取引年月日, 税込, 税額, 取引先 (as written), 業務名, status
CONTRACTS = [
    ("A-2019-0001", "A", date(2019, 4, 30), 1_100_000, 100_000, "株式会社ケイヤク商事", "庁舎清掃業務", "completed"),
    ("A-2019-0002", "A", date(2019, 5, 1), 550_000, 50_000, "(株)けいやく商事", "庁舎警備業務", "completed"),
    ("A-2025-0001", "A", date(2025, 8, 1), 3_300_000, 300_000, "有限会社 岡山ビルサービス", "電算システム保守",
     "completed"),
    ("A-2025-0002", "A", date(2025, 8, 31), 1_000_000, 0, "ｵｶﾔﾏ ﾃｸﾉ株式会社", "道路補修工事", "completed"),
    ("A-2026-0001", "A", date(2026, 3, 31), 10_000_000, 909_090, "㈲まにわ建設", "橋梁点検業務委託", "completed"),
    ("A-2026-0002", "A", date(2026, 1, 10), 880_000, 80_000, "株式会社サンプル", "備品購入", "draft"),
    ("B-2025-0001", "B", date(2025, 8, 15), 2_200_000, 200_000, "株式会社ケイヤク商事", "公園管理業務", "completed"),
]


@pytest.fixture
def world(session: Session) -> World:
    return build_world(session)


def build_world(session: Session) -> World:
    department_a = make_department(session, code="A", name="総務部 契約課")
    department_b = make_department(session, code="B", name="土木部 道路課")
    world = World(
        department_a=department_a,
        department_b=department_b,
        staff_a=make_staff(session, email="a@pref.example.jp", department=department_a),
        staff_b=make_staff(session, email="b@pref.example.jp", department=department_b),
        auditor=make_staff(session, email="audit@pref.example.jp", role=Role.AUDITOR, department=department_a),
        admin=make_staff(session, email="admin@pref.example.jp", role=Role.ADMIN, department=department_a),
    )
    departments = {"A": department_a, "B": department_b}
    for number, dept, day, amount, tax, counterparty, business, status in CONTRACTS:
        make_contract(session, number=number, department=departments[dept], created_by=world.staff_a,
                      transaction_date=day, amount=amount, tax_amount=tax, counterparty_name=counterparty,
                      business_name=business, status=ContractStatus(status))
    return world


@dataclass
class FixedContracts:
    """The app, a session on it and the World of CONTRACTS, shared by the tests of one module."""

    app: Flask
    session: Session
    world: World


@pytest.fixture(scope="module")
def _fixed_contracts_of_module(database_url: str, tmp_path_factory: pytest.TempPathFactory,
                               ) -> Iterator[FixedContracts]:
    app = create_app(test_config(database_url, Path(tmp_path_factory.mktemp("search")) / "instance"))
    engine = app.extensions["portal.engine"]
    try:
        with app.extensions["portal.session_factory"]() as session:
            session.info["app"] = app
            yield FixedContracts(app=app, session=session, world=build_world(session))
    finally:
        empty_tables(engine)
        engine.dispose()


@pytest.fixture
def fixed_contracts(_fixed_contracts_of_module: FixedContracts) -> Iterator[FixedContracts]:
    """CONTRACTS built once per module; for tests that only read (a test that writes uses `world`)."""
    fixed = _fixed_contracts_of_module
    before = _row_counts(fixed.session)
    yield fixed
    fixed.session.rollback()
    assert _row_counts(fixed.session) == before, "a test on fixed_contracts wrote to the database: use `world`"


def _row_counts(session: Session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(Contract)) or 0,
            session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
