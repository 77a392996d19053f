"""The sender's tools racing the signer: 「署名依頼を再送する」 ∥ signing with the old link, and unlocking ∥ a
wrong アクセスコード. Each pair, fired at the same moment at a live server, ends one consistent way and
never answers 500 (on PostgreSQL the contract's row lock decides, on SQLite the write lock)."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.contracts.models import PartyStatus, RequestStatus, SignatureRequest
from tests.factories import make_staff
from tests.services.live import HttpClient, LiveServer, Reply, at_once


def _count(world, action: str) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def _requests(world) -> list[SignatureRequest]:
    world.refresh()
    return list(world.session.scalars(select(SignatureRequest).order_by(SignatureRequest.id)))


def _colleague(world):
    """Another 担当者 of the department: World's own staff used this TOTP window's code already."""
    user = make_staff(world.session, role=Role.STAFF, email="dosho@pref.example.jp", department=world.department)
    world.session.commit()
    return user


def test_resend_and_signing_with_the_old_link_at_once_end_one_way(app, world):
    contract_id = world.sent_contract()
    link = world.signing_link()
    with LiveServer(app) as server:
        staff, signer = HttpClient(server.url), HttpClient(server.url)
        staff.login(_colleague(world))
        staff_token = staff.csrf(f"/contracts/{contract_id}")
        signer_token = signer.csrf(f"{link}/confirm")
        got: dict[str, Reply] = {}  # at_once() returns replies in the order they came back
        at_once([
            lambda: got.setdefault("resend", staff.post(f"/contracts/{contract_id}/resend",
                                                        {"csrf_token": staff_token})),
            lambda: got.setdefault("sign", signer.post(f"{link}/complete", {"csrf_token": signer_token})),
        ])
        resend, sign = got["resend"], got["sign"]
        assert server.errors == []
    assert 500 not in (resend.status, sign.status)
    party = world.contract(contract_id).parties[0]
    requests = _requests(world)
    if party.status is PartyStatus.SIGNED:
        # The signature came first: it stands, and the resend asks the signer whose turn it is now, the
        # agency's (as resend_request says; this branch runs when the machine is loaded).
        assert sign.status == 200
        assert "署名手続きが完了しました" in sign.text
        assert resend.status == 200
        assert "署名依頼を新しいリンクで再送しました" in resend.text
        assert [r.status for r in requests] == [RequestStatus.COMPLETED]  # the signed link was not replaced
        assert world.contract(contract_id).parties[1].status is PartyStatus.REQUESTED
        assert _count(world, "signer:contract:signed") == 1
        assert _count(world, "staff:contract:signature-request-resent") == 1
    else:  # the resend came first: the old link no longer signs
        assert resend.status == 200
        assert sign.status == 410
        assert "新しいリンクに置き換えられたため使えません" in sign.text
        assert [r.status for r in requests] == [RequestStatus.CANCELLED, RequestStatus.OPEN]
        assert party.status is PartyStatus.REQUESTED
        assert _count(world, "signer:contract:signed") == 0
        assert _count(world, "staff:contract:signature-request-resent") == 1


def test_unlock_and_a_wrong_code_at_once_count_once(app, world):
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 2
    contract_id = world.sent_contract(access_code="4821")
    link = world.signing_link()
    with LiveServer(app) as server:
        guesser = HttpClient(server.url)
        for code in ("1111", "2222"):
            guesser.post_form(f"{link}/access-code", {"access_code": code}, page=link)
        assert _requests(world)[0].failed_code_attempts == 2
        staff, stranger = HttpClient(server.url), HttpClient(server.url)
        staff.login(_colleague(world))
        staff_token = staff.csrf(f"/contracts/{contract_id}")
        stranger_token = stranger.csrf(link)
        got: dict[str, Reply] = {}
        at_once([
            lambda: got.setdefault("unlock", staff.post(f"/contracts/{contract_id}/unlock",
                                                        {"csrf_token": staff_token})),
            lambda: got.setdefault("wrong", stranger.post(f"{link}/access-code",
                                                          {"csrf_token": stranger_token, "access_code": "3333"})),
        ])
        unlock, wrong = got["unlock"], got["wrong"]
        assert server.errors == []
    assert unlock.status == 200
    attempts = _requests(world)[0].failed_code_attempts
    if wrong.status == 423:  # the guess met the lock, then staff unlocked
        assert attempts == 0
    else:  # unlocked first: the guess counts as the first of the new round
        assert wrong.status == 422
        assert "あと1回" in wrong.text
        assert attempts == 1
    assert _count(world, "staff:contract:signing-link-unlocked") == 1
    assert len(world.outbox("signing_link_unlocked")) == 1


def test_changing_the_code_and_the_vendor_signing_at_once_end_one_way(app, world):
    contract_id = world.sent_contract(access_code="4821")
    link = world.signing_link()
    with LiveServer(app) as server:
        signer = HttpClient(server.url)
        assert signer.post_form(f"{link}/access-code", {"access_code": "4821"}, page=link).status == 200
        staff = HttpClient(server.url)
        staff.login(_colleague(world))
        staff_token = staff.csrf(f"/contracts/{contract_id}")
        signer_token = signer.csrf(f"{link}/confirm")
        got: dict[str, Reply] = {}
        at_once([
            lambda: got.setdefault("change", staff.post(f"/contracts/{contract_id}/access-code",
                                                        {"csrf_token": staff_token, "access_code": "7359"})),
            lambda: got.setdefault("sign", signer.post(f"{link}/complete", {"csrf_token": signer_token})),
        ])
        change, sign = got["change"], got["sign"]
        page_after = signer.get(link).text
        assert server.errors == []
    assert 500 not in (change.status, sign.status)
    party = world.contract(contract_id).parties[0]
    if party.status is PartyStatus.SIGNED:  # signed with the old code: the code may no longer change
        assert "署名手続きが完了しました" in sign.text
        assert change.status == 409
        assert "相手方はすでに署名済みです" in change.text
        assert _count(world, "staff:contract:access-code-changed") == 0
        assert world.outbox("access_code_changed") == []
    else:  # the code changed first: the browser that entered the old one is asked again, nothing signed
        assert change.status == 200
        assert sign.status == 409
        assert "アクセスコードは変更されました" in sign.text
        assert _count(world, "signer:contract:signed") == 0
        assert _count(world, "staff:contract:access-code-changed") == 1
        assert len(world.outbox("access_code_changed")) == 1
        assert "アクセスコードの入力" in page_after


def test_two_download_links_reissued_at_once_are_two_links_each_mailed_once(app, world):
    contract_id = world.completed_contract()
    party_id = world.party_ids(contract_id)[0]
    before = len(world.outbox("download_link_reissued"))
    with LiveServer(app) as server:
        first, second = HttpClient(server.url), HttpClient(server.url)
        first.login(_colleague(world))
        second.login(make_staff(world.session, role=Role.STAFF, email="dosho2@pref.example.jp",
                                department=world.department))
        tokens = [client.csrf(f"/contracts/{contract_id}") for client in (first, second)]
        replies = at_once([
            lambda: first.post(f"/contracts/{contract_id}/download-links",
                               {"csrf_token": tokens[0], "recipient": f"party-{party_id}"}),
            lambda: second.post(f"/contracts/{contract_id}/download-links",
                                {"csrf_token": tokens[1], "recipient": f"party-{party_id}"}),
        ])
        assert server.errors == []
    assert [reply.status for reply in replies] == [200, 200]
    mails = world.outbox("download_link_reissued")[before:]
    assert len(mails) == 2
    assert len({world.delivered_body(mail) for mail in mails}) == 2  # each its own link
    assert _count(world, "staff:contract:download-link-reissued") == 2
