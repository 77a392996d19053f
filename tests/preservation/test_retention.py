"""R26: retention counted from the next fiscal year; deletion only after it, by an admin, with a reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.models import AuditEvent
from portal.clock import JST
from portal.contracts.models import Contract, DocumentRevision
from portal.preservation import retention, service
from portal.preservation.models import Tombstone
from tests.conftest import post_form, reread
from tests.factories import login_as
from tests.search.conftest import World


def _contract(session: Session, number: str) -> Contract:
    contract = session.scalar(select(Contract).where(Contract.number == number))
    assert contract is not None
    return contract


@pytest.mark.parametrize(("completed", "ends"), [
    (date(2025, 8, 1), date(2036, 3, 31)),
    (date(2026, 3, 31), date(2036, 3, 31)),
    (date(2026, 4, 1), date(2037, 3, 31)),
])
def test_ten_years_from_the_next_fiscal_year(app: Flask, session: Session, world: World, completed: date,
                                            ends: date) -> None:
    contract = _contract(session, "A-2025-0001")
    contract.completed_at = datetime.combine(completed, time(0, 30), JST)
    with app.app_context():
        assert service.retention_ends(session, contract) == ends


def test_department_policy_applies_and_may_not_go_below_seven_years(app: Flask, session: Session,
                                                                    world: World) -> None:
    contract = _contract(session, "A-2025-0001")
    with app.app_context():
        with pytest.raises(retention.InvalidRetention, match="7年以上"):
            service.set_retention_policy(session, department=world.department_a, contract_type="", years=6, note="",
                                         actor=world.admin, now=clock.now())
        with pytest.raises(retention.RetentionRefused):
            service.set_retention_policy(session, department=None, contract_type="", years=12, note="",
                                         actor=world.staff_a, now=clock.now())
        service.set_retention_policy(session, department=None, contract_type="", years=12, note="全庁",
                                     actor=world.admin, now=clock.now())
        service.set_retention_policy(session, department=world.department_a, contract_type="", years=7, note="",
                                     actor=world.admin, now=clock.now())
        session.commit()
        assert service.retention_years(session, contract) == 7
        assert service.retention_ends(session, contract) == date(2033, 3, 31)
        assert service.retention_years(session, _contract(session, "B-2025-0001")) == 12


def test_deletion_is_refused_before_retention_ends(app: Flask, client: FlaskClient, session: Session,
                                                  world: World) -> None:
    contract = _contract(session, "A-2025-0001")  # completed 2025-08-01 → kept until 2036-03-31
    clock.freeze(datetime(2036, 3, 31, 14, 59, tzinfo=UTC))  # 23:59 JST on the last day
    login_as(client, world.admin)

    response = post_form(client, f"/preservation/contracts/{contract.id}/delete", {"reason": "保存期間満了"})

    assert response.status_code == 409
    assert "令和18年3月31日まで" in response.get_data(as_text=True)
    assert _contract(reread(session), "A-2025-0001") is not None
    assert session.scalar(select(Tombstone)) is None


def test_only_an_admin_with_a_reason_deletes_after_retention_leaving_a_tombstone(
    app: Flask, session: Session, world: World
) -> None:
    contract = _contract(session, "A-2025-0001")
    contract_id = contract.id
    with app.app_context():
        service.correct_metadata(session, contract, {"amount": "3,300,001"}, reason="typo", actor=world.staff_a,
                                 now=clock.now())
        session.commit()
        after = datetime(2036, 3, 31, 15, 0, tzinfo=UTC)  # 2036-04-01 00:00 JST
        with pytest.raises(retention.RetentionRefused):
            service.delete_after_retention(session, contract, reason="満了", actor=world.staff_a, now=after)
        with pytest.raises(retention.InvalidRetention):
            service.delete_after_retention(session, contract, reason=" ", actor=world.admin, now=after)
        with pytest.raises(retention.RetentionNotEnded):
            service.delete_after_retention(session, contract, reason="満了", actor=world.admin,
                                           now=datetime(2036, 3, 31, 14, 59, tzinfo=UTC))
        tombstone = service.delete_after_retention(session, contract, reason="保存期間満了のため", actor=world.admin,
                                                   now=after)
        session.commit()

    session = reread(session)
    assert session.get(Contract, contract_id) is None
    assert session.scalar(select(DocumentRevision).where(DocumentRevision.storage_key == tombstone.documents[0]
                                                         ["storage_key"])) is None
    saved = session.scalar(select(Tombstone))
    assert saved is not None
    assert (saved.contract_number, saved.reason, saved.retention_ended_on) == ("A-2025-0001", "保存期間満了のため",
                                                                             date(2036, 3, 31))
    assert len(saved.documents[0]["sha256"]) == 64
    assert saved.corrections[0]["old"] == "3300000"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "admin:contract:deleted-after-retention"))
    assert event is not None
    assert event.subject_id == str(contract_id)


def test_deleting_on_the_screen_removes_the_stored_files_after_the_tombstone(
    app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    from portal.storage import get_store

    contract = _contract(session, "A-2025-0001")
    keys = [r.storage_key for d in contract.documents for r in d.revisions]
    assert keys
    with app.app_context():
        assert all(get_store().exists(key) for key in keys)
    login_as(client, world.admin)
    clock.freeze(datetime(2036, 4, 1, 9, 0, tzinfo=JST))
    url = f"/preservation/contracts/{contract.id}/delete"
    response = post_form(client, url, {"reason": "保存期間満了のため"})
    assert response.status_code in (204, 303), response.get_data(as_text=True)[:500]
    with app.app_context():
        assert not any(get_store().exists(key) for key in keys)
    assert reread(session).scalar(select(Tombstone.contract_number)) == "A-2025-0001"
