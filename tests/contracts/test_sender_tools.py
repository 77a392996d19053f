"""The sender's tools on the contract page: resend the signature request (the old link stops at once),
unlock a link locked by wrong アクセスコード, change the code, and a new download link after completion.
Each is audited and mailed; each is refused in Japanese where the contract does not allow it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.contracts.models import DownloadLink, PartyStatus, RequestStatus, SignatureRequest
from tests.conftest import post_form
from tests.contracts.fixtures import DOWNLOAD_RE
from tests.factories import login_as, make_department, make_staff
from tests.pdfs import make_pdf


def _post(world, contract_id: int, action: str, client=None, **data: str):
    return post_form(client or world.staff_client, f"/contracts/{contract_id}/{action}", data,
                     page=f"/contracts/{contract_id}")


def _events(world, action: str) -> list[AuditEvent]:
    world.refresh()
    return list(world.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _requests(world) -> list[SignatureRequest]:
    world.refresh()
    return list(world.session.scalars(select(SignatureRequest).order_by(SignatureRequest.id)))


def _enter(world, link: str, code: str, client=None):
    return post_form(client or world.signer_client, f"{link}/access-code", {"access_code": code}, page=link)


# ---------------------------------------------------------------- 署名依頼を再送する


def test_resend_issues_a_new_link_and_the_old_one_says_a_newer_one_was_sent(world):
    contract_id = world.sent_contract()
    old = world.signing_link()
    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "署名依頼を再送する" in page

    response = _post(world, contract_id, "resend")
    assert response.status_code == 303, response.get_data(as_text=True)
    new = world.signing_link()
    assert new != old
    refused = world.signer_client.get(old)
    assert refused.status_code == 410
    text = refused.get_data(as_text=True)
    assert "新しいリンクに置き換えられたため使えません" in text
    assert "総務部 契約課" in text
    assert world.sign_as_counterparty(old).status_code == 410

    [first, second] = _requests(world)
    assert first.status is RequestStatus.CANCELLED
    assert second.status is RequestStatus.OPEN
    mails = world.outbox("signature_request")
    assert [m.subject.startswith("【再送】") for m in mails] == [False, True]
    assert "以前" not in mails[0].body
    assert "使えなくなりました" in mails[1].body
    [event] = _events(world, "staff:contract:signature-request-resent")
    assert event.details["email"] == "yamada@keiyaku-shoji.co.jp"
    assert "署名依頼を新しいリンクで再送しました" in world.staff_client.get(
        f"/contracts/{contract_id}").get_data(as_text=True)

    signed = world.sign_as_counterparty(new)
    assert "署名手続きが完了しました" in signed.get_data(as_text=True)
    assert world.contract(contract_id).parties[0].status is PartyStatus.SIGNED


def test_resend_to_the_agency_signer_mails_their_page_again(world):
    contract_id = world.sent_contract()
    assert "署名手続きが完了しました" in world.sign_as_counterparty(world.signing_link()).get_data(as_text=True)
    assert _post(world, contract_id, "resend").status_code == 303
    mails = [m for m in world.outbox("agency_signature_request") if m.recipient == world.approver.email]
    assert [m.subject.startswith("【再送】") for m in mails] == [False, True]
    assert len(_requests(world)) == 1  # the approver signs logged in: no link to replace


@pytest.mark.parametrize("state", ["draft", "completed", "declined"])
def test_resend_is_refused_unless_a_signature_is_awaited(world, state):
    if state == "draft":
        contract_id = world.create_id()
    elif state == "completed":
        contract_id = world.completed_contract()
    else:
        contract_id = world.sent_contract()
        post_form(world.signer_client, f"{world.signing_link()}/decline", {"reason": "金額が違います"},
                  page=f"{world.signing_link()}/decline")
    requests_before = len(_requests(world))
    response = _post(world, contract_id, "resend")
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert "署名依頼の再送はできません" in text
    assert len(_requests(world)) == requests_before
    assert _events(world, "staff:contract:signature-request-resent") == []


def test_only_the_contract_s_department_uses_the_tools(app, world):
    contract_id = world.sent_contract()
    other = make_department(world.session, code="DOB", name="土木部 監理課")
    outsider = make_staff(world.session, role=Role.APPROVER, email="doboku@pref.example.jp", department=other)
    auditor = make_staff(world.session, role=Role.AUDITOR, email="kansa@pref.example.jp", department=other)
    world.session.commit()
    for user, status in ((outsider, 404), (auditor, 403)):
        client = app.test_client()
        login_as(client, user)
        token_page = "/contracts/" if status == 404 else f"/contracts/{contract_id}"
        response = post_form(client, f"/contracts/{contract_id}/resend", {}, page=token_page)
        assert response.status_code == status
    assert len(_requests(world)) == 1


def test_a_resend_does_not_undo_a_lock(app, world):
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 2
    world.sent_contract(access_code="4821")
    link = world.signing_link()
    _enter(world, link, "1111")
    assert _enter(world, link, "2222").status_code == 423
    contract_id = world.contract(_requests(world)[0].party.contract_id).id
    assert _post(world, contract_id, "resend").status_code == 303
    assert world.signer_client.get(world.signing_link()).status_code == 423
    assert _requests(world)[-1].failed_code_attempts == 2


# ---------------------------------------------------------------- unlock and the アクセスコード


def test_unlock_resets_the_count_mails_the_vendor_without_the_code_and_the_link_signs(app, world):
    app.config["ACCESS_CODE_MAX_ATTEMPTS"] = 2
    contract_id = world.sent_contract(access_code="4821")
    link = world.signing_link()
    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "ロックを解除する" not in page
    _enter(world, link, "1111")
    assert _enter(world, link, "2222").status_code == 423
    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "署名用リンクがロックされています" in page
    assert "ロックを解除する" in page

    assert _post(world, contract_id, "unlock").status_code == 303
    assert _requests(world)[0].failed_code_attempts == 0
    [mail] = world.outbox("signing_link_unlocked")
    assert mail.recipient == "yamada@keiyaku-shoji.co.jp"
    assert "ロックを解除しました" in mail.body
    assert "4821" not in mail.body
    assert "4821" not in mail.subject
    [event] = _events(world, "staff:contract:signing-link-unlocked")
    assert event.details["party"] == 1

    again = _post(world, contract_id, "unlock")
    assert again.status_code == 409
    assert "ロックされていません" in again.get_data(as_text=True)
    assert len(world.outbox("signing_link_unlocked")) == 1

    assert _enter(world, link, "4821").status_code == 303
    assert "署名手続きが完了しました" in world.sign_as_counterparty(link).get_data(as_text=True)


def test_changing_the_code_asks_browsers_again_and_tells_the_vendor_not_the_code(world):
    contract_id = world.sent_contract(access_code="4821")
    link = world.signing_link()
    assert _enter(world, link, "4821").status_code == 303
    response = _post(world, contract_id, "access-code", access_code="７３５９ＡＢ")  # full-width
    assert response.status_code == 303, response.get_data(as_text=True)

    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "7359AB" not in page
    assert "７３５９ＡＢ" not in page
    assert "アクセスコードの入力" in world.signer_client.get(link).get_data(as_text=True)
    assert _enter(world, link, "4821").status_code == 422
    assert _enter(world, link, "7359AB").status_code == 303
    [mail] = world.outbox("access_code_changed")
    assert mail.recipient == "yamada@keiyaku-shoji.co.jp"
    assert "7359" not in mail.body
    assert "4821" not in mail.body
    [event] = _events(world, "staff:contract:access-code-changed")
    assert event.details["replaced"] is True
    assert "7359" not in str(event.details)
    contract = world.contract(contract_id)
    assert contract.access_code_hash
    assert "7359" not in contract.access_code_hash


def test_a_code_set_before_sending_mails_nobody(world):
    contract_id = world.create_id()
    assert _post(world, contract_id, "access-code", access_code="2468").status_code == 303
    assert world.contract(contract_id).has_access_code
    assert world.outbox("access_code_changed") == []


@pytest.mark.parametrize(("code", "message"), [
    ("48\x0021", "改行や制御文字は使えません"),
    ("4821\u202e", "改行や制御文字は使えません"),
    ("48\n21", "改行や制御文字は使えません"),
    ("1" * 10_000, "32文字以内"),
    ("1" * 33, "32文字以内"),
    ("１２３", "4文字以上32文字以内"),
    ("   ", "入力してください"),
    ("", "入力してください"),
])
def test_hostile_codes_are_refused_in_japanese_and_change_nothing(world, code, message):
    contract_id = world.sent_contract(access_code="4821")
    before = world.contract(contract_id).access_code_hash
    response = _post(world, contract_id, "access-code", access_code=code)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert world.contract(contract_id).access_code_hash == before
    assert _events(world, "staff:contract:access-code-changed") == []


def test_the_service_checks_codes_itself():
    from portal.contracts.sender import checked_access_code
    from portal.errors import DomainError

    assert checked_access_code("\u3000４８２１ ") == "4821"
    for code in ("48\u200b21", "1" * 101, "12", "<script>" * 5):
        with pytest.raises(DomainError):
            checked_access_code(code)


def test_the_code_cannot_change_after_the_vendor_signed(world):
    contract_id = world.sent_contract(access_code="4821")
    link = world.signing_link()
    assert _enter(world, link, "4821").status_code == 303
    assert "署名手続きが完了しました" in world.sign_as_counterparty(link).get_data(as_text=True)
    response = _post(world, contract_id, "access-code", access_code="9999")
    assert response.status_code == 409
    assert "相手方はすでに署名済みです" in response.get_data(as_text=True)


# ---------------------------------------------------------------- ダウンロード用リンクを再発行


def _download_links(world) -> list[DownloadLink]:
    world.refresh()
    return list(world.session.scalars(select(DownloadLink).order_by(DownloadLink.id)))


def test_a_new_download_link_to_the_vendor_after_the_old_one_expired(app, world):
    contract_id = world.completed_contract(make_pdf("Agreement"))
    vendor = "yamada@keiyaku-shoji.co.jp"
    old = world.download_path(vendor)
    days = app.config["DOWNLOAD_LINK_DAYS"]
    clock.freeze(clock.now() + timedelta(days=days, minutes=1))
    assert world.signer_client.get(old).status_code == 410

    party_id = world.party_ids(contract_id)[0]
    response = _post(world, contract_id, "download-links", recipient=f"party-{party_id}")
    assert response.status_code == 303, response.get_data(as_text=True)
    [mail] = world.outbox("download_link_reissued")
    assert mail.recipient == vendor
    assert mail.subject.startswith("【再発行】締結済み文書のダウンロード用リンク")
    assert f"{days}日間" in mail.body
    match = DOWNLOAD_RE.search(world.delivered_body(mail))
    assert match
    new = "/d/" + match.group(0).rsplit("/d/", 1)[1]
    page = world.signer_client.get(new)
    assert page.status_code == 200
    assert world.signer_client.get(old).status_code == 410  # old links keep their own expiry
    link = _download_links(world)[-1]
    assert link.recipient == vendor
    assert link.expires_at == clock.now() + timedelta(days=days)
    [event] = _events(world, "staff:contract:download-link-reissued")
    assert event.details["recipient"] == vendor


def test_a_new_download_link_to_a_staff_member_and_unknown_recipients_refused(world):
    contract_id = world.completed_contract()
    links_before = len(_download_links(world))
    assert _post(world, contract_id, "download-links", recipient=f"staff-{world.staff.id}").status_code == 303
    [mail] = world.outbox("download_link_reissued")
    assert mail.recipient == world.staff.email
    for hostile in ("staff-999999", "party-0", "staff-1' OR '1'='1", "x" * 5000, ""):
        response = _post(world, contract_id, "download-links", recipient=hostile)
        assert response.status_code == 422
        assert "送付先" in response.get_data(as_text=True)
    assert len(_download_links(world)) == links_before + 1


def test_no_download_link_before_completion(world):
    contract_id = world.sent_contract()
    party_id = world.party_ids(contract_id)[0]
    response = _post(world, contract_id, "download-links", recipient=f"party-{party_id}")
    assert response.status_code == 409
    assert "まだ締結されていません" in response.get_data(as_text=True)
    world.refresh()
    assert world.session.scalar(select(func.count()).select_from(DownloadLink)) == 0


def test_an_agency_signer_of_another_department_sees_the_contract_but_not_the_tools(app, world):
    other = make_department(world.session, code="DOB", name="土木部 監理課")
    signer = make_staff(world.session, role=Role.APPROVER, email="doboku@pref.example.jp", department=other)
    world.session.commit()
    contract_id = world.create_id(approver_email=signer.email)
    world.upload(contract_id, (make_pdf("Agreement"), "doc1.pdf"))
    assert world.approve(contract_id).status_code == 303
    assert world.send(contract_id).status_code == 303
    client = app.test_client()
    login_as(client, signer)
    page = client.get(f"/contracts/{contract_id}")
    assert page.status_code == 200
    assert "署名依頼を再送する" not in page.get_data(as_text=True)
    response = post_form(client, f"/contracts/{contract_id}/resend", {}, page=f"/contracts/{contract_id}")
    assert response.status_code == 403
    assert "契約を担当する所属の担当者・承認者だけ" in response.get_data(as_text=True)
    assert len(_requests(world)) == 1
