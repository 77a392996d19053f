"""The staff pages of the 取引先 registry and 「電子契約を希望しない」 (R12: a vendor that declined stays on paper)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.counterparties.models import Counterparty
from tests.conftest import post_form, reread
from tests.services.live import HttpClient, LiveServer, at_once


def _events(world, action: AuditAction) -> list[AuditEvent]:
    world.refresh()
    return list(world.session.scalars(select(AuditEvent).where(AuditEvent.action == action.value)))


def _decline(world, counterparty_id: int, reason: str, client=None):
    return post_form(client or world.staff_client, f"/counterparties/{counterparty_id}/decline",
                     {"reason": reason}, page=f"/counterparties/{counterparty_id}")


def test_the_list_searches_across_spellings_and_the_page_shows_history_and_contracts(world):
    from portal import clock
    from portal.counterparties import service as counterparties

    counterparty = world.register_counterparty()
    contract_id = world.create_id()
    counterparties.set_signing_authority(world.session, world.session.get(Counterparty, counterparty.id),
                                         title="代表取締役社長", name="山田 花子", email="hanako@keiyaku-shoji.co.jp",
                                         source="usage_request", now=clock.now())
    world.session.commit()
    listing = world.staff_client.get("/counterparties/?q=ｹｲﾔｸ").get_data(as_text=True)
    assert "株式会社けいやく商事" in listing
    assert "山田 花子" in listing
    rows = world.staff_client.get("/counterparties/?q=ないもの", headers={"HX-Request": "true"})
    assert rows.get_data(as_text=True).lstrip().startswith('<section id="counterparty-rows"')
    page = world.staff_client.get(f"/counterparties/{counterparty.id}").get_data(as_text=True)
    assert "山田 花子" in page
    assert "山田 太郎" in page
    assert "後任の登録により終了" in page
    assert f"/contracts/{contract_id}" in page
    assert f"/contracts/new?counterparty={counterparty.id}" in page
    assert _events(world, AuditAction.COUNTERPARTY_VIEWED)
    assert world.staff_client.get("/counterparties/999999").status_code == 404


def test_declining_is_recorded_with_who_and_why_refuses_contracts_and_can_be_undone(world):
    counterparty = world.register_counterparty()
    assert _decline(world, counterparty.id, "12月3日 電話で代表取締役より書面を希望").status_code == 303
    stored = reread(world.session).get(Counterparty, counterparty.id)
    assert stored.declined_e_contract
    assert stored.declined_by_id == world.staff.id
    assert stored.declined_at
    assert stored.declined_reason == "12月3日 電話で代表取締役より書面を希望"
    [event] = _events(world, AuditAction.COUNTERPARTY_DECLINED_E_CONTRACT)
    assert event.details["reason"] == "12月3日 電話で代表取締役より書面を希望"
    page = world.staff_client.get(f"/counterparties/{counterparty.id}").get_data(as_text=True)
    assert "電子契約を希望しない" in page
    assert world.staff.name in page
    assert f"/contracts/new?counterparty={counterparty.id}" not in page
    refused = world.create()
    assert refused.status_code == 422
    assert "紙の契約書で締結してください" in refused.get_data(as_text=True)
    again = _decline(world, counterparty.id, "二重")  # a stale page: refused in words, nothing changes
    assert again.status_code == 409
    assert "すでに「電子契約を希望しない」と記録されています" in again.get_data(as_text=True)
    undo = post_form(world.staff_client, f"/counterparties/{counterparty.id}/decline/withdraw",
                     {"reason": "電子契約に同意（12月10日 メール）"}, page=f"/counterparties/{counterparty.id}")
    assert undo.status_code == 303
    [withdrawn] = _events(world, AuditAction.COUNTERPARTY_DECLINE_WITHDRAWN)
    assert withdrawn.details["previous_reason"] == "12月3日 電話で代表取締役より書面を希望"
    assert world.create().status_code == 303


def test_the_service_refuses_a_second_decline(world):
    from portal import clock
    from portal.audit.service import RequestInfo
    from portal.counterparties import service as counterparties

    counterparty = world.register_counterparty()
    with world.app.test_request_context():
        counterparties.record_declined(world.session, counterparty, "書面希望", actor=world.staff, now=clock.now(),
                                       request=RequestInfo())
        with pytest.raises(counterparties.AlreadyChanged, match="すでに"):
            counterparties.record_declined(world.session, counterparty, "書面希望", actor=world.staff,
                                           now=clock.now(), request=RequestInfo())
    world.session.rollback()


@pytest.mark.parametrize(("value", "message"), [
    ("", "理由を入力してください。"),
    ("理" * 501, "500文字以内"),
    ("一行目\r\n二行目", "改行や制御文字"),
    ("\u200b\u2066隠し", "改行や制御文字"),
])
def test_hostile_decline_reasons_are_refused(world, value, message):
    counterparty = world.register_counterparty()
    response = _decline(world, counterparty.id, value)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert not reread(world.session).get(Counterparty, counterparty.id).declined_e_contract


def test_markup_in_the_decline_reason_is_text(world):
    counterparty = world.register_counterparty()
    assert _decline(world, counterparty.id, '<img src=x onerror="alert(1)">').status_code == 303
    page = world.staff_client.get(f"/counterparties/{counterparty.id}").get_data(as_text=True)
    assert "<img src=x" not in page
    assert "&lt;img src=x" in page


def test_an_auditor_reads_but_cannot_decline(app, world):
    from portal.auth.models import Role
    from tests.factories import login_as, make_staff

    auditor = make_staff(world.session, role=Role.AUDITOR, email="kansa@pref.example.jp", name="監査 一郎")
    client = app.test_client()
    login_as(client, auditor)
    counterparty = world.register_counterparty()
    page = client.get(f"/counterparties/{counterparty.id}").get_data(as_text=True)
    assert "「電子契約を希望しない」と記録する" not in page
    assert _decline(world, counterparty.id, "書面希望", client=client).status_code == 403


def test_two_staff_declining_at_once_record_it_once(app, world):
    from portal.auth.models import Role
    from tests.factories import make_staff

    counterparty = world.register_counterparty()
    staff = [make_staff(world.session, role=Role.STAFF, email=f"tanto{n}@pref.example.jp", name=f"担当 {n}",
                        department=world.department) for n in range(4)]
    with LiveServer(app) as server:
        clients = []
        for user in staff:
            client = HttpClient(server.url)
            client.login(user)
            clients.append((client, client.csrf(f"/counterparties/{counterparty.id}")))
        replies = at_once([
            (lambda c=c, t=t: c.post(f"/counterparties/{counterparty.id}/decline",
                                     {"csrf_token": t, "reason": "電話で書面を希望"}))
            for c, t in clients])
    assert not server.errors, "\n".join(server.errors)
    statuses = sorted(r.status for r in replies)
    assert 500 not in statuses
    assert statuses.count(200) == 1, statuses  # one success (redirect followed), the others refused
    assert all("すでに" in r.text for r in replies if r.status == 409)
    assert len(_events(world, AuditAction.COUNTERPARTY_DECLINED_E_CONTRACT)) == 1
