"""「この契約を複製して作成」: a declined, paper, cancelled or completed contract starts a new draft with a
new number, its metadata and signers, and (「文書もコピーする」) its unsigned originals, never a signed revision."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.contracts.models import Contract, ContractStatus, RevisionKind
from tests.conftest import csrf_from, post_form
from tests.contracts.fixtures import World
from tests.pdfs import make_pdf


def declined_contract(world: World) -> int:
    contract_id = world.sent_contract(make_pdf("Agreement", 2), make_pdf("Specification"))
    response = post_form(world.signer_client, f"{world.signing_link()}/decline", {"reason": "金額に誤りがあります"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert world.contract(contract_id).status is ContractStatus.DECLINED
    return contract_id


def copy(world: World, contract_id: int, **overrides: Any) -> Any:
    page = f"/contracts/{contract_id}/copy"
    return post_form(world.staff_client, page, world.contract_form(**overrides), page=page)


def new_id(response: Any) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def test_a_declined_contract_is_copied_with_its_fields_signers_and_documents(world):
    original_id = declined_contract(world)
    page = world.staff_client.get(f"/contracts/{original_id}").get_data(as_text=True)
    assert f'href="/contracts/{original_id}/copy"' in page
    assert "この契約を複製して作成" in page
    form = world.staff_client.get(f"/contracts/{original_id}/copy").get_data(as_text=True)
    assert 'value="庁舎清掃業務委託"' in form
    assert 'value="yamada@keiyaku-shoji.co.jp"' in form
    assert re.search(r'<input[^>]* checked [^>]*id="copy_documents"', form)

    copy_id = new_id(copy(world, original_id, copy_documents="y"))
    original, copied = world.contract(original_id), world.contract(copy_id)
    assert copied.number != original.number
    assert copied.status is ContractStatus.DRAFT
    assert copied.copied_from_id == original.id
    for name in ("business_name", "counterparty_name", "amount", "tax_amount", "term_start", "term_end",
                 "contract_type"):
        assert getattr(copied, name) == getattr(original, name), name
    assert [(p.role, p.name, p.email) for p in copied.parties] == [(p.role, p.name, p.email)
                                                                   for p in original.parties]
    assert all(p.status.value == "waiting" for p in copied.parties)
    assert [(d.filename, d.display_title, d.page_count) for d in copied.documents] == [
        (d.filename, d.display_title, d.page_count) for d in original.documents]
    assert [d.original.sha256 for d in copied.documents] == [d.original.sha256 for d in original.documents]
    assert all(d.uploaded_by_id == world.staff.id and len(d.revisions) == 1 for d in copied.documents)
    assert copied.approved_at is None
    assert copied.approval_reference == ""

    [event] = world.session.scalars(select(AuditEvent).where(AuditEvent.subject_id == str(copy_id),
                                                             AuditEvent.action == "staff:contract:duplicated"))
    assert event.details["copied_from"] == original.number
    assert event.details["copied_from_id"] == original.id
    shown = world.staff_client.get(f"/contracts/{copy_id}").get_data(as_text=True)
    assert f'<a href="/contracts/{original_id}">{original.number}' in shown
    assert "複製して新しい契約を作成しました" in shown
    assert f"複製元: {original.number}" in shown
    assert f'<a href="/contracts/{copy_id}">{copied.number}' in world.staff_client.get(
        f"/contracts/{original_id}").get_data(as_text=True)


def test_without_the_checkbox_no_document_is_copied(world):
    original_id = declined_contract(world)
    copy_id = new_id(copy(world, original_id, business_name="庁舎清掃業務委託（再）"))
    copied = world.contract(copy_id)
    assert copied.documents == []
    assert copied.business_name == "庁舎清掃業務委託（再）"
    assert world.contract(original_id).business_name == "庁舎清掃業務委託"


def test_a_completed_contract_gives_its_unsigned_originals_only(world):
    original_id = world.completed_contract(make_pdf("Agreement"))
    original = world.contract(original_id)
    assert original.documents[0].current.kind is RevisionKind.FINAL
    copy_id = new_id(copy(world, original_id, copy_documents="y", business_name="令和9年度 庁舎清掃業務委託"))
    [document] = world.contract(copy_id).documents
    assert [r.kind for r in document.revisions] == [RevisionKind.ORIGINAL]
    assert document.original.sha256 == original.documents[0].original.sha256
    assert document.original.sha256 not in {r.sha256 for r in original.documents[0].revisions[1:]}
    assert world.staff_client.get(f"/contracts/{copy_id}/documents/{document.id}/download").status_code == 200


@pytest.mark.parametrize("state", ["draft", "sent"])
def test_a_contract_that_can_still_be_signed_is_not_copied(world, state):
    contract_id = world.create_id() if state == "draft" else world.sent_contract()
    assert "この契約を複製して作成" not in world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    refused = world.staff_client.get(f"/contracts/{contract_id}/copy")
    assert refused.status_code == 409
    assert "複製できるのは、差し戻し・紙契約へ移行・取消・締結済みの契約です" in refused.get_data(as_text=True)
    token = csrf_from(world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True))
    posted = world.staff_client.post(f"/contracts/{contract_id}/copy",
                                     data={"csrf_token": token, **world.contract_form()})
    assert posted.status_code == 409
    world.refresh()
    assert len(list(world.session.scalars(select(Contract)))) == 1


def test_a_passed_planned_date_is_not_carried_over_and_the_rules_apply(world):
    from datetime import timedelta

    from portal import clock

    original_id = declined_contract(world)
    contract = world.contract(original_id)
    contract.planned_conclusion_date = clock.now().date() - timedelta(days=3)
    world.session.commit()
    form = world.staff_client.get(f"/contracts/{original_id}/copy").get_data(as_text=True)
    assert f'value="{contract.planned_conclusion_date.isoformat()}"' not in form
    refused = copy(world, original_id, auto_renewal="y")
    assert refused.status_code == 422
    assert "自動更新条項が設けられた契約は、電子契約の対象外です" in refused.get_data(as_text=True)
    assert "文書もコピーする" in refused.get_data(as_text=True)


def test_copy_needs_csrf_and_its_department(world):
    from portal.auth.models import Role
    from tests.factories import login_as, make_department, make_staff

    original_id = declined_contract(world)
    assert world.staff_client.post(f"/contracts/{original_id}/copy", data=world.contract_form()).status_code == 400
    other = make_staff(world.session, role=Role.STAFF, email="other@pref.example.jp",
                       department=make_department(world.session, code="DOB", name="土木部"))
    client = world.app.test_client()
    login_as(client, other)
    assert client.get(f"/contracts/{original_id}/copy").status_code == 404
    world.refresh()
    assert len(list(world.session.scalars(select(Contract)))) == 1


@pytest.mark.parametrize(("overrides", "message"), [
    ({"business_name": "清掃\u202e業務"}, "改行や制御文字"),
    ({"signer_name": "あ" * 10_000}, "100文字以内"),
    ({"amount": "1" * 30}, "以下の金額（円）を入力してください"),
])
def test_hostile_input_on_the_copy_form_makes_no_contract(world, overrides, message):
    original_id = declined_contract(world)
    response = copy(world, original_id, copy_documents="y", **overrides)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    world.refresh()
    assert len(list(world.session.scalars(select(Contract)))) == 1


def test_markup_in_a_copied_name_stays_text(world):
    original_id = declined_contract(world)
    copy_id = new_id(copy(world, original_id, business_name="<script>alert(1)</script>清掃"))
    html = world.staff_client.get(f"/contracts/{copy_id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;清掃" in html
