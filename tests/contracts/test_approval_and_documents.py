"""R13 internal approval, document upload checks, staff visibility."""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.contracts.models import ContractStatus
from portal.signing.inputs import EncryptedPdf, NotAPdf, TruncatedPdf
from tests.api.helpers import bearer, token_for
from tests.conftest import post_form
from tests.contracts.fixtures import today
from tests.factories import login_as, make_department, make_staff
from tests.pdfs import make_pdf


def test_uploader_cannot_approve_own_upload(world):
    contract_id = world.create_id(client=None)
    world.upload(contract_id, (make_pdf(), "a.pdf"), client=world.approver_client)
    response = world.approve(contract_id)
    assert response.status_code == 403
    assert "自分のアップロードを承認できません" in response.get_data(as_text=True)
    assert world.contract(contract_id).approved_at is None


def test_staff_role_cannot_approve(world):
    contract_id = world.create_id()
    world.upload(contract_id, (make_pdf(), "a.pdf"))
    response = world.approve(contract_id, client=world.staff_client)
    assert response.status_code == 403
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.DRAFT
    assert contract.approved_at is None
    assert contract.approval_reference == ""


def test_changing_a_document_voids_the_approval_and_blocks_sending(world):
    contract_id = world.create_id()
    world.upload(contract_id, (make_pdf("v1"), "a.pdf"))
    assert world.approve(contract_id).status_code == 303
    assert "決裁確認済み" in world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)

    world.upload(contract_id, (make_pdf("added later"), "b.pdf"))
    contract = world.contract(contract_id)
    assert contract.approved_at is None
    response = world.send(contract_id)
    assert response.status_code == 422
    assert "決裁（内部承認）が確認されていません" in response.get_data(as_text=True)
    assert world.outbox("signature_request") == []
    actions = list(world.session.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == str(contract_id))))
    assert "system:contract:approval-voided" in actions

    assert world.approve(contract_id, reference="総契第124号").status_code == 303
    assert world.send(contract_id).status_code == 303
    assert world.contract(contract_id).status is ContractStatus.AWAITING_COUNTERPARTY


def test_sending_without_approval_is_refused(world):
    contract_id = world.create_id()
    world.upload(contract_id, (make_pdf(), "a.pdf"))
    assert world.send(contract_id).status_code == 422
    assert world.outbox() == []


def test_broken_uploads_are_refused_with_their_message(world):
    contract_id = world.create_id()
    good = make_pdf()
    response = world.upload(contract_id, (b"PK\x03\x04 not a pdf", "memo.docx"), (good[: len(good) // 2], "cut.pdf"),
                            (good, "ok.pdf"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f"memo.docx: {NotAPdf.default_message}" in html
    assert f"cut.pdf: {TruncatedPdf.default_message}" in html
    assert [d.filename for d in world.contract(contract_id).documents] == ["ok.pdf"]


def test_encrypted_pdf_is_refused(world):
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(make_pdf())))
    writer.encrypt("owner-secret", "user-secret")
    out = io.BytesIO()
    writer.write(out)
    contract_id = world.create_id()
    response = world.upload(contract_id, (out.getvalue(), "locked.pdf"))
    assert response.status_code == 422
    assert EncryptedPdf.default_message in response.get_data(as_text=True)


def test_other_departments_cannot_see_a_contract(app, world):
    contract_id = world.create_id()
    other = make_staff(world.session, role=Role.STAFF, email="other@pref.example.jp",
                       department=make_department(world.session, code="DOB", name="土木部"))
    client = app.test_client()
    login_as(client, other)
    assert client.get(f"/contracts/{contract_id}").status_code == 404
    assert "庁舎清掃業務委託" not in client.get("/contracts/").get_data(as_text=True)


def test_dashboard_lists_by_status_with_htmx_partial(world):
    world.create_id()
    page = world.staff_client.get("/contracts/?status=draft", headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert page.headers["Vary"].count("HX-Request")
    html = page.get_data(as_text=True)
    assert "<html" not in html
    assert "庁舎清掃業務委託" in html
    assert "下書き" in html


def test_a_department_sends_only_from_its_go_live_date(app, world):
    world.department.go_live_date = today() + timedelta(days=30)
    world.session.commit()
    contract_id = world.create_id()
    assert world.upload(contract_id, (make_pdf(), "a.pdf")).status_code == 200
    assert world.approve(contract_id).status_code == 303
    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "電子契約の導入日" in page
    assert "署名依頼を送信する" not in page
    response = world.send(contract_id)
    assert response.status_code == 422
    assert "電子契約の導入日" in response.get_data(as_text=True)
    world.refresh()
    assert world.contract(contract_id).status is ContractStatus.APPROVED
    assert world.outbox("signature_request") == []
    token = token_for(app, world.staff.email)
    api = app.test_client().post(f"/api/v1/contracts/{contract_id}/send", headers=bearer(token))
    assert api.status_code == 422
    assert "電子契約の導入日" in api.get_json()["detail"]

    world.department.go_live_date = today()
    world.session.commit()
    assert "署名依頼を送信する" in world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert world.send(contract_id).status_code == 303


def test_paper_and_cancel_reasons_are_checked(world):
    contract_id = world.sent_contract()
    for action in ("paper", "cancel"):
        for reason, message in (("理" * 2001, "2000文字以内"), ("紙で\x00締結", "制御文字"), ("", "理由を入力")):
            response = post_form(world.staff_client, f"/contracts/{contract_id}/{action}", {"reason": reason},
                                 page=f"/contracts/{contract_id}")
            assert response.status_code == 422, (action, reason[:5])
            assert message in response.get_data(as_text=True)
    world.refresh()
    assert world.contract(contract_id).status is ContractStatus.AWAITING_COUNTERPARTY
    kept = "業者の都合により紙で締結する。\n（電話で確認済み）"
    assert post_form(world.staff_client, f"/contracts/{contract_id}/paper", {"reason": kept},
                     page=f"/contracts/{contract_id}").status_code == 303
    world.refresh()
    assert world.contract(contract_id).status_reason == kept
