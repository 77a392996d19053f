"""The signer's side: double clicks, expiry, access code, decline, TSA outage, order, other people's parties."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.clock import JST
from portal.contracts.models import ContractStatus, DocumentRevision, PartyStatus, RequestStatus, SignatureRequest
from portal.signing.errors import TimestampUnavailable
from tests.conftest import post_form
from tests.factories import login_as, make_staff
from tests.pdfs import make_pdf


def _revisions(world) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(DocumentRevision))


def _signed_events(world) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(AuditEvent)
                                .where(AuditEvent.action == "signer:contract:signed"))


def test_review_page_has_a_tab_per_document_and_page_images(world):
    world.sent_contract(make_pdf("first", 2), make_pdf("second"))
    link = world.signing_link()
    html = world.signer_client.get(link).get_data(as_text=True)
    assert html.count('role="tab"') == 2
    assert 'name="viewport"' in html
    contract = world.contract(world.session.scalar(select(SignatureRequest)).party.contract_id)
    second = contract.documents[1]
    tab = world.signer_client.get(f"{link}/documents/{second.id}", headers={"HX-Request": "true"})
    assert 'aria-selected="true">2. doc2<' in tab.get_data(as_text=True)
    image = world.signer_client.get(f"{link}/documents/{second.id}/pages/1.jpg")
    assert image.mimetype == "image/jpeg"
    assert world.signer_client.get(f"{link}/documents/{second.id}/pages/9.jpg").status_code == 404
    original = world.signer_client.get(f"{link}/documents/{second.id}/original")
    assert original.data == make_pdf("second")


def test_double_click_signs_once(world):
    contract_id = world.sent_contract(make_pdf("a"), make_pdf("b"))
    link = world.signing_link()
    before = _revisions(world)
    first = world.sign_as_counterparty(link)
    second = world.sign_as_counterparty(link)
    assert "署名手続きが完了しました" in first.get_data(as_text=True)
    assert second.status_code == 200
    assert "既に署名済みです" in second.get_data(as_text=True)
    assert _revisions(world) == before + 2  # one signed revision per document
    assert _signed_events(world) == 1
    assert world.contract(contract_id).status is ContractStatus.AWAITING_AGENCY
    assert "既に署名済みです" in world.signer_client.get(link).get_data(as_text=True)


def test_two_tabs_at_the_same_moment_sign_once(app, world):
    world.sent_contract()
    link = world.signing_link()
    page = world.signer_client.get(link)
    from tests.conftest import csrf_from

    token = csrf_from(page.get_data(as_text=True))
    results = []

    def press() -> None:
        results.append(world.signer_client.post(f"{link}/complete", data={"csrf_token": token}))

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [200, 200]
    texts = [r.get_data(as_text=True) for r in results]
    assert sum("既に署名済みです" in t for t in texts) == 1
    assert _signed_events(world) == 1


def test_expired_signing_link_is_410(world):
    contract_id = world.sent_contract()
    link = world.signing_link()
    planned = world.contract(contract_id).planned_conclusion_date
    clock.freeze(datetime.combine(planned + timedelta(days=1), time(0, 1), tzinfo=JST))
    response = world.signer_client.get(link)
    assert response.status_code == 410
    assert "有効期限" in response.get_data(as_text=True)
    assert world.signer_client.get(f"{link}/confirm").status_code == 410


def test_unknown_link_explains_without_a_traceback(world):
    response = world.signer_client.get("/s/" + "x" * 43)
    assert response.status_code == 404
    assert "新しいリンクが送られた可能性があります" in response.get_data(as_text=True)


def test_access_code_is_required(app, world):
    contract_id = world.sent_contract(access_code="4821")
    link = world.signing_link()
    assert "アクセスコード" in world.outbox("signature_request")[-1].body
    without = world.sign_as_counterparty(link)
    assert without.status_code == 422
    wrong = world.sign_as_counterparty(link, access_code="0000")
    assert wrong.status_code == 422
    assert "アクセスコードが正しくありません" in wrong.get_data(as_text=True)
    assert world.contract(contract_id).parties[0].status is PartyStatus.REQUESTED
    right = world.sign_as_counterparty(link, access_code="4821")
    assert "署名手続きが完了しました" in right.get_data(as_text=True)
    assert world.contract(contract_id).parties[0].auth_methods == ["email_link", "access_code"]


def test_access_code_locks_after_too_many_wrong_entries(app, world):
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 2
    world.sent_contract(access_code="4821")
    link = world.signing_link()
    world.sign_as_counterparty(link, access_code="1111")
    world.sign_as_counterparty(link, access_code="2222")
    locked = world.sign_as_counterparty(link, access_code="4821")
    assert locked.status_code == 423
    assert "2回間違えた" in locked.get_data(as_text=True)


def test_decline_notifies_staff(world):
    contract_id = world.sent_contract()
    link = world.signing_link()
    assert post_form(world.signer_client, f"{link}/decline", {"reason": ""}).status_code == 422
    response = post_form(world.signer_client, f"{link}/decline", {"reason": "金額に誤りがあります"})
    assert response.status_code == 200
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.DECLINED
    assert contract.parties[0].decline_reason == "金額に誤りがあります"
    [mail] = [m for m in world.outbox("contract_declined") if m.recipient == world.staff.email]
    assert "金額に誤りがあります" in mail.body
    assert "差し戻し済み" in world.signer_client.get(link).get_data(as_text=True)
    assert world.sign_as_counterparty(link).status_code == 410


def test_declining_needs_the_access_code_like_signing(app, world):
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 3
    contract_id = world.sent_contract(access_code="4821")
    link = world.signing_link()
    assert "アクセスコード" in world.signer_client.get(f"{link}/decline").get_data(as_text=True)
    forwarded = post_form(world.signer_client, f"{link}/decline", {"reason": "転送されたリンクで差し戻し"})
    assert forwarded.status_code == 422
    assert "アクセスコードが正しくありません" in forwarded.get_data(as_text=True)
    wrong = post_form(world.signer_client, f"{link}/decline", {"reason": "差し戻し", "access_code": "0000"})
    assert wrong.status_code == 422
    assert world.contract(contract_id).status is ContractStatus.AWAITING_COUNTERPARTY
    assert world.outbox("contract_declined") == []
    right = post_form(world.signer_client, f"{link}/decline", {"reason": "金額に誤りがあります", "access_code": "4821"})
    assert "差し戻しました" in right.get_data(as_text=True)
    assert world.contract(contract_id).status is ContractStatus.DECLINED
    declined = world.session.scalar(select(AuditEvent).where(AuditEvent.action == "signer:contract:declined"))
    assert declined.details["auth_methods"] == ["email_link", "access_code"]


def test_wrong_codes_at_decline_count_towards_the_lock(app, world):
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 2
    contract_id = world.sent_contract(access_code="4821")
    link = world.signing_link()
    post_form(world.signer_client, f"{link}/decline", {"reason": "x", "access_code": "1111"})
    post_form(world.signer_client, f"{link}/decline", {"reason": "x", "access_code": "2222"})
    locked = world.sign_as_counterparty(link, access_code="4821")
    assert locked.status_code == 423
    assert "アクセスコードの入力を2回間違えたため" in locked.get_data(as_text=True)
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.AWAITING_COUNTERPARTY
    assert contract.parties[0].status is PartyStatus.REQUESTED


def test_tsa_down_commits_nothing_and_a_retry_works(app, world, tsa_down):
    contract_id = world.sent_contract(make_pdf("a"), make_pdf("b"))
    link = world.signing_link()
    before = _revisions(world)
    response = world.sign_as_counterparty(link)
    assert response.status_code == 503
    assert TimestampUnavailable.default_message in response.get_data(as_text=True)
    contract = world.contract(contract_id)
    assert contract.parties[0].status is PartyStatus.REQUESTED
    assert contract.status is ContractStatus.AWAITING_COUNTERPARTY
    assert _revisions(world) == before
    assert world.session.scalar(select(SignatureRequest)).status is RequestStatus.OPEN
    assert world.outbox("agency_signature_request") == []
    failures = world.session.scalars(select(AuditEvent).where(AuditEvent.action == "system:contract:signing-failed"))
    assert [e.details["error_type"] for e in failures] == ["TimestampUnavailable"]

    tsa_down.undo()
    retry = world.sign_as_counterparty(link)
    assert "署名手続きが完了しました" in retry.get_data(as_text=True)
    assert _revisions(world) == before + 2


def test_agency_cannot_sign_before_its_turn(world):
    contract_id = world.sent_contract()
    agency_party = world.party_ids(contract_id)[1]
    response = world.sign_as_agency(agency_party)
    assert response.status_code == 409
    assert world.contract(contract_id).parties[1].status is PartyStatus.WAITING


def test_nobody_can_sign_for_someone_else(app, world):
    contract_id = world.sent_contract()
    world.sign_as_counterparty(world.signing_link())
    agency_party = world.party_ids(contract_id)[1]
    other = make_staff(world.session, role=Role.APPROVER, email="other-approver@pref.example.jp",
                       department=world.department)
    client = app.test_client()
    login_as(client, other)
    assert client.get(f"/s/staff/{agency_party}").status_code == 404
    admin = make_staff(world.session, role=Role.ADMIN, email="admin@pref.example.jp", department=world.department)
    admin_client = app.test_client()
    login_as(admin_client, admin)
    assert admin_client.get(f"/s/staff/{agency_party}").status_code == 404
    assert world.contract(contract_id).parties[1].status is PartyStatus.REQUESTED


def test_agency_first_order_is_configurable(world):
    contract_id = world.sent_contract(signing_order="agency_first")
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.AWAITING_AGENCY
    assert world.outbox("signature_request") == []
    assert "署名手続きが完了しました" in world.sign_as_agency(contract.parties[0].id).get_data(as_text=True)
    assert world.contract(contract_id).status is ContractStatus.AWAITING_COUNTERPARTY
    assert len(world.outbox("signature_request")) == 1


@pytest.mark.parametrize(("reason", "message"), [
    ("長" * 2001, "2000文字以内"),
    ("金額に誤り\x1b[31mがあります", "制御文字"),
    ("\u202e金額に誤りがあります", "制御文字"),
    ("   \n ", "差し戻しの理由を入力してください"),
])
def test_a_hostile_decline_reason_is_refused_and_changes_nothing(world, reason, message):
    contract_id = world.sent_contract()
    link = world.signing_link()
    response = post_form(world.signer_client, f"{link}/decline", {"reason": reason})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert world.contract(contract_id).status is ContractStatus.AWAITING_COUNTERPARTY
    assert world.outbox("contract_declined") == []
