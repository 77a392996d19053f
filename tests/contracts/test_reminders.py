"""Reminders before 締結予定日 carry a fresh signing link and reach the sender too, once per threshold:
with two runs at the same moment, and with two worker processes running the periodic job."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.contracts.deadlines import run_deadlines
from portal.contracts.models import Party, RequestStatus, SignatureRequest
from portal.jobs.models import JobLease
from portal.mail.models import OutboxMessage
from portal.tokens import hash_token
from tests.conftest import reread
from tests.contracts.fixtures import LINK_RE, today
from tests.jobs.test_worker_processes import _finish, _start_workers

VENDOR = "yamada@keiyaku-shoji.co.jp"


def _reminders(world: Any) -> list[tuple[str, str]]:
    return [(m.template, m.recipient) for m in world.outbox() if m.template.startswith("signature_reminder")]


def _open_requests(session: Any, contract_id: int) -> list[SignatureRequest]:
    return list(reread(session).scalars(
        select(SignatureRequest).join(Party).where(Party.contract_id == contract_id,
                                                   SignatureRequest.status == RequestStatus.OPEN)))


def _reminded_events(session: Any) -> int:
    return int(reread(session).scalar(select(func.count()).select_from(AuditEvent)
                                      .where(AuditEvent.action == AuditAction.CONTRACT_REMINDED)) or 0)


def test_two_runs_at_the_same_moment_remind_once(app, world, session):
    contract_id = world.sent_contract(planned_conclusion_date=(today() + timedelta(days=2)).isoformat())
    factory = app.extensions["portal.session_factory"]
    start = threading.Barrier(2)
    reports: list[int] = []
    failures: list[str] = []

    def run() -> None:
        try:
            with app.app_context(), factory() as own:
                start.wait()
                reports.append(run_deadlines(own, now=clock.now()).reminded)
                own.commit()
        except Exception as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert sorted(reports) == [0, 1]
    assert sorted(_reminders(world)) == [("signature_reminder", VENDOR),
                                         ("signature_reminder_staff", world.staff.email)]
    assert _reminded_events(session) == 1
    [request] = _open_requests(session, contract_id)  # the reminder's link; the first one is closed
    [reminder] = world.outbox("signature_reminder")
    match = LINK_RE.search(world.delivered_body(reminder))
    assert match
    assert request.token_hash == hash_token(match.group(0).rsplit("/s/", 1)[1])


def test_two_worker_processes_remind_once_per_threshold(app, world, session, tmp_path):
    # 5 days before with thresholds 7 and 1: a run that passes midnight JST crosses no second threshold
    contract_id = world.sent_contract(planned_conclusion_date=(today() + timedelta(days=5)).isoformat())
    processes = _start_workers(app, tmp_path, seconds=6, DEADLINES_INTERVAL_SECONDS=1, REMINDER_DAYS_BEFORE=[7, 1])
    outputs = _finish(processes)
    assert all(p.returncode == 0 for p in processes), outputs
    lease = reread(session).get(JobLease, "contract-deadlines")
    assert lease is not None
    assert lease.runs >= 3, (lease.runs, outputs)  # the job ran in several periods, reminding only once
    assert lease.last_error == ""
    assert sorted(_reminders(world)) == [("signature_reminder", VENDOR),
                                         ("signature_reminder_staff", world.staff.email)]
    assert _reminded_events(session) == 1
    assert len(_open_requests(session, contract_id)) == 1
    held = reread(session).scalars(select(OutboxMessage).where(OutboxMessage.template == "signature_reminder"))
    assert [m.status.value for m in held] == ["held"]  # no SMTP server configured: kept for 送信メール


def test_a_reminder_never_unlocks_a_link_locked_by_wrong_access_codes(app, world, session):
    contract_id = world.sent_contract(planned_conclusion_date=(today() + timedelta(days=2)).isoformat())
    [request] = _open_requests(session, contract_id)
    request.failed_code_attempts = app.config["ACCESS_CODE_MAX_ATTEMPTS"]
    session.commit()
    with app.app_context():
        assert run_deadlines(session, now=clock.now()).reminded == 1
        session.commit()
    [fresh] = _open_requests(session, contract_id)
    assert fresh.id != request.id
    assert fresh.failed_code_attempts == app.config["ACCESS_CODE_MAX_ATTEMPTS"]


def test_the_agency_signer_is_reminded_with_their_page_and_the_sender_too(app, world, session):
    contract_id = world.sent_contract(planned_conclusion_date=(today() + timedelta(days=1)).isoformat(),
                                      signing_order="agency_first")
    with app.app_context():
        assert run_deadlines(session, now=clock.now()).reminded == 1
        session.commit()
    [party_id, _] = world.party_ids(contract_id)
    [reminder] = world.outbox("signature_reminder")
    assert reminder.recipient == world.approver.email
    assert f"/s/staff/{party_id}" in reminder.body
    assert "あと 1 日" in reminder.body
    [staff] = world.outbox("signature_reminder_staff")
    assert staff.recipient == world.staff.email
    assert staff.subject.endswith("（締結予定日まであと1日）")
