"""契約番号: per department and 年度, from a counter row updated atomically (never max + 1).

CONTRACT_NUMBER_FORMAT shapes it; the default "{department}-{era}{era_year}-{serial:04d}" gives
DORO-R8-0001 for the first contract of 土木部 (code DORO) in 令和8年度. Placeholders: department
(the department's code), fiscal_year (2026), era (R, H), era_name (令和), era_year (8), serial.

The counter row is incremented by one UPDATE in the caller's transaction: on PostgreSQL the row
stays locked until that transaction ends, on SQLite the UPDATE takes the database write lock, so
two drafts created at the same moment get consecutive numbers and neither fails. A number that is
already taken (imported contracts, an older format) is skipped.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.auth.models import Department
from portal.clock import JST
from portal.contracts.models import Contract, ContractNumberCounter
from portal.formatting import ERAS

DEFAULT_FORMAT = "{department}-{era}{era_year}-{serial:04d}"
ERA_INITIALS = {"令和": "R", "平成": "H", "昭和": "S"}


class NumberFormatError(ValueError):
    """CONTRACT_NUMBER_FORMAT cannot be used (unknown placeholder, or it would not tell serials apart)."""


def fiscal_year(day: date) -> int:
    """年度: April to March, named by the year it starts in."""
    return day.year if day.month >= 4 else day.year - 1


def format_number(fmt: str, *, department_code: str, year: int, serial: int) -> str:
    start = date(year, 4, 1)
    era_start, era_name = next(((s, n) for s, n in ERAS if start >= s), (date(year, 1, 1), ""))
    try:
        number = fmt.format(department=department_code, fiscal_year=year, era=ERA_INITIALS.get(era_name, ""),
                            era_name=era_name, era_year=year - era_start.year + 1, serial=serial)
    except (KeyError, IndexError, ValueError) as exc:
        raise NumberFormatError(f"CONTRACT_NUMBER_FORMAT「{fmt}」を使えません: {exc}") from None
    if len(number) > 40:
        raise NumberFormatError(f"CONTRACT_NUMBER_FORMAT「{fmt}」の番号が40文字を超えます。")
    return number


def check_format(fmt: str) -> None:
    """Refuse a format that gives the same number to two serials (no {serial}) at start-up."""
    first = format_number(fmt, department_code="X", year=2026, serial=1)
    if first == format_number(fmt, department_code="X", year=2026, serial=2):
        raise NumberFormatError(f"CONTRACT_NUMBER_FORMAT「{fmt}」に {{serial}} がありません。")


def next_number(session: Session, department: Department, *, now: datetime, fmt: str = DEFAULT_FORMAT) -> str:
    """Reserve the next 契約番号 of `department` in the 年度 of `now` (JST), in the caller's transaction."""
    year = fiscal_year(now.astimezone(JST).date())
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(ContractNumberCounter)
                    .values(department_id=department.id, fiscal_year=year, last_serial=0)
                    .on_conflict_do_nothing(index_elements=["department_id", "fiscal_year"]))
    while True:
        serial = session.execute(
            update(ContractNumberCounter)
            .where(ContractNumberCounter.department_id == department.id, ContractNumberCounter.fiscal_year == year)
            .values(last_serial=ContractNumberCounter.last_serial + 1)
            .returning(ContractNumberCounter.last_serial)
        ).scalar_one()
        number = format_number(fmt, department_code=department.code, year=year, serial=serial)
        if not session.scalar(select(exists().where(Contract.number == number))):
            return number
