"""R15: reminders before the planned conclusion date; after it the link stops and the contract goes to paper."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from portal import clock
from portal.clock import JST
from portal.contracts.deadlines import PAST_DEADLINE
from portal.contracts.models import ContractStatus
from tests.conftest import post_form
from tests.contracts.fixtures import LINK_RE


def _at(day, hour=9):
    return datetime.combine(day, time(hour), tzinfo=JST)


def _deadlines(app):
    result = app.test_cli_runner().invoke(args=["contracts", "deadlines"])
    assert result.exit_code == 0, result.output
    return result.output


def _link_in(world, message):
    match = LINK_RE.search(world.delivered_body(message))
    assert match, message.body
    return "/s/" + match.group(0).rsplit("/s/", 1)[1]


def test_reminders_three_and_one_day_before_then_paper(app, world):
    contract_id = world.sent_contract()
    planned = world.contract(contract_id).planned_conclusion_date
    first_link = world.signing_link()

    clock.freeze(_at(planned - timedelta(days=5)))
    _deadlines(app)
    assert world.outbox("signature_reminder") == []

    clock.freeze(_at(planned - timedelta(days=3)))
    assert "リマインド 1 件" in _deadlines(app)
    assert "リマインド 0 件" in _deadlines(app)  # remembered: no duplicate
    three_days = _link_in(world, world.outbox("signature_reminder")[-1])
    assert three_days != first_link
    # the previous link, sent to the same address, still opens the signer's page
    assert world.signer_client.get(first_link).status_code == 200
    assert world.signer_client.get(three_days).status_code == 200

    clock.freeze(_at(planned - timedelta(days=1)))
    _deadlines(app)
    reminders = world.outbox("signature_reminder")
    assert [m.recipient for m in reminders] == ["yamada@keiyaku-shoji.co.jp"] * 2
    assert "あと 1 日" in reminders[-1].body
    link = _link_in(world, reminders[-1])
    assert world.signer_client.get(three_days).status_code == 200
    staff = world.outbox("signature_reminder_staff")
    assert [m.recipient for m in staff] == [world.staff.email] * 2  # the sender, with the contract's page
    assert f"/contracts/{contract_id}" in staff[-1].body
    assert "/s/" not in world.delivered_body(staff[-1])

    clock.freeze(_at(planned, 23))
    assert world.signer_client.get(link).status_code == 200  # valid through the whole planned day

    clock.freeze(_at(planned + timedelta(days=1), 0))
    assert world.signer_client.get(link).status_code == 410
    assert world.signer_client.get(first_link).status_code == 410
    assert "紙契約へ移行 1 件" in _deadlines(app)
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.PAPER
    assert contract.status_reason == PAST_DEADLINE
    assert [m.recipient for m in world.outbox("contract_closed")] == [world.staff.email, world.approver.email]
    response = world.signer_client.get(link)
    assert response.status_code == 410
    assert "紙の契約に移行" in response.get_data(as_text=True)


def test_staff_switch_to_paper_by_hand_with_a_reason(world):
    contract_id = world.sent_contract()
    link = world.signing_link()
    page = f"/contracts/{contract_id}"
    refused = post_form(world.staff_client, f"{page}/paper", {"reason": ""}, page=page)
    assert refused.status_code == 422
    assert post_form(world.staff_client, f"{page}/paper", {"reason": "相手方の希望"}, page=page).status_code == 303
    assert world.contract(contract_id).status is ContractStatus.PAPER
    assert world.signer_client.get(link).status_code == 410
    assert "相手方の希望" in world.staff_client.get(page).get_data(as_text=True)


def test_cancel_with_a_reason(world):
    contract_id = world.sent_contract()
    page = f"/contracts/{contract_id}"
    assert post_form(world.staff_client, f"{page}/cancel", {"reason": "入札のやり直し"}, page=page).status_code == 303
    assert world.contract(contract_id).status is ContractStatus.CANCELLED
