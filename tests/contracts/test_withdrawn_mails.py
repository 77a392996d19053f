"""A signing mail that has not gone out yet (held before SMTP was configured, or waiting out an SMTP
outage) is withdrawn when its link stops working: staff sent a newer link, or the contract closed.
The vendor never receives a link that only says it was replaced; the 送信メール page says why."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.audit.service import RequestInfo
from portal.auth.models import Role
from portal.contracts import sender
from portal.contracts.models import Contract, Party, RequestStatus, SignatureRequest
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.mail.service import deliver_pending, send_held
from portal.tokens import hash_token
from tests.conftest import post_form, reread
from tests.contracts.fixtures import LINK_RE
from tests.factories import login_as, make_staff
from tests.services.live import at_once
from tests.services.smtp import Inbox

VENDOR = "yamada@keiyaku-shoji.co.jp"


@pytest.fixture
def app_config(pki_dir: str, smtp_server: Any) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, **smtp_server.settings}


def _signing_mails(world: Any) -> list[OutboxMessage]:
    return world.outbox("signature_request")


def _open_token_hash(session: Any) -> str:
    [request] = reread(session).scalars(select(SignatureRequest).where(SignatureRequest.status == RequestStatus.OPEN))
    return request.token_hash


def _link_in(message: Any) -> str:
    match = LINK_RE.search(Inbox.text(message))
    assert match, Inbox.text(message)
    return match.group(0)


def _resend(world: Any, contract_id: int) -> None:
    response = post_form(world.staff_client, f"/contracts/{contract_id}/resend", {}, page=f"/contracts/{contract_id}")
    assert response.status_code == 303, response.get_data(as_text=True)


def test_a_held_signing_mail_replaced_by_a_resend_is_never_sent(app, world, session, smtp_server):
    server = app.config["MAIL_SERVER"]
    app.config["MAIL_SERVER"] = ""  # the portal was set up before its SMTP server
    try:
        contract_id = world.sent_contract()
        _resend(world, contract_id)
    finally:
        app.config["MAIL_SERVER"] = server
    first, resent = _signing_mails(world)
    assert first.status is OutboxStatus.WITHDRAWN
    assert first.body_sealed is None  # the dead link is not kept either
    assert resent.status is OutboxStatus.HELD
    assert resent.link_token_hash == _open_token_hash(session)

    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", name="管理 太郎")
    with app.test_request_context():
        assert send_held(session, actor=admin, now=clock.now(), request=RequestInfo()) >= 1
        session.commit()
        deliver_pending()
    arrived = [m for m in smtp_server.inbox.to(VENDOR) if "署名依頼" in str(m["Subject"])]
    assert [str(m["Subject"]).startswith("【再送】") for m in arrived] == [True]
    assert hash_token(_link_in(arrived[0]).rsplit("/s/", 1)[1]) == _open_token_hash(session)

    [event] = reread(session).scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.MAIL_WITHDRAWN))
    assert event.details["recipient"] == VENDOR
    assert event.details["why"] == "新しい署名用リンクを送ったため、"
    client = app.test_client()
    login_as(client, admin)
    page = client.get("/admin/mail/").get_data(as_text=True)
    assert "取りやめ（リンク無効）" in page
    assert "新しい署名用リンクを送ったため、送信を取りやめました" in page


def test_a_signing_mail_waiting_out_an_smtp_outage_is_withdrawn_when_the_contract_closes(app, world, session,
                                                                                      smtp_server):
    contract_id = world.sent_contract()
    [waiting] = _signing_mails(world)
    assert waiting.status is OutboxStatus.PENDING  # not delivered yet: SMTP was down, say
    response = post_form(world.staff_client, f"/contracts/{contract_id}/cancel", {"reason": "仕様の見直しのため"},
                         page=f"/contracts/{contract_id}")
    assert response.status_code == 303, response.get_data(as_text=True)
    [withdrawn] = _signing_mails(world)
    assert withdrawn.status is OutboxStatus.WITHDRAWN
    assert withdrawn.last_error == "契約の手続きが終了したため、"
    with app.app_context():
        deliver_pending()
    subjects = [str(m["Subject"]) for m in smtp_server.inbox.to(VENDOR)]
    assert not any("署名依頼" in s for s in subjects), subjects
    assert any("【取消】" in s for s in subjects), subjects


def test_a_signed_links_mail_still_waiting_is_not_sent_afterwards(app, world, smtp_server):
    contract_id = world.sent_contract()
    assert "署名手続きが完了しました" in world.sign_as_counterparty(world.signing_link()).get_data(as_text=True)
    assert world.contract(contract_id).parties[0].status.value == "signed"
    [mail] = _signing_mails(world)
    assert mail.status is OutboxStatus.WITHDRAWN
    assert mail.last_error == "署名済みのため、"


def test_mails_without_a_link_and_other_links_mails_are_left_alone(app, world, session):
    contract_id = world.sent_contract()
    other_id = world.sent_contract()
    _resend(world, contract_id)
    first, other, resent = _signing_mails(world)
    assert first.status is OutboxStatus.WITHDRAWN
    assert (other.status, resent.status) == (OutboxStatus.PENDING, OutboxStatus.PENDING)
    assert reread(session).get(Contract, other_id) is not None
    approval = world.outbox("approval_confirmed")
    assert approval
    assert all(m.link_token_hash == "" and m.status is OutboxStatus.PENDING for m in approval)


def test_a_resend_at_the_moment_the_deliverer_sends_ends_with_one_consistent_mail(app, world, session, smtp_server):
    """Resend ∥ delivery of the first mail: the first mail is either delivered or withdrawn, never both,
    and the vendor's newest mail always carries the open link."""
    factory = app.extensions["portal.session_factory"]

    def deliver() -> int:
        with app.app_context():
            return deliver_pending()

    def resend(contract_id: int) -> int:
        with app.test_request_context(), factory() as own:
            contract = own.get(Contract, contract_id)
            actor = own.get(type(world.staff), world.staff.id)
            sender.resend_request(own, contract, actor=actor, now=clock.now())
            own.commit()
            return 0

    for _ in range(3):
        smtp_server.inbox.messages.clear()
        contract_id = world.sent_contract()
        at_once([deliver, lambda contract_id=contract_id: resend(contract_id)])
        with app.app_context():
            deliver_pending()
        first, resent = _mails_of(world, session, contract_id)
        assert resent.status is OutboxStatus.SENT
        assert first.status in (OutboxStatus.SENT, OutboxStatus.WITHDRAWN)
        arrived = [m for m in smtp_server.inbox.to(VENDOR) if "署名依頼" in str(m["Subject"])]
        assert len(arrived) == (2 if first.status is OutboxStatus.SENT else 1), [str(m["Subject"]) for m in arrived]
        assert hash_token(_link_in(arrived[-1]).rsplit("/s/", 1)[1]) == _open_token_hash_of(session, contract_id)


def _requests_of(session: Any, contract_id: int) -> list[SignatureRequest]:
    return list(reread(session).scalars(select(SignatureRequest).join(Party).where(Party.contract_id == contract_id)
                                        .order_by(SignatureRequest.id)))


def _mails_of(world: Any, session: Any, contract_id: int) -> list[OutboxMessage]:
    hashes = {r.token_hash for r in _requests_of(session, contract_id)}
    return [m for m in _signing_mails(world) if m.link_token_hash in hashes]


def _open_token_hash_of(session: Any, contract_id: int) -> str:
    [request] = [r for r in _requests_of(session, contract_id) if r.status is RequestStatus.OPEN]
    return request.token_hash
