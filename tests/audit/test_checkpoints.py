"""Checkpoints: made daily by the periodic job and on demand, stamped by the configured TSA, shown
with their verification result on the admin page 「操作ログの検証」."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.admin import audit_integrity
from portal.audit.actions import AuditAction
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.auth.models import Role
from portal.jobs import run_due_jobs
from portal.signing import timestamps
from tests.audit.helpers import append_events, chain_rows, edit_details, flask_audit
from tests.conftest import reread
from tests.contracts.fixtures import break_tsa
from tests.factories import login_as, make_staff

PAGE = "/admin/audit-integrity"


def _count(session: Session, model: type) -> int:
    return reread(session).scalar(select(func.count()).select_from(model)) or 0


def test_the_checkpoint_stamps_the_verified_head(app: Flask, session: Session) -> None:
    append_events(app, 3)
    result = flask_audit(app, "checkpoint")
    assert result.exit_code == 0, result.output
    checkpoint = reread(session).scalar(select(AuditCheckpoint))
    assert checkpoint is not None
    rows = chain_rows(session)
    assert (checkpoint.head_seq, checkpoint.head_hash) == (3, rows[2].event_hash)
    assert checkpoint.is_verified
    assert checkpoint.verified_events == 3
    with app.app_context():
        assert timestamps.check_token(checkpoint.timestamp_token, bytes.fromhex(checkpoint.head_hash)) is None
        assert timestamps.check_token(checkpoint.timestamp_token, bytes.fromhex(rows[1].event_hash))
    assert rows[3].action == AuditAction.AUDIT_CHECKPOINT_CREATED.value
    assert rows[3].details["checkpoint_id"] == checkpoint.id


def test_the_daily_job_makes_a_checkpoint_once_a_day(app: Flask, session: Session) -> None:
    append_events(app, 2)
    with app.app_context():
        assert "audit-checkpoint" in run_due_jobs(datetime(2026, 12, 2, 1, 0, tzinfo=UTC))
        assert "audit-checkpoint" not in run_due_jobs(datetime(2026, 12, 2, 20, 0, tzinfo=UTC))
        assert "audit-checkpoint" in run_due_jobs(datetime(2026, 12, 3, 0, 1, tzinfo=UTC))
    assert _count(session, AuditCheckpoint) == 2


def test_a_tsa_outage_stores_nothing_and_the_page_says_so(app: Flask, client: FlaskClient, session: Session,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    append_events(app, 2)
    break_tsa(app, monkeypatch)
    result = flask_audit(app, "checkpoint")
    assert result.exit_code == 2
    assert "タイムスタンプ局に接続できませんでした" in result.output
    with app.app_context():
        assert "audit-checkpoint" not in run_due_jobs()
    assert _count(session, AuditCheckpoint) == 0
    assert reread(session).scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == AuditAction.AUDIT_CHECKPOINT_CREATED.value)) == 0
    login_as(client, make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp"))
    page = client.get(PAGE).get_data(as_text=True)
    assert "前回のチェックポイントを作成できませんでした" in page
    assert "チェックポイントはまだありません" in page


def test_two_checkpoints_at_once_both_verify(app: Flask, session: Session) -> None:
    append_events(app, 5)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def make() -> None:
        try:
            factory = app.extensions["portal.session_factory"]
            with app.app_context(), factory() as own:
                start.wait()
                audit_integrity.create_checkpoint(own, now=datetime.now(UTC))
                own.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert _count(session, AuditCheckpoint) == 2
    result = flask_audit(app, "verify")
    assert result.exit_code == 0, result.output
    assert "チェックポイント 2 件" in result.output


def test_the_admin_page_shows_the_last_checkpoint_and_its_result(app: Flask, client: FlaskClient,
                                                                session: Session) -> None:
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    login_as(client, admin)
    assert "チェックポイントはまだありません" in client.get(PAGE).get_data(as_text=True)
    append_events(app, 3)
    assert flask_audit(app, "checkpoint").exit_code == 0

    page = client.get(PAGE).get_data(as_text=True)
    assert "検証結果: 改ざんは見つかりませんでした" in page
    assert "内蔵タイムスタンプ局" in page

    target = next(row for row in chain_rows(session) if row.action == "staff:test:event")
    edit_details(app, target.id, {"edited": True})
    assert flask_audit(app, "checkpoint").exit_code == 1
    page = client.get(PAGE).get_data(as_text=True)
    assert "検証結果: 改ざんを検出しました" in page
    assert f"ID {target.id}" in page
    viewed = reread(session).scalars(select(AuditEvent).where(
        AuditEvent.action == AuditAction.AUDIT_INTEGRITY_VIEWED.value)).all()
    assert len(viewed) == 3
    assert viewed[-1].actor_user_id == admin.id


@pytest.mark.parametrize(("role", "status"), [(Role.AUDITOR, 200), (Role.STAFF, 403), (Role.APPROVER, 403)])
def test_only_admins_and_auditors_see_the_page(client: FlaskClient, session: Session, role: Role,
                                               status: int) -> None:
    login_as(client, make_staff(session, role=role, email=f"{role.value}@pref.example.jp"))
    assert client.get(PAGE).status_code == status


def test_anonymous_visitors_are_sent_to_the_login(client: FlaskClient) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
