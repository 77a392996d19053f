"""The world the access matrix runs in: one per module and database, built through the real pages
and services, with one logged-in client per principal.

Contract A (department KEI) is the one every principal is tried against; contract B is another
contract of the same department whose signing and download links play "a signer of another
contract". Both are completed, so signing, download and certificate pages all have something to show.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock, create_app
from portal.audit.service import RequestInfo
from portal.auth import service as auth_service
from portal.auth.models import ApiToken, Role
from portal.mail.models import OutboxMessage
from portal.preservation import verification
from portal.tokens import hash_token
from portal.usage_requests import pdf as usage_request_pdf
from portal.usage_requests import service as usage_requests
from portal.webhooks import service as webhooks
from portal.webhooks.models import WebhookDelivery
from tests.api.helpers import token_for
from tests.conftest import csrf_from, empty_tables, test_config
from tests.contracts.fixtures import DOWNLOAD_RE, World, today
from tests.factories import login_as, make_department, make_staff
from tests.pdfs import make_pdf

PRINCIPALS = ("anonymous", "staff", "other_staff", "approver", "auditor", "admin", "other_signer", "api_token")
# Words only contract A's pages contain: a principal that may not see A must never get them.
SECRET_A = "秘匿確認用の庁舎警備業務委託"
REQUEST_INFO = RequestInfo(ip="127.0.0.1", user_agent="access-matrix")
CORRECTION_TOKEN = "matrix-correction-token-0123456789abcdefghijk"


@dataclass
class MatrixWorld:
    app: Flask
    session: Session
    clients: dict[str, FlaskClient] = field(default_factory=dict)
    csrf: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # URL arguments by name
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # kind → principal → token


def _token_of(mails: list[tuple[str, str]], recipient: str, pattern: Any, prefix: str) -> str:
    bodies = [body for to, body in mails if to == recipient and pattern.search(body)]
    assert bodies, f"no mail with a {prefix} link to {recipient}"
    return pattern.search(bodies[-1]).group(0).rsplit(prefix, 1)[1]


def build(database_url: str, instance: Path, pki_dir: str) -> Iterator[MatrixWorld]:
    with pytest.MonkeyPatch.context() as patch:
        # Printing the 利用申出書 takes seconds and decides nothing about access: a small PDF instead.
        patch.setattr(usage_request_pdf, "render_blank_form", lambda **_: make_pdf("blank form"))
        patch.setattr(usage_request_pdf, "render_usage_request", lambda *_, **__: make_pdf("usage request"))
        yield from _build(database_url, instance, pki_dir)


def _build(database_url: str, instance: Path, pki_dir: str) -> Iterator[MatrixWorld]:
    app = create_app(test_config(database_url, instance, PKI_DIR=pki_dir, AGENCY_NAME="岡山県",
                                 CONTACT_PHONE="086-000-0000"))
    engine = app.extensions["portal.engine"]
    try:
        with app.extensions["portal.session_factory"]() as session:
            session.info["app"] = app
            yield _populate(app, session)
    finally:
        clock.freeze(None)
        empty_tables(engine)
        engine.dispose()


def _populate(app: Flask, session: Session) -> MatrixWorld:
    world = World(app, session)  # department KEI with its 担当者 and 承認者, both logged in
    now = clock.now()
    with app.app_context():
        webhook, _ = webhooks.create_endpoint(session, url="https://hooks.example.jp/keiyaku",
                                              events=["contract.completed"], actor=None, now=now)
        spare_webhook, _ = webhooks.create_endpoint(session, url="https://hooks.example.jp/spare",
                                                    events=["contract.completed"], actor=None, now=now)
        session.commit()
    other_department = make_department(session, code="DOB", name="土木部 道路建設課")
    other_staff = make_staff(session, role=Role.STAFF, email="doboku@pref.example.jp", name="吉備 次郎",
                             department=other_department)
    auditor = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp", name="備前 三郎",
                         department=make_department(session, code="KAN", name="監査委員事務局"))
    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", name="美作 四郎",
                       department=make_department(session, code="JOH", name="総務部 情報政策課"))
    # Targets of the administrators' buttons, so that deactivating or resetting spares the principals.
    target = make_staff(session, role=Role.STAFF, email="ido@pref.example.jp", name="倉敷 五郎",
                        department=world.department)
    newcomer = make_staff(session, role=Role.STAFF, email="shinnin@pref.example.jp", name="津山 六子",
                          department=world.department, enrolled=False)

    contract_a = world.completed_contract(business_name=SECRET_A)
    contract_b = world.completed_contract(business_name="公用車点検業務委託", counterparty_name="株式会社きびサービス",
                                          signer_email="sato@kibi-service.co.jp")
    world.refresh()
    a, b = world.contract(contract_a), world.contract(contract_b)
    assert a.certificate_key, "contract A should be completed"
    assert b.certificate_key, "contract B should be completed"
    mails = [(m.recipient, world.delivered_body(m)) for m in world.outbox()]  # stored bodies are masked
    signing = {"a": world.signed_links[contract_a].removeprefix("/s/"),
               "b": world.signed_links[contract_b].removeprefix("/s/")}
    download = {"a": _token_of(mails, "yamada@keiyaku-shoji.co.jp", DOWNLOAD_RE, "/d/"),
                "b": _token_of(mails, "sato@kibi-service.co.jp", DOWNLOAD_RE, "/d/")}

    with app.app_context():
        submitted = usage_requests.submit(session, usage_requests.UsageRequestData(
            address="岡山県岡山市北区内山下2-4-6", company_name="株式会社けいやく商事",
            representative="代表取締役 岡山 太郎", contact_person="営業部 吉備 花子", contact_phone="086-224-2111",
            contact_email="hanako@keiyaku-shoji.co.jp",
            contract_name="令和8年度 庁舎清掃業務委託", authority_title="代表取締役", authority_name="髙橋 一郎",
            authority_email="ichiro@keiyaku-shoji.co.jp"), department=world.department, now=now,
            request=REQUEST_INFO)
        usage_request = submitted.usage_request
        usage_requests.confirm(session, usage_request, now=now, request=REQUEST_INFO)
        usage_requests.accept(session, usage_request, actor=world.staff, now=now, request=REQUEST_INFO)
        to_return = usage_requests.submit(session, usage_requests.UsageRequestData(
            address="岡山県岡山市北区内山下2-4-6", company_name="株式会社きびサービス",
            representative="代表取締役 吉備 一", contact_person="総務 吉備 二", contact_phone="086-224-2112",
            contact_email="ni@kibi-service.co.jp", contract_name="公用車点検業務委託",
            authority_title="代表取締役", authority_name="吉備 一", authority_email="hajime@kibi-service.co.jp"),
            department=world.department, now=now, request=REQUEST_INFO).usage_request
        usage_requests.confirm(session, to_return, now=now, request=REQUEST_INFO)
        usage_requests.return_to_submitter(session, to_return, "役職が空欄です", actor=world.staff, now=now,
                                           request=REQUEST_INFO)
        to_return.correction_token_hash = hash_token(CORRECTION_TOKEN)  # the mail's token, known here
        setup_url = auth_service.issue_account_token(session, "setup", None, now=now)
        enrol_url = auth_service.issue_account_token(session, "enrol", newcomer, now=now)
        run = verification.start_batch_verification(session, period_from=today() - timedelta(days=30),
                                                    period_to=today(), actor=auditor, now=now)
        webhooks.enqueue_event(session, "contract.completed", a, now=now)
        session.commit()
    delivery_id = session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == webhook.id)
                                 .order_by(WebhookDelivery.id))

    api_token = token_for(app, world.staff.email)
    token_for(app, target.email)
    session.rollback()  # see what the CLI committed
    spare_token_id = session.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()))

    matrix = MatrixWorld(app, session)
    matrix.values = {
        "contract_id": a.id, "document_id": a.documents[0].id, "page": 1, "n": 1,
        "party_id": next(p.id for p in a.parties if p.staff_user_id == world.approver.id),
        "user_id": target.id, "department_id": other_department.id, "token_id": spare_token_id,
        "endpoint_id": webhook.id, "spare_endpoint_id": spare_webhook.id, "delivery_id": delivery_id,
        "message_id": session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id)),
        "run_id": run.id, "request_id": usage_request.id, "field_name": "company_name",
        "counterparty_id": usage_request.counterparty_id,
    }
    assert None not in matrix.values.values(), matrix.values
    everyone = dict.fromkeys(PRINCIPALS)
    matrix.tokens = {
        "signing": {p: signing["b" if p == "other_signer" else "a"] for p in everyone},
        "download": {p: download["b" if p == "other_signer" else "a"] for p in everyone},
        "setup": dict.fromkeys(PRINCIPALS, setup_url.rsplit("/", 1)[1]),
        "enrol": dict.fromkeys(PRINCIPALS, enrol_url.rsplit("/", 1)[1]),
        "confirm": dict.fromkeys(PRINCIPALS, submitted.confirm_token),
        "correction": dict.fromkeys(PRINCIPALS, CORRECTION_TOKEN),
    }

    matrix.clients = {"anonymous": app.test_client(), "staff": world.staff_client,
                      "approver": world.approver_client, "other_signer": app.test_client(),
                      "api_token": app.test_client()}
    for name, user in (("other_staff", other_staff), ("auditor", auditor), ("admin", admin)):
        matrix.clients[name] = app.test_client()
        login_as(matrix.clients[name], user)  # once per module: a TOTP code may be used only once
    assert matrix.clients["other_signer"].get(f"/s/{signing['b']}").status_code == 200
    matrix.clients["api_token"].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_token}"
    for name, client in matrix.clients.items():
        matrix.csrf[name] = csrf_from(client.get("/help").get_data(as_text=True))
    return matrix
