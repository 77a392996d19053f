"""Everyone is told at every step: each mail arrives at a real SMTP server on loopback with its subject."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest

from portal import clock
from portal.auth.models import Role
from portal.clock import JST
from portal.mail.service import deliver_pending
from tests.conftest import post_form
from tests.factories import make_staff
from tests.pdfs import make_pdf
from tests.services.smtp import Inbox

VENDOR = "yamada@keiyaku-shoji.co.jp"


@pytest.fixture
def app_config(pki_dir: str, smtp_server: Any) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "AGENCY_NAME": "岡山県", **smtp_server.settings}


def _delivered(app: Any, smtp_server: Any, address: str) -> list[Any]:
    with app.app_context():
        deliver_pending()
    return smtp_server.inbox.to(address)


def _subjects(messages: list[Any]) -> list[str]:
    return [str(m["Subject"]) for m in messages]


def test_asking_for_approval_mails_the_departments_approvers_and_the_approval_mails_the_sender(
        app, world, smtp_server):
    other = make_staff(world.session, role=Role.APPROVER, email="shonin2@pref.example.jp", name="承認 次郎",
                       department=world.department)
    outsider = make_staff(world.session, role=Role.APPROVER, email="yoso@pref.example.jp", name="他課 三郎")
    contract_id = world.create_id()
    world.upload(contract_id, (make_pdf("Agreement"), "keiyaku.pdf"))
    response = post_form(world.staff_client, f"/contracts/{contract_id}/request-approval", {},
                         page=f"/contracts/{contract_id}")
    assert response.status_code == 303, response.get_data(as_text=True)
    number = world.contract(contract_id).number
    for approver in (world.approver, other):
        [mail] = _delivered(app, smtp_server, approver.email)
        assert str(mail["Subject"]) == f"【決裁の依頼】庁舎清掃業務委託（契約番号 {number}）"
        assert f"/contracts/{contract_id}" in Inbox.text(mail)
    assert _delivered(app, smtp_server, outsider.email) == []
    assert world.approve(contract_id).status_code == 303
    [confirmed] = _delivered(app, smtp_server, world.staff.email)
    assert str(confirmed["Subject"]) == f"【決裁確認済み】庁舎清掃業務委託（契約番号 {number}）"
    assert "総契第123号" in Inbox.text(confirmed)


def test_completion_is_also_mailed_to_the_staff_member_who_sent_it(app, world, smtp_server):
    contract_id = world.completed_contract(make_pdf("Agreement"))
    messages = _delivered(app, smtp_server, world.staff.email)
    completed = [m for m in messages if str(m["Subject"]) == "電子署名完了のお知らせ"]
    assert len(completed) == 1, _subjects(messages)
    assert f"/contracts/{contract_id}" in Inbox.text(completed[0])
    assert "/d/" not in Inbox.text(completed[0])  # staff download from the portal, not with a link
    assert _subjects(_delivered(app, smtp_server, VENDOR)).count("電子署名完了のお知らせ") == 1


def test_the_vendor_is_told_of_a_cancellation_with_the_departments_contact(app, world, smtp_server):
    world.department.contact_phone = "086-000-1234"
    world.department.contact_email = "keiyaku@pref.example.jp"
    world.session.commit()
    contract_id = world.sent_contract()
    response = post_form(world.staff_client, f"/contracts/{contract_id}/cancel", {"reason": "仕様の見直しのため"},
                         page=f"/contracts/{contract_id}")
    assert response.status_code == 303, response.get_data(as_text=True)
    closed = [m for m in _delivered(app, smtp_server, VENDOR) if "【取消】" in str(m["Subject"])]
    assert len(closed) == 1, _subjects(smtp_server.inbox.to(VENDOR))
    body = Inbox.text(closed[0])
    assert "取り消されました" in body
    assert "仕様の見直しのため" in body
    assert "086-000-1234" in body
    assert "keiyaku@pref.example.jp" in body


def test_a_draft_cancelled_before_sending_mails_no_vendor(app, world, smtp_server):
    contract_id = world.create_id()
    post_form(world.staff_client, f"/contracts/{contract_id}/cancel", {"reason": "入力誤り"},
              page=f"/contracts/{contract_id}")
    assert _delivered(app, smtp_server, VENDOR) == []


def test_the_vendor_is_told_when_the_deadline_moves_the_contract_to_paper(app, world, smtp_server):
    contract_id = world.sent_contract()
    planned = world.contract(contract_id).planned_conclusion_date
    clock.freeze(datetime.combine(planned + timedelta(days=1), time(1), tzinfo=JST))
    result = app.test_cli_runner().invoke(args=["contracts", "deadlines"])
    assert "紙契約へ移行 1 件" in result.output
    paper = [m for m in _delivered(app, smtp_server, VENDOR) if "【紙契約へ移行】" in str(m["Subject"])
             or "紙" in str(m["Subject"])]
    assert len(paper) == 1, _subjects(smtp_server.inbox.to(VENDOR))
    assert "紙の契約書で締結する" in Inbox.text(paper[0])


def test_a_decline_is_confirmed_to_the_vendor(app, world, smtp_server):
    contract_id = world.sent_contract()
    link = world.signing_link()
    page = world.signer_client.get(link)
    assert page.status_code == 200
    response = post_form(world.signer_client, f"{link}/decline", {"reason": "金額に誤りがあります"}, page=link)
    assert response.status_code in (200, 303), response.get_data(as_text=True)
    assert world.contract(contract_id).status.value == "declined"
    declined = [m for m in _delivered(app, smtp_server, VENDOR) if "差し戻し" in str(m["Subject"])]
    assert len(declined) == 1, _subjects(smtp_server.inbox.to(VENDOR))
    assert "差し戻しを受け付けました" in Inbox.text(declined[0])
