"""The to-do lists per role: each count right, other departments' contracts not counted, auditors and
anonymous visitors given nothing to do; the menu shows the counts with words a screen reader reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal import clock
from portal.auth.models import Department, Role, StaffUser
from portal.contracts.models import Contract, ContractStatus, PartyRole, PartyStatus, RequestStatus, SignatureRequest
from portal.home import service
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.usage_requests.models import UsageRequestStatus
from tests.factories import login_as, make_contract, make_department, make_staff
from tests.usage_requests.conftest import make_usage_request


def today() -> Any:
    return clock.now().astimezone(clock.JST).date()


@dataclass
class Office:
    department: Department
    staff: StaffUser
    approver: StaffUser
    second_approver: StaffUser


def office(session: Session, code: str) -> Office:
    department = make_department(session, code=code, name=f"{code} 課")
    lower = code.lower()
    return Office(department,
                  make_staff(session, role=Role.STAFF, email=f"staff.{lower}@pref.example.jp", department=department),
                  make_staff(session, role=Role.APPROVER, email=f"approver.{lower}@pref.example.jp",
                             name="承認 太郎", department=department),
                  make_staff(session, role=Role.APPROVER, email=f"approver2.{lower}@pref.example.jp",
                             name="承認 次郎", department=department))


def contract_in(session: Session, where: Office, status: ContractStatus, *, days: int = 14,
                created_by: StaffUser | None = None, agency: StaffUser | None = None, name: str = "業務",
                locked: bool = False, failed_attempts: int | None = None) -> Contract:
    """A contract of `where` put straight into `status` (the lifecycle is tested elsewhere)."""
    contract = make_contract(session, staff=created_by or where.staff, approver=agency or where.approver,
                             business_name=name, signer_email=f"yamada{secrets_suffix(session)}@keiyaku-shoji.co.jp")
    contract.department = where.department  # the creator may be an approver of the department
    contract.status = status
    contract.planned_conclusion_date = today() + timedelta(days=days)
    counterparty, agency_party = sorted(contract.parties, key=lambda p: p.role is PartyRole.AGENCY)
    if status is ContractStatus.AWAITING_COUNTERPARTY:
        counterparty.status = PartyStatus.REQUESTED
        request = SignatureRequest(party=counterparty, token_hash=f"{contract.id:064d}", status=RequestStatus.OPEN,
                                   created_at=clock.now(), expires_at=clock.now() + timedelta(days=days + 1),
                                   failed_code_attempts=(5 if locked else 0) if failed_attempts is None
                                   else failed_attempts)
        session.add(request)
        if locked or failed_attempts is not None:
            contract.access_code_hash = "argon2-hash"
    if status is ContractStatus.AWAITING_AGENCY:
        counterparty.status = PartyStatus.SIGNED
        agency_party.status = PartyStatus.REQUESTED
    session.commit()
    return contract


def secrets_suffix(session: Session) -> int:
    return session.query(Contract).count()


@pytest.fixture
def offices(session: Session) -> tuple[Office, Office]:
    mine, other = office(session, "KEI"), office(session, "OTH")
    for where in (mine, other):
        contract_in(session, where, ContractStatus.AWAITING_APPROVAL, name="決裁待ちの業務")
        contract_in(session, where, ContractStatus.AWAITING_APPROVAL, created_by=where.second_approver,
                    name="第二承認者が作った業務")
        contract_in(session, where, ContractStatus.APPROVED, name="送信待ちの業務")
        contract_in(session, where, ContractStatus.AWAITING_COUNTERPARTY, days=2, name="相手方待ちの業務")
        contract_in(session, where, ContractStatus.AWAITING_COUNTERPARTY, days=30, locked=True,
                    name="ロックされた業務")
        contract_in(session, where, ContractStatus.AWAITING_AGENCY, name="庁内署名待ちの業務")
        contract_in(session, where, ContractStatus.COMPLETED, days=1, name="締結済みの業務")
        contract_in(session, where, ContractStatus.DRAFT, days=-1, name="期限切れの下書き")
        make_usage_request(session, where.department)
        make_usage_request(session, where.department, status=UsageRequestStatus.AWAITING_EMAIL)
        make_usage_request(session, where.department, status=UsageRequestStatus.ACCEPTED)
    now = clock.now()
    session.add(OutboxMessage(template="planted", recipient="x@keiyaku-shoji.co.jp", subject="届かなかった通知",
                              body="本文\n", status=OutboxStatus.FAILED, created_at=now, next_attempt_at=now))
    session.add(OutboxMessage(template="planted", recipient="y@keiyaku-shoji.co.jp", subject="届いた通知",
                              body="本文\n", status=OutboxStatus.SENT, created_at=now, next_attempt_at=now))
    session.commit()
    return mine, other


def counts_of(app: Flask, session: Session, user: StaffUser) -> dict[str, int]:
    with app.app_context():
        return service.counts(session, user, today=today())


def test_a_clerk_sees_the_departments_contracts_to_send_and_to_watch(app, session, offices):
    mine, _ = offices
    assert counts_of(app, session, mine.staff) == {
        "ready_to_send": 1, "awaiting_vendor": 2, "locked_links": 1, "usage_requests": 1,
        # 相手方待ち in 2 days and the overdue draft; 締結済み tomorrow is done, not due
        "due_soon": 2,
    }


def test_an_approver_sees_what_waits_for_their_decision_and_signature(app, session, offices):
    mine, _ = offices
    counts = counts_of(app, session, mine.approver)
    assert counts["approval"] == 2  # both 承認待ち: neither was prepared by this approver
    assert counts["signature"] == 1
    # Four eyes: the approver who created a contract is not asked for its 決裁.
    assert counts_of(app, session, mine.second_approver)["approval"] == 1
    assert counts_of(app, session, mine.second_approver)["signature"] == 0  # the party is the other approver


def test_a_signature_waits_for_its_signer_across_departments(app, session, offices):
    mine, other = offices
    contract_in(session, other, ContractStatus.AWAITING_AGENCY, agency=mine.second_approver, name="他課の業務")
    counts = counts_of(app, session, mine.second_approver)
    assert counts["signature"] == 1
    assert counts["approval"] == 1  # the other department's 決裁 is not theirs to confirm
    with app.app_context():
        lists = {t.key: t for t in service.todo_lists(session, mine.second_approver, today=today())}
    [row] = lists["signature"].rows
    assert row.title == "他課の業務"
    assert row.endpoint == "signature_requests.staff_review"


def test_an_auditor_has_nothing_to_do_and_an_admin_sees_failed_mails(app, session, offices):
    mine, _ = offices
    auditor = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp", department=mine.department)
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp", department=make_department(
        session, code="ADM", name="情報政策課"))
    assert counts_of(app, session, auditor) == {}
    counts = counts_of(app, session, admin)
    assert counts["failed_mail"] == 1
    # An administrator may see every department: both offices' contracts, their own has none to decide.
    assert counts["ready_to_send"] == 2
    assert counts["usage_requests"] == 2
    assert counts["approval"] == 0


def test_rows_carry_links_days_left_and_red_when_three_days_or_fewer(app, session, offices):
    mine, _ = offices
    with app.app_context():
        lists = {t.key: t for t in service.todo_lists(session, mine.staff, today=today())}
    vendor = lists["awaiting_vendor"]
    assert [(r.title, r.days_left, r.is_urgent) for r in vendor.rows] == [
        ("相手方待ちの業務", 2, True), ("ロックされた業務", 30, False)]
    assert vendor.full_list == ("contracts.index", {"status": "awaiting_counterparty"})
    due = lists["due_soon"]
    assert [(r.title, r.days_left) for r in due.rows] == [("期限切れの下書き", -1), ("相手方待ちの業務", 2)]
    assert due.full_list is None  # no filter for it: the section lists every row
    assert [r.title for r in lists["locked_links"].rows] == ["ロックされた業務"]


def test_a_link_one_wrong_code_short_of_the_limit_is_not_locked(app, session, offices):
    mine, _ = offices
    contract_in(session, mine, ContractStatus.AWAITING_COUNTERPARTY, failed_attempts=4, name="あと1回の業務")
    assert counts_of(app, session, mine.staff)["locked_links"] == 1
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 4
    assert counts_of(app, session, mine.staff)["locked_links"] == 2


def test_counts_take_one_query_and_the_lists_one_more_each(app, session, offices):
    mine, _ = offices
    statements: list[str] = []
    engine = app.extensions["portal.engine"]

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        counts_of(app, session, mine.approver)
        assert len(statements) == 1
        statements.clear()
        with app.app_context():
            lists = service.todo_lists(session, mine.approver, today=today())
        assert len(statements) <= 1 + len(lists)
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_home_page_and_menu_show_the_counts_in_words(client, session, offices):
    mine, _ = offices
    login_as(client, mine.approver)
    html = client.get("/").get_data(as_text=True)
    assert "決裁の確認を待っている契約" in html
    assert '<span class="visually-hidden">決裁待ち 2件</span><span aria-hidden="true">2</span>' in html
    assert "他課" not in html
    assert "OTH-" not in html  # no contract number of the other department
    assert "締結予定日まであと2日" in html
    assert 'href="/contracts/?status=awaiting_approval"' in html
    # Every staff page carries the menu counts.
    html = client.get("/contracts/").get_data(as_text=True)
    assert '<span class="visually-hidden">署名待ち 1件</span>' in html


def test_htmx_refresh_returns_the_lists_and_the_menu_counts_out_of_band(client, session, offices):
    mine, _ = offices
    login_as(client, mine.staff)
    response = client.get("/", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "HX-Request" in response.headers["Vary"]
    assert html.lstrip().startswith('<div id="todo"')
    assert 'id="nav-badges-contracts-index" hx-swap-oob="true"' in html
    # The back button after htmx's cache was evicted gets the whole page.
    restore = client.get("/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_the_auditor_and_the_anonymous_visitor_see_no_counts(client, session, offices):
    mine, _ = offices
    assert "決裁待ち" not in client.get("/").get_data(as_text=True)
    auditor = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp", department=mine.department)
    login_as(client, auditor)
    html = client.get("/").get_data(as_text=True)
    assert "対応が必要な項目はありません" in html
    assert 'class="badge"' not in html
