"""「編集する」: a draft's metadata and signers change until it is sent; after 決裁 the approval is voided;
every edit is one audit event with each field's old and new value; the rules of a new draft apply again."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.contracts.eligibility import AUTO_RENEWAL, NO_END_DATE, PAPER_BY_LAW, term_too_long
from portal.contracts.models import ContractStatus, PartyRole
from tests.conftest import csrf_from, post_form
from tests.contracts.fixtures import World, today
from tests.pdfs import make_pdf

NEW_SIGNER = {"signer_title": "取締役社長", "signer_name": "鈴木 次郎", "signer_email": "suzuki@keiyaku-shoji.co.jp"}


def edit(world: World, contract_id: int, client: Any = None, **overrides: Any) -> Any:
    page = f"/contracts/{contract_id}/edit"
    return post_form(client or world.staff_client, page, world.contract_form(**overrides), page=page)


def events(world: World, contract_id: int, action: str) -> list[AuditEvent]:
    world.refresh()
    return list(world.session.scalars(select(AuditEvent).where(AuditEvent.subject_id == str(contract_id),
                                                               AuditEvent.action == action)
                                      .order_by(AuditEvent.id)))


def draft_with_document(world: World, **overrides: Any) -> int:
    contract_id = world.create_id(**overrides)
    assert world.upload(contract_id, (make_pdf("Agreement"), "契約書.pdf")).status_code == 200
    return contract_id


def test_the_edit_page_is_the_contract_form_filled_in(world):
    contract_id = world.create_id(access_code="1234")
    page = world.staff_client.get(f"/contracts/{contract_id}")
    assert f'href="/contracts/{contract_id}/edit"' in page.get_data(as_text=True)
    html = world.staff_client.get(f"/contracts/{contract_id}/edit").get_data(as_text=True)
    assert 'value="庁舎清掃業務委託"' in html
    assert 'value="1100000"' in html
    assert 'value="yamada@keiyaku-shoji.co.jp"' in html
    assert 'value="1234"' not in html  # only the hash is kept, never shown
    assert "アクセスコードを削除する" in html
    assert "送信するまでは内容を変更できます" in html


def test_an_edit_changes_amount_and_signer_and_logs_old_and_new(world):
    contract_id = draft_with_document(world)
    response = edit(world, contract_id, amount="1210000", tax_amount="110000", **NEW_SIGNER)
    assert response.status_code == 303, response.get_data(as_text=True)

    contract = world.contract(contract_id)
    assert (contract.amount, contract.tax_amount) == (1_210_000, 110_000)
    counterparty = next(p for p in contract.parties if p.role is PartyRole.COUNTERPARTY)
    assert (counterparty.title, counterparty.name, counterparty.email) == ("取締役社長", "鈴木 次郎",
                                                                         "suzuki@keiyaku-shoji.co.jp")
    assert [p.position for p in contract.parties] == [1, 2]
    [event] = events(world, contract_id, "staff:contract:edited")
    changes = {c["field"]: (c["old"], c["new"]) for c in event.details["changes"]}
    assert changes["amount"] == ("金1,100,000円", "金1,210,000円")
    assert changes["tax_amount"] == ("金100,000円", "金110,000円")
    assert "山田 太郎" in changes["signer1"][0]
    assert "鈴木 次郎" in changes["signer1"][1]
    assert set(changes) == {"amount", "tax_amount", "signer1"}
    assert event.actor_user_id == world.staff.id

    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "変更を保存しました（契約金額（税込）、うち消費税額、署名者1（相手方））" in page
    assert "の内容を編集しました" in page
    assert "契約金額（税込）: 金1,100,000円 → 金1,210,000円" in page
    assert "suzuki@keiyaku-shoji.co.jp" in page


def test_an_edit_after_approval_voids_it_and_the_page_says_so_first(world):
    contract_id = draft_with_document(world)
    assert world.approve(contract_id).status_code == 303
    html = world.staff_client.get(f"/contracts/{contract_id}/edit").get_data(as_text=True)
    assert "決裁の確認は取り消されて下書きに戻り、送信する前に承認者がもう一度決裁を確認する必要があります" in html

    response = edit(world, contract_id, business_name="庁舎清掃業務委託（本館）")
    assert response.status_code == 303, response.get_data(as_text=True)
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.DRAFT
    assert contract.approved_at is None
    [voided] = events(world, contract_id, "system:contract:approval-voided")
    assert voided.details["reason"] == "契約内容の変更"
    assert voided.details["previous_reference"] == "総契第123号"
    assert "決裁の確認は取り消されました" in world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)

    refused = world.send(contract_id)
    assert refused.status_code == 422
    assert "決裁（内部承認）が確認されていません" in refused.get_data(as_text=True)
    assert world.approve(contract_id, reference="総契第124号").status_code == 303
    assert world.send(contract_id).status_code == 303
    assert world.contract(contract_id).status is ContractStatus.AWAITING_COUNTERPARTY


def test_saving_without_a_change_keeps_the_approval(world):
    contract_id = draft_with_document(world)
    assert world.approve(contract_id).status_code == 303
    assert edit(world, contract_id).status_code == 303
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.APPROVED
    assert contract.approved_at is not None
    assert events(world, contract_id, "staff:contract:edited") == []
    assert "変更された項目はありませんでした" in world.staff_client.get(f"/contracts/{contract_id}").get_data(
        as_text=True)


def test_a_sent_contract_cannot_be_edited(world):
    contract_id = world.sent_contract()
    page = world.staff_client.get(f"/contracts/{contract_id}")
    assert f"/contracts/{contract_id}/edit" not in page.get_data(as_text=True)
    refused = world.staff_client.get(f"/contracts/{contract_id}/edit")
    assert refused.status_code == 409
    message = "この契約はすでに署名依頼を送信済みです。契約の内容は変更できません。"
    assert message in refused.get_data(as_text=True)
    page_token = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    posted = world.staff_client.post(f"/contracts/{contract_id}/edit",
                                     data={"csrf_token": csrf_from(page_token), **world.contract_form(amount="1")})
    assert posted.status_code == 409
    assert message in posted.get_data(as_text=True)
    assert world.contract(contract_id).amount == 1_100_000
    assert events(world, contract_id, "staff:contract:edited") == []


@pytest.mark.parametrize(("overrides", "message"), [
    ({"auto_renewal": "y"}, AUTO_RENEWAL),
    ({"paper_required_by_law": "y"}, PAPER_BY_LAW),
    ({"term_end": ""}, NO_END_DATE),
    ({"term_end": (today() + timedelta(days=365 * 11)).isoformat()}, term_too_long(10)),
    ({"planned_conclusion_date": (today() - timedelta(days=1)).isoformat()}, "締結予定日が過ぎています"),
    ({"tax_amount": "2000000"}, "消費税額が契約金額（税込）を超えています"),
    ({"signer_email": "someone@gmail.com"}, "フリーメール"),
    ({"signer_email": "tanto@pref.example.jp"}, "職員のアカウント"),
])
def test_the_rules_of_a_new_draft_apply_to_an_edit(world, overrides, message):
    contract_id = world.create_id()
    response = edit(world, contract_id, **overrides)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert message in response.get_data(as_text=True)
    contract = world.contract(contract_id)
    assert (contract.auto_renewal, contract.term_end is not None, contract.parties[0].email) == (
        False, True, "yamada@keiyaku-shoji.co.jp")
    assert events(world, contract_id, "staff:contract:edited") == []


@pytest.mark.parametrize(("overrides", "message"), [
    ({"business_name": "清掃\x00業務"}, "改行や制御文字"),
    ({"business_name": "清掃\u202e業務"}, "改行や制御文字"),
    ({"signer_name": "山田\n太郎"}, "改行や制御文字"),
    ({"business_name": "あ" * 100_000}, "200文字以内"),
    ({"signer_email": "a" * 300 + "@keiyaku-shoji.co.jp"}, "254文字以内"),
    ({"amount": "9" * 40}, "以下の金額（円）を入力してください"),
    ({"amount": "-1"}, "以下の金額（円）を入力してください"),
    ({"transaction_date": "令和八年<script>"}, "YYYY-MM-DD"),
    ({"transaction_date": "2026-02-30"}, "YYYY-MM-DD"),
    ({"amount": "１,０００"}, "半角数字（整数）で入力してください"),
    ({"approver_email": "nobody@pref.example.jp"}, "一覧から選択してください"),
])
def test_hostile_input_is_refused_in_japanese_and_changes_nothing(world, overrides, message):
    contract_id = world.create_id()
    response = edit(world, contract_id, **overrides)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert "Not a valid" not in response.get_data(as_text=True)
    assert world.contract(contract_id).business_name == "庁舎清掃業務委託"
    assert events(world, contract_id, "staff:contract:edited") == []


def test_markup_is_saved_as_text_and_shown_escaped(world):
    contract_id = world.create_id()
    markup = '<img src=x onerror="alert(1)">清掃'
    assert edit(world, contract_id, business_name=markup).status_code == 303
    assert world.contract(contract_id).business_name == markup
    for path in (f"/contracts/{contract_id}", f"/contracts/{contract_id}/edit", "/audit/"):
        html = world.staff_client.get(path).get_data(as_text=True)
        assert "<img src=x" not in html


def test_the_edit_form_needs_its_csrf_token(world):
    contract_id = world.create_id()
    response = world.staff_client.post(f"/contracts/{contract_id}/edit", data=world.contract_form(amount="5"))
    assert response.status_code == 400
    assert world.contract(contract_id).amount == 1_100_000


def test_the_access_code_is_changed_or_removed_but_never_logged(world):
    contract_id = world.create_id(access_code="1234")
    before = world.contract(contract_id).access_code_hash
    assert edit(world, contract_id).status_code == 303  # blank: kept
    assert world.contract(contract_id).access_code_hash == before
    assert edit(world, contract_id, access_code="５６７８").status_code == 303
    assert world.contract(contract_id).access_code_hash not in (None, before)
    assert edit(world, contract_id, remove_access_code="y").status_code == 303
    assert world.contract(contract_id).access_code_hash is None
    logged = [c for e in events(world, contract_id, "staff:contract:edited") for c in e.details["changes"]]
    assert [(c["old"], c["new"]) for c in logged] == [("設定あり", "設定あり（変更）"), ("設定あり", "なし")]
    assert "5678" not in str(logged)
    assert "５６７８" not in str(logged)


def test_other_departments_and_auditors_cannot_edit(world):
    from portal.auth.models import Role
    from tests.factories import login_as, make_department, make_staff

    contract_id = world.create_id()
    other = make_staff(world.session, role=Role.STAFF, email="other@pref.example.jp",
                       department=make_department(world.session, code="DOB", name="土木部"))
    client = world.app.test_client()
    login_as(client, other)
    assert client.get(f"/contracts/{contract_id}/edit").status_code == 404
    auditor = make_staff(world.session, role=Role.AUDITOR, email="kansa@pref.example.jp",
                         department=world.department)
    client = world.app.test_client()
    login_as(client, auditor)
    assert client.get(f"/contracts/{contract_id}/edit").status_code == 403


def test_an_approval_given_on_a_page_drawn_before_an_edit_is_refused(world):
    """The approver opened the page, the clerk edited, then the approver pressed the button."""
    contract_id = draft_with_document(world)
    page = world.approver_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    seen = re.search(r'name="seen_version" type="hidden" value="([^"]+)"|'
                     r'id="seen_version" name="seen_version" type="hidden" value="([^"]+)"', page)
    assert seen, page
    version = seen.group(1) or seen.group(2)
    assert edit(world, contract_id, amount="2200000", tax_amount="200000").status_code == 303
    response = world.approver_client.post(f"/contracts/{contract_id}/approve", data={
        "csrf_token": csrf_from(page), "reference": "総契第123号", "seen_version": version})
    assert response.status_code == 409
    assert "この契約は画面を表示した後に変更されています" in response.get_data(as_text=True)
    assert world.contract(contract_id).approved_at is None
