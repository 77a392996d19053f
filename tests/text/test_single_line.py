"""Names, titles and company names refuse line breaks and control characters, on every form and the API.

A CR/LF typed into a name once reached a mail header (and jammed the outbox); a bidi override
disguises what a reader sees. Each entry point answers 422 with the field's Japanese message and
stores nothing.
"""

from __future__ import annotations

import html
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.auth.models import Department, Role, StaffUser
from portal.contracts.models import Contract
from portal.text import has_control_characters, single_line
from portal.usage_requests.models import UsageRequest
from tests.api.helpers import assert_problem, bearer, metadata, multipart, token_for
from tests.conftest import post_form
from tests.factories import login_as, make_staff
from tests.pdfs import make_pdf
from tests.usage_requests.conftest import form_data

HOSTILE = ["山田 太郎\r\nBcc: evil@evil.example", "山田\n太郎", "山田\x00太郎", "山田\t太郎", "\u202egpj.exe 山田",
           "山田\x85太郎", "山田\u2028太郎", "山田\u200b太郎"]


def _count(world: Any, model: Any) -> int:
    world.refresh()
    return int(world.session.scalar(select(func.count()).select_from(model)) or 0)


def _assert_refused(response: Any, label: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert f"{label}に改行や制御文字は使えません。" in html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("value", HOSTILE)
def test_text_helpers(value):
    assert has_control_characters(value)
    assert not has_control_characters(single_line(value))
    assert not has_control_characters("株式会社けいやく商事 代表取締役　山田 太郎（髙﨑）")


@pytest.mark.parametrize(("field", "label"), [
    ("company_name", "商号(名称)"), ("representative", "代表者職・氏名"), ("contact_person", "担当者職・氏名"),
    ("authority_name", "氏名"), ("authority_title", "役職"), ("address", "住所(所在地)"),
    ("contract_name", "契約業務名"),
])
def test_anonymous_apply_refuses(world, field, label):
    client = world.app.test_client()
    for value in HOSTILE:
        _assert_refused(post_form(client, "/apply", form_data(**{field: value})), label)
    assert _count(world, UsageRequest) == 0


def test_staff_entry_of_a_paper_form_refuses(world):
    response = post_form(world.staff_client, "/usage-requests/new",
                         {**form_data(company_name=HOSTILE[0]), "channel": "post"})
    _assert_refused(response, "商号(名称)")
    assert _count(world, UsageRequest) == 0


@pytest.mark.parametrize(("field", "label"), [
    ("business_name", "業務名"), ("signer_override_reason", "別の署名者にする理由"),
    ("signer_organization", "相手方の商号（署名者の所属）"), ("signer_title", "契約締結権限者の役職"),
    ("signer_name", "契約締結権限者の氏名"),
])
def test_contract_form_refuses(world, field, label):
    for value in HOSTILE[:2]:
        _assert_refused(world.create(**{field: value}), label)
    assert _count(world, Contract) == 0


def test_approval_reference_refuses(world):
    contract_id = world.create_id()
    assert world.upload(contract_id, (make_pdf(), "a.pdf")).status_code == 200
    _assert_refused(world.approve(contract_id, reference="総契第1号\r\nX"), "決裁番号（決裁日）")


def test_admin_user_and_department_forms_refuse(world, session):
    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", department=world.department)
    client = world.app.test_client()
    login_as(client, admin)
    user = {"email": "new@pref.example.jp", "name": "新任 職員", "title": "主任", "role": "staff",
            "department_id": world.department.id}
    _assert_refused(post_form(client, "/admin/users", {**user, "name": HOSTILE[0]}), "氏名")
    _assert_refused(post_form(client, "/admin/users", {**user, "title": HOSTILE[4]}), "役職")
    assert _count(world, StaffUser) == 3
    _assert_refused(post_form(client, "/admin/departments", {"code": "BIZEN", "name": "備前\r\n県民局",
                                                            "kind": "県民局"}), "所属名")
    assert _count(world, Department) == 1


def test_api_refuses_in_names_and_signers(world):
    client = world.app.test_client()
    token = token_for(world.app, world.staff.email)
    for value in HOSTILE:
        meta = metadata(world, counterparty_name=value)
        meta["signers"][0]["name"] = value
        response = client.post("/api/v1/contracts", data=multipart(meta, make_pdf()),
                               content_type="multipart/form-data", headers=bearer(token))
        body = assert_problem(response, 422)
        assert body["errors"]["counterparty_name"] == "counterparty_name に改行や制御文字は使えません。"
        assert body["errors"]["signers[0].name"] == "signers[0].name に改行や制御文字は使えません。"
    assert _count(world, Contract) == 0
