"""The アクセスコード guards the documents: asked once per browser session, counted, locked with the contact."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.contracts.models import ContractStatus, PartyStatus, SignatureRequest
from tests.conftest import post_form
from tests.pdfs import make_pdf
from tests.services.live import HttpClient, LiveServer


def _attempts(world) -> int:
    world.refresh()
    return world.session.scalar(select(SignatureRequest.failed_code_attempts))


def _events(world, action: str) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def _enter(world, link: str, code: str, client=None):
    return post_form(client or world.signer_client, f"{link}/access-code", {"access_code": code}, page=link)


def test_documents_are_hidden_until_the_code_is_entered(app, world):
    world.sent_contract(make_pdf("first", 2), make_pdf("second"), access_code="4821")
    link = world.signing_link()
    contract = world.session.scalar(select(SignatureRequest)).party.contract
    second = contract.documents[1].id

    page = world.signer_client.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "アクセスコードの入力" in html
    assert 'role="tab"' not in html
    assert "原本をダウンロード" not in html
    image = world.signer_client.get(f"{link}/documents/{second}/pages/1.jpg")
    assert image.status_code == 403
    assert image.mimetype == "text/html"
    original = world.signer_client.get(f"{link}/documents/{second}/original")
    assert original.status_code == 403
    assert original.data != make_pdf("second")
    assert "アクセスコード" in world.signer_client.get(f"{link}/confirm").get_data(as_text=True)
    tab = world.signer_client.get(f"{link}/documents/{second}", headers={"HX-Request": "true"})
    assert tab.headers["HX-Redirect"] == link

    wrong = _enter(world, link, "0000")
    assert wrong.status_code == 422
    assert "あと4回間違えると" in wrong.get_data(as_text=True)

    right = _enter(world, link, "\u3000４８２１ ")  # full-width digits, surrounding spaces
    assert right.status_code == 303
    assert right.headers["Location"] == link
    assert _attempts(world) == 1
    assert 'role="tab"' in world.signer_client.get(link).get_data(as_text=True)
    assert world.signer_client.get(f"{link}/documents/{second}/pages/1.jpg").mimetype == "image/jpeg"
    assert world.signer_client.get(f"{link}/documents/{second}/original").data == make_pdf("second")
    confirm = world.signer_client.get(f"{link}/confirm").get_data(as_text=True)
    assert 'name="access_code"' not in confirm  # asked once per browser session
    assert _events(world, "signer:contract:access-code-accepted") == 1

    other_browser = app.test_client()
    assert "アクセスコードの入力" in other_browser.get(link).get_data(as_text=True)
    assert other_browser.get(f"{link}/documents/{second}/original").status_code == 403

    signed = world.sign_as_counterparty(link)
    assert "署名手続きが完了しました" in signed.get_data(as_text=True)
    party = world.contract(contract.id).parties[0]
    assert party.auth_methods == ["email_link", "access_code"]


def test_a_locked_link_says_so_with_the_contact_and_mails_the_department_once(app, world):
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 2
    world.department.contact_phone = "086-226-7000"
    world.department.contact_email = "keiyaku@pref.example.jp"
    world.session.commit()
    contract_id = world.sent_contract(access_code="4821")
    link = world.signing_link()
    assert "あと1回" in _enter(world, link, "1111").get_data(as_text=True)
    locked = _enter(world, link, "2222")
    assert locked.status_code == 423
    text = locked.get_data(as_text=True)
    assert "このリンクはロックされています" in text
    assert "アクセスコードの入力を2回間違えたため" in text
    assert "086-226-7000" in text
    assert "keiyaku@pref.example.jp" in text
    assert "（423）" not in text
    again = _enter(world, link, "4821")
    assert again.status_code == 423
    assert world.signer_client.get(link).status_code == 423
    assert app.test_client().get(link).status_code == 423
    assert _attempts(world) == 2

    mails = world.outbox("access_code_locked")
    assert sorted(m.recipient for m in mails) == sorted(
        {world.staff.email, world.approver.email, "keiyaku@pref.example.jp"})
    assert all("ロックされました" in m.body for m in mails)
    assert _events(world, "signer:contract:access-code-locked") == 1
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.AWAITING_COUNTERPARTY
    assert contract.parties[0].status is PartyStatus.REQUESTED


def test_the_lock_applies_to_a_browser_that_entered_the_code_before(app, world):
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 2
    world.sent_contract(access_code="4821")
    link = world.signing_link()
    assert _enter(world, link, "4821").status_code == 303
    stranger = app.test_client()
    _enter(world, link, "1111", stranger)
    _enter(world, link, "2222", stranger)
    assert world.signer_client.get(link).status_code == 423
    assert world.sign_as_counterparty(link).status_code == 423


@pytest.mark.parametrize(("code", "message", "counted"), [
    ("48\x0021", "制御文字", False),
    ("4821\u202e", "制御文字", False),
    ("1" * 10_000, "長すぎます", False),
    ("<script>alert(1)</script>", "あと4回", True),
    ("", "あと4回", True),
])
def test_hostile_codes_are_refused_in_japanese(world, code, message, counted):
    world.sent_contract(access_code="4821")
    link = world.signing_link()
    response = _enter(world, link, code)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert message in text
    assert "<script>alert" not in text
    assert _attempts(world) == (1 if counted else 0)
    assert 'role="tab"' not in world.signer_client.get(link).get_data(as_text=True)


def test_wrong_codes_at_the_same_moment_each_count_and_never_pass_the_limit(app, world):
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 3
    world.sent_contract(access_code="4821")
    link = world.signing_link()

    def burst(server: LiveServer, count: int) -> list[int]:
        clients = [HttpClient(server.url) for _ in range(count)]
        tokens = [client.csrf(link) for client in clients]
        start = threading.Barrier(count)
        statuses: list[int] = []

        def guess(client: HttpClient, token: str) -> None:
            start.wait()
            statuses.append(client.post(f"{link}/access-code", {"csrf_token": token, "access_code": "9999"}).status)

        threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, tokens, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(statuses)

    with LiveServer(app) as server:
        assert burst(server, 2) == [422, 422]
        assert _attempts(world) == 2
        assert burst(server, 3) == [423, 423, 423]
        assert server.errors == []
    assert _attempts(world) == 3
    assert _events(world, "signer:contract:access-code-failed") == 3
    assert _events(world, "signer:contract:access-code-locked") == 1
    assert len(world.outbox("access_code_locked")) == 2  # the creator and the approver, once
