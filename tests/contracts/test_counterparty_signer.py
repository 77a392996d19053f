"""The counterparty's signer is a person outside the agency: staff never receive the vendor's link."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.contracts.models import Contract
from tests.api.helpers import assert_problem, bearer, metadata, token_for
from tests.factories import login_as, make_staff


def _contracts(world) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(Contract))


@pytest.mark.parametrize("address", ["tanto@pref.example.jp", "TANTO@pref.example.jp", "shonin@pref.example.jp"])
def test_a_staff_address_is_refused_as_the_counterparty_signer(world, address):
    response = world.create(signer_email=address)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "職員のアカウントのもの" in body
    assert _contracts(world) == 0


def test_an_agency_domain_is_refused_when_configured(app, world):
    app.config["AGENCY_MAIL_DOMAINS"] = ["pref.example.jp"]
    response = world.create(signer_email="someone@soumu.pref.example.jp")
    assert response.status_code == 422
    assert "庁内のメールドメイン" in response.get_data(as_text=True)
    assert _contracts(world) == 0
    assert world.create(signer_email="yamada@keiyaku-shoji.co.jp").status_code == 303


def test_staff_cannot_use_the_administrators_override(world):
    response = world.create(signer_email=world.approver.email, agency_address_reason="テスト")
    assert response.status_code == 422
    counterparty = world.register_counterparty()
    page = world.staff_client.get(f"/contracts/new?counterparty={counterparty.id}").get_data(as_text=True)
    assert "agency_address_reason" not in page
    assert _contracts(world) == 0


def test_an_administrator_may_allow_it_with_a_reason_that_is_logged(app, world):
    admin = make_staff(world.session, role=Role.ADMIN, email="kanri@pref.example.jp", name="管理 太郎",
                       department=world.department)
    client = app.test_client()
    login_as(client, admin)
    counterparty = world.register_counterparty()
    page = client.get(f"/contracts/new?counterparty={counterparty.id}").get_data(as_text=True)
    assert 'name="agency_address_reason"' in page
    assert world.create(client, signer_email=world.staff.email).status_code == 422
    response = world.create(client, signer_email=world.staff.email,
                            agency_address_reason="出向中の職員が相手方法人の代表者を兼ねるため")
    assert response.status_code == 303, response.get_data(as_text=True)
    world.refresh()
    event = world.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "admin:contract:staff-address-as-counterparty"))
    assert event is not None
    assert event.details["signer"] == world.staff.email
    assert event.details["reason"] == "出向中の職員が相手方法人の代表者を兼ねるため"


def test_the_api_refuses_a_staff_address_too(app, client, world):
    token = token_for(app, world.staff.email)
    body = metadata(world)
    body["signers"][0]["email"] = world.approver.email
    response = client.post("/api/v1/contracts", json=body, headers=bearer(token))
    problem = assert_problem(response, 422)
    assert "職員のアカウント" in problem["detail"]
    assert _contracts(world) == 0
