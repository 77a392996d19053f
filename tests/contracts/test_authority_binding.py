"""The usage request binds the contract (R10): a registered 取引先, its 契約締結権限者 as the signer; another
signer or a 取引先 without 申出書 only with a reason, kept on the contract and in the log (R11)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.contracts.models import Contract, PartyRole
from portal.counterparties.models import Counterparty
from tests.api.helpers import bearer, metadata, token_for
from tests.conftest import post_form
from tests.factories import login_as, make_staff


def _contracts(world) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(Contract))


def _events(world, action: AuditAction) -> list[AuditEvent]:
    world.refresh()
    return list(world.session.scalars(select(AuditEvent).where(AuditEvent.action == action.value)))


def _counterparty_signer(contract: Contract):
    return next(p for p in contract.parties if p.role is PartyRole.COUNTERPARTY)


def _unregistered(world, name: str = "株式会社みまさか建設") -> Counterparty:
    from portal import clock
    from portal.counterparties import service as counterparties

    counterparty = counterparties.upsert_counterparty(world.session, name=name, now=clock.now())
    world.session.commit()
    return counterparty


def test_the_form_starts_with_a_picker_and_shows_the_registered_authority_read_only(world):
    counterparty = world.register_counterparty(signer="山田 太郎")
    picker = world.staff_client.get("/contracts/new?q=けいやく").get_data(as_text=True)
    assert "取引先を選ぶ" in picker
    assert f"/contracts/new?counterparty={counterparty.id}" in picker
    partial = world.staff_client.get("/contracts/new?q=ケイヤク", headers={"HX-Request": "true",
                                                                       "HX-Target": "counterparty-results"})
    assert partial.get_data(as_text=True).lstrip().startswith('<div id="counterparty-results"')
    form = world.staff_client.get(f"/contracts/new?counterparty={counterparty.id}").get_data(as_text=True)
    assert 'id="registered-authority"' in form
    assert "yamada@keiyaku-shoji.co.jp" in form


def test_without_override_the_registered_authority_signs_whatever_was_posted(world):
    contract_id = world.create_id()
    party = _counterparty_signer(world.contract(contract_id))
    assert (party.name, party.email, party.signing_authority_id) == ("山田 太郎", "yamada@keiyaku-shoji.co.jp",
                                                                    party.signing_authority.id)
    assert party.signer_override_reason == ""
    # A tampered post (signer fields without the override box) is ignored: the authority signs.
    form = world.contract_form()
    form.update(signer_name="偽 太郎", signer_email="nise@keiyaku-shoji.co.jp")
    response = post_form(world.staff_client, "/contracts/new", form)
    assert response.status_code == 303
    contract = world.contract(int(response.headers["Location"].rsplit("/", 1)[1]))
    assert _counterparty_signer(contract).email == "yamada@keiyaku-shoji.co.jp"
    assert _events(world, AuditAction.CONTRACT_SIGNER_OVERRIDDEN) == []


def test_another_signer_needs_a_reason_that_is_logged_and_shown(world):
    response = world.create(signer_name="鈴木 次郎", signer_email="suzuki@keiyaku-shoji.co.jp",
                            signer_override_reason="")
    assert response.status_code == 422
    assert "別の署名者にする理由を入力してください。" in response.get_data(as_text=True)
    assert _contracts(world) == 0
    contract_id = world.create_id(signer_name="鈴木 次郎", signer_email="suzuki@keiyaku-shoji.co.jp",
                                  signer_override_reason="大阪支店長に契約締結権限を委任（委任状受領）")
    party = _counterparty_signer(world.contract(contract_id))
    assert party.signing_authority_id is None
    assert party.signer_override_reason == "大阪支店長に契約締結権限を委任（委任状受領）"
    [event] = _events(world, AuditAction.CONTRACT_SIGNER_OVERRIDDEN)
    assert event.details["reason"] == "大阪支店長に契約締結権限を委任（委任状受領）"
    assert "suzuki@keiyaku-shoji.co.jp" in event.details["signer"]
    assert "yamada@keiyaku-shoji.co.jp" in event.details["registered_signer"]
    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "登録された契約締結権限者とは別の署名者です。理由: 大阪支店長に契約締結権限を委任（委任状受領）" in page
    assert "登録された契約締結権限者と異なる署名者を指定しました" in page  # the contract's 履歴


def test_the_service_refuses_another_signer_without_a_reason_even_when_the_form_is_bypassed(world):
    from portal.contracts.authority import SignerNotRegistered
    from tests.factories import make_contract

    world.register_counterparty()
    with pytest.raises(SignerNotRegistered, match="契約締結権限者"):
        make_contract(world.session, staff=world.staff, approver=world.approver,
                      signer_email="other@keiyaku-shoji.co.jp")
    world.session.rollback()


def test_a_counterparty_without_accepted_usage_request_cannot_be_chosen(app, world):
    counterparty = _unregistered(world)
    picker = world.staff_client.get("/contracts/new?q=みまさか").get_data(as_text=True)
    assert "受付済みの申出書がないため選べません" in picker
    assert f"counterparty={counterparty.id}" not in picker
    page = world.staff_client.get(f"/contracts/new?counterparty={counterparty.id}")
    assert page.status_code == 422
    assert "受付済みの電子契約利用申出書がないため、選択できません" in page.get_data(as_text=True)
    response = world.create(counterparty_id=str(counterparty.id), signer_title="社長", signer_name="美作 一",
                            signer_email="hajime@mimasaka.co.jp")
    assert response.status_code == 422
    assert "電子契約利用申出書" in response.get_data(as_text=True)
    assert _contracts(world) == 0


def test_an_administrator_may_choose_it_with_a_reason_kept_on_the_contract(app, world):
    admin = make_staff(world.session, role=Role.ADMIN, email="kanri@pref.example.jp", name="管理 太郎",
                       department=world.department)
    client = app.test_client()
    login_as(client, admin)
    counterparty = _unregistered(world)
    fields = {"counterparty_id": str(counterparty.id), "signer_title": "社長", "signer_name": "美作 一",
              "signer_email": "hajime@mimasaka.co.jp"}
    assert world.create(client, **fields).status_code == 422
    contract_id = world.create_id(client=client, **fields,
                                  counterparty_override_reason="災害復旧の緊急工事で申出書は後日提出")
    contract = world.contract(contract_id)
    assert contract.counterparty_override_reason == "災害復旧の緊急工事で申出書は後日提出"
    [event] = _events(world, AuditAction.CONTRACT_UNREGISTERED_COUNTERPARTY_ALLOWED)
    assert event.details["reason"] == "災害復旧の緊急工事で申出書は後日提出"
    assert "申出書は後日提出" in client.get(f"/contracts/{contract_id}").get_data(as_text=True)


def test_a_counterparty_that_declined_gets_a_paper_message(world):
    counterparty = world.register_counterparty()
    counterparty.declined_e_contract, counterparty.declined_reason = True, "電話で書面を希望"
    world.session.commit()
    page = world.staff_client.get(f"/contracts/new?counterparty={counterparty.id}")
    assert page.status_code == 422
    assert "紙の契約書で締結してください" in page.get_data(as_text=True)
    response = world.create()
    assert response.status_code == 422
    assert "紙の契約書で締結してください" in response.get_data(as_text=True)
    assert _contracts(world) == 0


@pytest.mark.parametrize(("value", "message"), [
    ("理" * 501, "500文字以内"),
    ("一行目\n二行目", "改行や制御文字"),
    ("理由\u202e反転", "改行や制御文字"),
])
def test_hostile_override_reasons_are_refused(world, value, message):
    response = world.create(signer_name="鈴木 次郎", signer_email="suzuki@keiyaku-shoji.co.jp",
                            signer_override_reason=value)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _contracts(world) == 0


def test_markup_in_a_reason_is_shown_as_text(world):
    contract_id = world.create_id(signer_name="鈴木 次郎", signer_email="suzuki@keiyaku-shoji.co.jp",
                                  signer_override_reason="<script>alert(1)</script>")
    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("value", ["abc", "-1", "9" * 30, "1.5", "１"])
def test_a_hostile_counterparty_id_is_a_japanese_refusal(world, value):
    world.register_counterparty()
    response = world.create(counterparty_id=value)
    assert response.status_code == 422
    assert "取引先" in response.get_data(as_text=True)
    assert _contracts(world) == 0


def test_the_api_binds_the_signer_too(app, world):
    counterparty = world.register_counterparty(signer="山田 太郎")
    client = app.test_client()
    headers = bearer(token_for(app, world.staff.email))
    other = metadata(world, counterparty_name=None, counterparty_id=counterparty.id)
    other.pop("counterparty_name")
    other["signers"][0].update(name="鈴木 次郎", email="suzuki@keiyaku-shoji.co.jp")
    refused = client.post("/api/v1/contracts", json=other, headers=headers)
    assert refused.status_code == 422
    assert "契約締結権限者" in refused.get_json()["detail"]
    allowed = client.post("/api/v1/contracts", json={**other, "signer_override_reason": "支店長へ委任"},
                          headers=headers)
    assert allowed.status_code == 201, allowed.get_data(as_text=True)
    assert len(_events(world, AuditAction.CONTRACT_SIGNER_OVERRIDDEN)) == 1
    assert client.post("/api/v1/contracts", json={**other, "counterparty_id": "1"},
                       headers=headers).status_code == 422
