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
from tests.conftest import csrf_from, post_form, reread
from tests.contracts.fixtures import LINK_RE, today
from tests.jobs.test_worker_processes import _finish, _start_workers
from tests.services.live import HttpClient, LiveServer, at_once

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
    [request] = _open_requests(session, contract_id)  # the reminder's link; the first one is superseded
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


def _remind_in_a_session_of_its_own(app) -> int:
    """The deadline job as a worker runs it beside the requests: its own session, committed; how many it reminded."""
    with app.app_context(), app.extensions["portal.session_factory"]() as own:
        reminded = run_deadlines(own, now=clock.now()).reminded
        own.commit()
        return reminded


def _remind(app, session) -> None:
    with app.app_context():
        assert run_deadlines(session, now=clock.now()).reminded == 1
        session.commit()


def test_a_vendor_whose_page_is_open_when_the_reminder_goes_out_still_signs_with_it(app, world, session):
    contract_id = world.sent_contract(planned_conclusion_date=(today() + timedelta(days=2)).isoformat())
    first = world.signing_link()
    assert world.signer_client.get(first).status_code == 200  # the vendor has the page open
    _remind(app, session)
    [reminder] = world.outbox("signature_reminder")
    match = LINK_RE.search(world.delivered_body(reminder))
    assert match
    reminder_link = "/s/" + match.group(0).rsplit("/s/", 1)[1]

    signed = world.sign_as_counterparty(first)
    assert "署名手続きが完了しました" in signed.get_data(as_text=True)
    contract = world.contract(contract_id)
    assert contract.parties[0].status.value == "signed"
    assert _reminded_events(session) == 1
    signatures = reread(session).scalar(select(func.count()).select_from(AuditEvent)
                                        .where(AuditEvent.action == AuditAction.CONTRACT_SIGNED))
    assert signatures == 1
    statuses = sorted(r.status.value for r in reread(session).scalars(
        select(SignatureRequest).join(Party).where(Party.contract_id == contract_id, Party.position == 1)))
    assert statuses == ["completed", "completed"]  # neither link stays open once the vendor has signed
    page = world.signer_client.get(reminder_link).get_data(as_text=True)
    assert "署名済み" in page or "既に署名" in page
    [mail] = world.outbox("signature_reminder")
    assert mail.status.value == "withdrawn"  # held: no SMTP server here; signed before it could go


def test_a_resend_after_a_reminder_stops_every_earlier_link(app, world, session):
    contract_id = world.sent_contract(planned_conclusion_date=(today() + timedelta(days=2)).isoformat())
    first = world.signing_link()
    _remind(app, session)
    [reminder] = world.outbox("signature_reminder")
    reminder_link = "/s/" + LINK_RE.search(world.delivered_body(reminder)).group(0).rsplit("/s/", 1)[1]
    response = post_form(world.staff_client, f"/contracts/{contract_id}/resend", {}, page=f"/contracts/{contract_id}")
    assert response.status_code == 303, response.get_data(as_text=True)
    for old in (first, reminder_link):
        refused = world.signer_client.get(old)
        assert refused.status_code == 410
        assert "新しいリンクに置き換えられたため使えません" in refused.get_data(as_text=True)
    assert world.signer_client.get(world.signing_link()).status_code == 200


def test_wrong_codes_through_a_superseded_link_count_on_the_current_one(app, world, session):
    contract_id = world.sent_contract(planned_conclusion_date=(today() + timedelta(days=2)).isoformat(),
                                      access_code="482913")
    first = world.signing_link()
    _remind(app, session)
    limit = app.config["ACCESS_CODE_MAX_ATTEMPTS"]
    for _ in range(limit):
        post_form(world.signer_client, f"{first}/access-code", {"access_code": "000000"}, page=first)
    [current] = _open_requests(session, contract_id)
    assert current.failed_code_attempts == limit  # one counter: the old link cannot add tries of its own
    locked = world.signer_client.get(first)
    assert "ロック" in locked.get_data(as_text=True)


def test_a_reminder_at_the_moment_the_vendor_signs_with_the_old_link_ends_one_way(app, world, session):
    """Reminder ∥ 「署名手続きを完了する」 with the first link, against a live server: signed once, no 500;
    a reminder that came second finds nothing due (the signer's turn is over)."""
    for _ in range(3):
        contract_id = world.sent_contract(planned_conclusion_date=(today() + timedelta(days=2)).isoformat())
        first = world.signing_link()
        with LiveServer(app) as server:
            browser = HttpClient(server.url)
            token = browser.csrf(first)

            def sign(browser: HttpClient = browser, first: str = first, token: str = token) -> int:
                return browser.post(f"{first}/complete", {"csrf_token": token}).status

            replies = at_once([sign, lambda: _remind_in_a_session_of_its_own(app)])
        assert 500 not in replies, replies
        contract = world.contract(contract_id)
        assert contract.parties[0].status.value == "signed", replies
        signed = reread(session).scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == AuditAction.CONTRACT_SIGNED, AuditEvent.subject_id == str(contract_id)))
        assert signed == 1
        assert not _open_requests(session, contract_id)  # nothing left open for the signer who signed


def test_a_reminder_at_the_moment_staff_resend_the_request_leaves_one_current_link(app, world, session):
    """Reminder ∥ 再送: whichever commits first, one request is open afterwards, every link in a mail that was
    not withdrawn opens it, and the first link (replaced by the resend either way) is refused."""
    for _ in range(3):
        known = {m.id for m in world.outbox()}
        contract_id = world.sent_contract(planned_conclusion_date=(today() + timedelta(days=2)).isoformat())
        first = world.signing_link()
        page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
        token = csrf_from(page)

        def resend(contract_id: int = contract_id, token: str = token) -> int:
            return world.staff_client.post(f"/contracts/{contract_id}/resend", data={"csrf_token": token}).status_code

        replies = at_once([resend, lambda: _remind_in_a_session_of_its_own(app)])
        assert 500 not in replies, replies
        assert 303 in replies, replies
        assert len(_open_requests(session, contract_id)) == 1
        mails = [m for m in world.outbox() if m.id not in known and m.recipient == VENDOR
                 and m.template in ("signature_request", "signature_reminder")]
        live = [m for m in mails if m.status.value != "withdrawn"]
        assert "signature_request" in [m.template for m in live], [(m.template, m.status.value) for m in mails]
        for mail in live:  # the resend's mail, and the reminder's if it came second (it keeps that link)
            link = "/s/" + LINK_RE.search(world.delivered_body(mail)).group(0).rsplit("/s/", 1)[1]
            assert world.signer_client.get(link).status_code == 200, (mail.template, replies)
        assert world.signer_client.get(first).status_code == 410
