"""契約番号 per department and 年度, unique under concurrency, format a setting."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest

from portal.clock import JST
from portal.contracts.numbering import NumberFormatError, check_format, fiscal_year, format_number, next_number
from tests.factories import make_department

APRIL_2026 = datetime(2026, 4, 1, 9, 0, tzinfo=JST)


def test_fiscal_year_runs_from_april_to_march():
    assert fiscal_year(date(2026, 3, 31)) == 2025
    assert fiscal_year(date(2026, 4, 1)) == 2026


def test_default_format_is_department_era_year_serial():
    assert format_number("{department}-{era}{era_year}-{serial:04d}", department_code="DORO", year=2026,
                         serial=1) == "DORO-R8-0001"
    # 平成31年度 began on 2019-04-01, before 令和 (2019-05-01): the 年度 keeps its starting era.
    assert format_number("{era_name}{era_year}年度第{serial}号", department_code="X", year=2019, serial=3) == \
        "平成31年度第3号"


@pytest.mark.parametrize("fmt", ["{department}-{year}", "{department}", "{serial:Z}", "{department}-" + "x" * 40 +
                                 "{serial}"])
def test_a_broken_format_is_refused_at_start(fmt):
    with pytest.raises(NumberFormatError):
        check_format(fmt)


def test_numbers_count_per_department_and_fiscal_year(app, session):
    doro = make_department(session, code="DORO", name="土木部 道路課")
    kei = make_department(session, code="KEI", name="総務部 契約課")
    session.commit()
    march = datetime(2026, 3, 31, 14, 59, tzinfo=UTC)  # 23:59 JST: still 令和7年度
    assert next_number(session, doro, now=march) == "DORO-R7-0001"
    assert next_number(session, doro, now=APRIL_2026) == "DORO-R8-0001"
    assert next_number(session, doro, now=APRIL_2026) == "DORO-R8-0002"
    assert next_number(session, kei, now=APRIL_2026) == "KEI-R8-0001"
    session.rollback()
    assert next_number(session, doro, now=APRIL_2026) == "DORO-R8-0001"  # nothing reserved by a rolled-back draft


def test_two_concurrent_reservations_in_one_department_get_distinct_numbers(app, session):
    department = make_department(session, code="DORO", name="土木部 道路課")
    session.commit()
    factory = app.extensions["portal.session_factory"]
    barrier = threading.Barrier(8)
    numbers: list[str] = []
    errors: list[BaseException] = []

    def reserve() -> None:
        try:
            with factory() as own:
                barrier.wait()
                own.get(type(department), department.id)  # read first, as a request does, then write
                numbers.append(next_number(own, department, now=APRIL_2026))
                own.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(numbers) == [f"DORO-R8-{n:04d}" for n in range(1, 9)]


def test_a_number_already_taken_is_skipped(app, session):
    from tests.factories import make_staff
    from tests.search.factories import make_contract

    department = make_department(session, code="DORO", name="土木部 道路課")
    staff = make_staff(session, email="doro@pref.example.jp", department=department)
    session.info["app"] = app
    make_contract(session, number="DORO-R8-0001", department=department, created_by=staff,
                  transaction_date=date(2026, 4, 1), amount=1, tax_amount=0)
    session.commit()
    assert next_number(session, department, now=APRIL_2026) == "DORO-R8-0002"
