"""Helpers for usage request tests: a department, a valid 別記様式, submitting it like a browser.

The SMTP server fixture (`smtp_server`, `mail_app_config`) is the shared one in tests/conftest.py.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.auth.models import Department
from portal.mail.service import deliver_pending
from portal.usage_requests.models import Channel, UsageRequest, UsageRequestStatus
from tests.conftest import post_form
from tests.factories import make_department

SCRIPT = '<script>alert("x")</script>'


def form_data(department: Department | str = "KEI", **overrides: Any) -> dict[str, Any]:
    """A complete, valid 電子契約利用申出書."""
    data = {
        "department": department if isinstance(department, str) else department.code,
        "address": "岡山県岡山市北区内山下2-4-6",
        "company_name": "株式会社けいやく商事",
        "representative": "代表取締役 岡山 太郎",
        "contact_person": "営業部 主任 吉備 花子",
        "contact_phone": "０８６－２２４－２１１１",
        "contact_email": "hanako@keiyaku-shoji.example.jp",
        "contract_name": "令和8年度 庁舎清掃業務委託",
        "authority_title": "代表取締役",
        "authority_name": "髙橋 一郎",
        "authority_email": "ichiro@keiyaku-shoji.example.jp",
        "website": "",
    }
    data.update(overrides)
    return data


def submit(client: FlaskClient, data: dict[str, Any], **kwargs: Any) -> Any:
    return post_form(client, "/apply", data, **kwargs)


def deliver(app: Flask) -> int:
    with app.app_context():
        return deliver_pending()


def latest_request(session: Session) -> UsageRequest:
    session.commit()  # end the read transaction: see what the app committed since
    session.expire_all()
    usage_request = session.scalars(select(UsageRequest).order_by(UsageRequest.id.desc())).first()
    assert usage_request is not None, "no usage request was saved"
    return usage_request


@pytest.fixture
def department(session: Session) -> Department:
    department = make_department(session, code="KEI", name="総務部 契約課")
    session.commit()
    return department


def make_usage_request(session: Session, department: Department, *,
                       status: UsageRequestStatus = UsageRequestStatus.PENDING, channel: Channel = Channel.WEB,
                       **fields: Any) -> UsageRequest:
    """A request as it stands after the e-mail confirmation (確認待ち), unless told otherwise."""
    values = form_data(**fields)
    values.pop("department")
    values.pop("website")
    values["contact_phone"] = "086-224-2111" if values["contact_phone"] == "０８６－２２４－２１１１" else values[
        "contact_phone"]
    now = clock.now()
    usage_request = UsageRequest(
        receipt_number=f"20261128-{secrets.token_hex(2).upper()}", status=status, channel=channel,
        department=department, form_date=now.date(), submitted_at=now,
        confirmed_at=None if status == UsageRequestStatus.AWAITING_EMAIL else now, **values,
    )
    session.add(usage_request)
    session.commit()
    return usage_request
