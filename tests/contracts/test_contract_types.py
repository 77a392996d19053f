"""契約の種類 on every contract (R12, R26), the counterparty's prior 承諾 before a 工事 contract is sent
(R9), and 変更契約 linked to the completed contract they amend (R16)."""

from __future__ import annotations

import csv
import io
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.contracts.models import Contract, ContractStatus
from portal.preservation.retention import retention_ends, retention_years
from tests.api.helpers import assert_problem, bearer, metadata, multipart, token_for
from tests.contracts.fixtures import today
from tests.factories import make_staff
from tests.pdfs import make_pdf
from tests.services.live import HttpClient, LiveServer

CONSENT = {"consent_by": "山田 太郎（代表取締役）", "consent_on": (today() - timedelta(days=3)).isoformat(),
           "consent_method": "承諾書（書面）"}


def _count(world) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(Contract))


def _events(world, action: AuditAction) -> list[AuditEvent]:
    world.refresh()
    return list(world.session.scalars(select(AuditEvent).where(AuditEvent.action == action.value)))


def test_the_form_offers_the_configured_types_and_stores_the_choice(world):
    counterparty = world.register_counterparty()
    page = world.staff_client.get(f"/contracts/new?counterparty={counterparty.id}").get_data(as_text=True)
    for name in ("委託", "物品", "工事", "賃貸借", "その他"):
        assert f'value="{name}"' in page
    contract_id = world.create_id(contract_type="賃貸借")
    assert world.contract(contract_id).contract_type == "賃貸借"
    assert "賃貸借" in world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)


@pytest.mark.parametrize("value", ["", "設計", "委託\n", "<script>", "工" * 60])
def test_an_unknown_type_is_refused_and_nothing_is_created(world, value):
    response = world.create(contract_type=value)
    assert response.status_code == 422
    assert "契約の種類" in response.get_data(as_text=True)
    assert _count(world) == 0


def test_the_api_requires_a_configured_type(app, world, client):
    token = token_for(app, world.staff.email)
    response = client.post("/api/v1/contracts", data=multipart(metadata(world, contract_type="設計"), make_pdf()),
                           content_type="multipart/form-data", headers=bearer(token))
    assert response.status_code == 422
    assert "契約の種類を選択してください" in response.get_json()["detail"]
    missing = metadata(world)
    missing.pop("contract_type")
    assert_problem(client.post("/api/v1/contracts", data=multipart(missing, make_pdf()),
                               content_type="multipart/form-data", headers=bearer(token)), 422)
    assert _count(world) == 0


def test_construction_cannot_be_sent_before_the_consent_is_recorded(world):
    contract_id = world.create_id(contract_type="工事")
    assert world.upload(contract_id, (make_pdf("Koji"), "koji.pdf")).status_code == 200
    assert world.approve(contract_id).status_code == 303
    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "相手方の承諾を記録する" in page
    response = world.send(contract_id)
    assert response.status_code == 422
    assert "建設業法第19条第3項" in response.get_data(as_text=True)
    assert world.contract(contract_id).status is ContractStatus.APPROVED
    assert world.outbox("signature_request") == []

    from tests.conftest import post_form

    recorded = post_form(world.staff_client, f"/contracts/{contract_id}/consent", CONSENT,
                         page=f"/contracts/{contract_id}")
    assert recorded.status_code == 303, recorded.get_data(as_text=True)
    contract = world.contract(contract_id)
    assert (contract.consent_by, contract.consent_method) == ("山田 太郎（代表取締役）", "承諾書（書面）")
    [event] = _events(world, AuditAction.CONTRACT_CONSENT_RECORDED)
    assert event.details["consent_by"] == "山田 太郎（代表取締役）"
    assert world.send(contract_id).status_code == 303
    assert world.contract(contract_id).status is ContractStatus.AWAITING_COUNTERPARTY


def test_consent_given_with_the_draft_lets_it_be_sent(world):
    contract_id = world.sent_contract(contract_type="工事", **CONSENT)
    assert world.contract(contract_id).status is ContractStatus.AWAITING_COUNTERPARTY
    assert len(_events(world, AuditAction.CONTRACT_CONSENT_RECORDED)) == 1


@pytest.mark.parametrize(("fields", "message"), [
    ({"consent_by": "山田", "consent_method": "承諾書（書面）"}, "承諾日を入力してください。"),
    ({**CONSENT, "consent_on": "tomorrow"}, "承諾日が未来の日付"),
    ({**CONSENT, "consent_method": "口頭"}, "承諾の方法"),
    ({**CONSENT, "consent_by": "山田\r\nBcc: x@example.com"}, "改行や制御文字"),
])
def test_an_incomplete_or_hostile_consent_is_refused(world, fields, message):
    if fields.get("consent_on") == "tomorrow":  # the date at run time: collection may be before midnight JST
        fields = {**fields, "consent_on": (today() + timedelta(days=1)).isoformat()}
    response = world.create(contract_type="工事", **fields)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _count(world) == 0


def test_two_people_recording_the_consent_at_once_record_it_once(app, world):
    contract_id = world.create_id(contract_type="工事")
    colleagues = [make_staff(world.session, email=f"tanto{n}@pref.example.jp", name=f"佐藤 花子{n}",
                             department=world.department) for n in range(2)]
    with LiveServer(app) as server:
        browsers = []
        for user in colleagues:
            browser = HttpClient(server.url)
            browser.login(user)
            browsers.append((browser, browser.csrf(f"/contracts/{contract_id}")))
        start, replies = threading.Barrier(2), []

        def record(browser: HttpClient, token: str, by: str) -> None:
            start.wait()
            replies.append(browser.post(f"/contracts/{contract_id}/consent",
                                        {"csrf_token": token, **CONSENT, "consent_by": by}))

        threads = [threading.Thread(target=record, args=(b, t, f"承諾者{n}")) for n, (b, t) in enumerate(browsers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not server.errors
    assert sorted(reply.status for reply in replies) in ([200, 409], [303, 409]), [r.status for r in replies]
    assert any("すでに記録されています" in reply.text for reply in replies)
    events = _events(world, AuditAction.CONTRACT_CONSENT_RECORDED)
    assert len(events) == 1
    assert world.contract(contract_id).consent_by == events[0].details["consent_by"]


def test_term_plus_retention_over_the_limit_is_refused_when_configured(app, world, session):
    from portal import clock
    from portal.preservation import retention

    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", department=world.department)
    with app.app_context():
        retention.set_retention_policy(session, department=None, contract_type="工事", years=30, note="",
                                       actor=admin, now=clock.now())
        session.commit()
    term = {"term_start": today().isoformat(), "term_end": (today() + timedelta(days=365 * 3)).isoformat()}
    assert world.create(contract_type="委託", **term).status_code == 303  # rule off by default
    app.config["MAX_TERM_PLUS_RETENTION_YEARS"] = 20
    response = world.create(contract_type="工事", **CONSENT, **term)
    assert response.status_code == 422
    assert "契約期間と保存期間（30年）の合計が20年を超える" in response.get_data(as_text=True)
    assert world.create(contract_type="委託", **term).status_code == 303  # 3 + 10 years


def test_retention_follows_the_type_of_each_contract(app, world, session):
    from portal import clock
    from portal.preservation import retention

    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", department=world.department)
    construction = world.create_id(contract_type="工事", **CONSENT)
    service_contract = world.create_id(contract_type="委託")
    with app.app_context():
        retention.set_retention_policy(session, department=None, contract_type="工事", years=30, note="建設",
                                       actor=admin, now=clock.now())
        session.commit()
        assert retention_years(session, world.contract(construction)) == 30
        assert retention_years(session, world.contract(service_contract)) == 10
        ends = retention_ends(session, world.contract(construction))
        assert ends.year - today().year in (30, 31)
    page = world.staff_client.get("/search/?contract_type=工事&status=draft").get_data(as_text=True)
    assert world.contract(construction).number in page
    assert world.contract(service_contract).number not in page


def test_an_amendment_links_both_ways_and_leaves_the_original_untouched(world):
    original_id = world.completed_contract(make_pdf("Original agreement"))
    world.refresh()
    original = world.contract(original_id)
    before = (original.business_name, original.amount, original.status, original.updated_at,
              [(d.id, [(r.number, r.sha256) for r in d.revisions]) for d in original.documents])
    original_page = world.staff_client.get(f"/contracts/{original_id}").get_data(as_text=True)
    assert "変更契約を作成" in original_page
    form_page = world.staff_client.get(f"/contracts/new?amends={original_id}").get_data(as_text=True)
    assert "変更の理由" in form_page
    assert original.business_name in form_page  # pre-filled

    from tests.conftest import post_form

    form = world.contract_form(business_name="庁舎清掃業務委託（変更契約）", amount="1320000", tax_amount="120000",
                               amendment_reason="履行期間の延長")
    response = post_form(world.staff_client, f"/contracts/new?amends={original_id}", form)
    assert response.status_code == 303, response.get_data(as_text=True)
    amendment_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    amendment = world.contract(amendment_id)
    assert amendment.amends_id == original_id
    assert amendment.amendment_reason == "履行期間の延長"
    assert amendment.status is ContractStatus.DRAFT
    original = world.contract(original_id)
    assert (original.business_name, original.amount, original.status, original.updated_at,
            [(d.id, [(r.number, r.sha256) for r in d.revisions]) for d in original.documents]) == before
    assert amendment.number in world.staff_client.get(f"/contracts/{original_id}").get_data(as_text=True)
    amendment_page = world.staff_client.get(f"/contracts/{amendment_id}").get_data(as_text=True)
    assert original.number in amendment_page
    assert "履行期間の延長" in amendment_page
    results = world.staff_client.get("/search/?business_name=変更契約&status=draft").get_data(as_text=True)
    assert f"{original.number} の変更契約" in results
    export = world.staff_client.get("/search/export.csv?business_name=変更契約&status=draft")
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][-3:] == ["契約の種類", "状態", "変更前の契約番号"]
    assert rows[1][-1] == original.number


def test_only_a_completed_contract_can_be_amended(world):
    from tests.conftest import post_form

    draft_id = world.create_id()
    response = post_form(world.staff_client, f"/contracts/new?amends={draft_id}",
                         world.contract_form(amendment_reason="誤り"))
    assert response.status_code == 422
    assert "締結済みの契約に対してだけ" in response.get_data(as_text=True)
    assert world.staff_client.get("/contracts/new?amends=abc").status_code == 404
    assert _count(world) == 1
