"""共同企業体 (JV) usage requests (R10): the JV's name and members; the representative member's signing
authority signs, and accepting registers the JV itself as the counterparty."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from sqlalchemy import func, select

from portal.auth.models import Role
from portal.counterparties.models import Counterparty
from portal.usage_requests.models import UsageRequest
from portal.usage_requests.pdf import render_usage_request
from tests.conftest import post_form, require
from tests.factories import login_as, make_staff
from tests.usage_requests.conftest import form_data, latest_request, make_usage_request, submit

JV = {"jv_name": "岡山・吉備特定建設工事共同企業体",
      "jv_members": "株式会社けいやく商事 代表取締役 岡山 太郎\n吉備建設株式会社 代表取締役 𠮷野 次郎"}


def test_a_vendor_applies_as_a_joint_venture(client, session, department):
    page = client.get("/apply").get_data(as_text=True)
    assert "共同企業体（JV）として申し出る場合" in page
    response = submit(client, form_data(**JV))
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    saved = latest_request(session)
    assert saved.jv_name == JV["jv_name"]
    assert saved.jv_member_list == JV["jv_members"].split("\n")
    assert saved.company_name == "株式会社けいやく商事"


@pytest.mark.parametrize(("fields", "message"), [
    ({"jv_name": "岡山・吉備JV", "jv_members": "株式会社けいやく商事"}, "2社以上"),
    ({"jv_members": "株式会社けいやく商事\n吉備建設株式会社"}, "共同企業体の名称も入力してください"),
    ({"jv_name": "岡山・吉備JV\r\nBcc: x@example.com", "jv_members": JV["jv_members"]}, "改行や制御文字"),
    ({"jv_name": "岡山・吉備JV", "jv_members": "株式会社けいやく商事\n吉備\u202e建設"}, "改行や制御文字"),
    ({"jv_name": "岡山・吉備JV", "jv_members": "\n".join(f"構成員{n}" for n in range(21))}, "20社まで"),
    ({"jv_name": "J" * 201, "jv_members": JV["jv_members"]}, "200文字以内"),
])
def test_an_incomplete_or_hostile_joint_venture_is_refused(client, session, department, fields, message):
    response = submit(client, form_data(**fields))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(UsageRequest)) == 0


def test_accepting_registers_the_joint_venture_as_the_counterparty(client, session, department):
    usage_request = make_usage_request(session, department, **JV)
    reviewer = make_staff(session, role=Role.STAFF, department=department)
    login_as(client, reviewer)
    page = client.get(f"/usage-requests/{usage_request.id}").get_data(as_text=True)
    assert JV["jv_name"] in page
    assert "吉備建設株式会社" in page
    response = post_form(client, f"/usage-requests/{usage_request.id}/accept", {},
                         page=f"/usage-requests/{usage_request.id}")
    assert response.status_code == 303, response.get_data(as_text=True)[-1500:]
    session.rollback()
    counterparty = session.scalar(select(Counterparty).where(Counterparty.name == JV["jv_name"]))
    assert counterparty is not None
    assert "代表構成員 株式会社けいやく商事" in counterparty.representative
    assert counterparty.current_authority is not None
    assert counterparty.current_authority.email == "ichiro@keiyaku-shoji.example.jp"
    assert latest_request(session).counterparty_id == counterparty.id


def test_the_form_pdf_lists_the_joint_venture_and_its_members(app, session, department, tmp_path):
    require(shutil.which("pdftotext") is not None, "poppler-utils (pdftotext) is not installed")
    usage_request = make_usage_request(session, department, **JV)
    with app.app_context():
        pdf = render_usage_request(usage_request, addressee="岡山県知事")
    path = tmp_path / "jv.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "岡山・吉備特定建設工事共同企業体" in text
    assert "𠮷野 次郎" in text
    assert "代表構成員" in text
