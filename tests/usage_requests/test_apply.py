"""The public 電子契約利用申出書 form: labels, validation as one types and on submit, abuse guards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.usage_requests.models import Channel, UsageRequest, UsageRequestStatus
from tests.conftest import csrf_from, post_form
from tests.usage_requests.conftest import form_data, latest_request, submit

LABELS = ["住所(所在地)", "商号(名称)", "代表者職・氏名", "担当者職・氏名", "連絡先", "電話番号", "メールアドレス",
          "契約業務名", "【契約締結権限者】", "役職", "氏名"]


def test_form_shows_the_labels_and_notes_of_the_official_form(client, department):
    html = client.get("/apply").get_data(as_text=True)
    for label in LABELS:
        assert label in html
    assert "フリーメールアドレスは不可とします。" in html
    assert "必ずしも社内規定等における最終決裁権者でなくて構いません" in html
    assert "紙による契約書の作成に移行します" in html
    assert "総務部 契約課" in html
    assert 'hx-trigger="keyup changed delay:400ms, change"' in html


def test_department_can_be_preselected_from_the_invitation_link(client, department):
    html = client.get("/apply?dept=KEI").get_data(as_text=True)
    assert '<option selected value="KEI">' in html


def test_valid_submission_shows_receipt_and_waits_for_email_confirmation(client, session, department):
    response = submit(client, form_data())
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/apply/submitted")
    usage_request = latest_request(session)
    assert usage_request.status == UsageRequestStatus.AWAITING_EMAIL
    assert usage_request.channel == Channel.WEB
    assert usage_request.contact_phone == "086-224-2111"  # NFKC
    assert len(usage_request.confirm_token_hash or "") == 64
    page = client.get("/apply/submitted").get_data(as_text=True)
    assert usage_request.receipt_number in page
    assert "まだ手続きは完了していません" in page
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == str(usage_request.id))))
    assert actions == ["public:usage-request:submitted"]


def test_htmx_submit_redirects_with_hx_redirect(client, session, department):
    response = submit(client, form_data(), headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].endswith("/apply/submitted")


def test_refused_submit_is_422_keeps_input_and_speaks_japanese(client, session, department):
    response = submit(client, form_data(company_name="", authority_email="ichiro@gmail.com"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "入力してください。" in html
    assert "フリーメールアドレスは登録できません" in html
    assert 'value="岡山県岡山市北区内山下2-4-6"' in html
    assert 'value="ichiro@gmail.com"' in html
    assert 'aria-invalid="true"' in html
    assert session.scalar(select(func.count()).select_from(UsageRequest)) == 0


def test_refused_htmx_submit_returns_only_the_form(client, department):
    response = submit(client, form_data(contact_phone="abc"), headers={"HX-Request": "true"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("<form")
    assert "電話番号は数字とハイフンで入力してください" in html
    assert "HX-Request" in response.headers.get("Vary", "")


@pytest.mark.parametrize(
    "address",
    ["ichiro@GMAIL.com", "ichiro@gmail.com.", "ichiro@mail.yahoo.co.jp", "ichiro@ｇｍａｉｌ.ｃｏｍ", "ichiro@gmx.de"],
)
def test_free_mail_signers_are_refused_on_submit(client, session, department, address):
    response = submit(client, form_data(authority_email=address))
    assert response.status_code == 422
    assert "フリーメールアドレスは登録できません" in response.get_data(as_text=True)


def test_free_mail_list_comes_from_settings(app, client, session, department):
    app.config["FREE_MAIL_DOMAINS"] = ["keiyaku-shoji.example.jp"]
    response = submit(client, form_data())
    assert response.status_code == 422
    assert "フリーメールアドレスは登録できません" in response.get_data(as_text=True)
    app.config["FREE_MAIL_DOMAINS"] = []
    assert submit(client, form_data(authority_email="ichiro@gmail.com")).status_code == 303


def test_internationalised_signer_address_is_accepted_and_stored_readable(client, session, department):
    response = submit(client, form_data(authority_email="ichiro@けいやく商事.jp"))
    assert response.status_code == 303
    assert latest_request(session).authority_email == "ichiro@けいやく商事.jp"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("address", "あ" * 301, "300文字以内"),
        ("company_name", "あ" * 201, "200文字以内"),
        ("authority_name", "あ" * 101, "100文字以内"),
        ("contact_email", "hanako@", "メールアドレスの形式が正しくありません"),
        ("authority_email", "ichiro@@example.jp", "メールアドレスの形式が正しくありません"),
        ("contact_phone", "086-224", "電話番号は数字とハイフン"),
        ("department", "", "提出先の担当課を選択してください"),
        ("department", "NOPE", "提出先の担当課を一覧から選択してください"),
    ],
)
def test_each_rule_refuses_its_input(client, department, field, value, message):
    response = submit(client, form_data(**{field: value}))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_live_validation_returns_the_field_partial_with_its_error(client, department):
    page = client.get("/apply").get_data(as_text=True)
    headers = {"HX-Request": "true", "X-CSRFToken": csrf_from(page)}
    response = client.post("/apply/validate/authority_email", data={"authority_email": "taro@Yahoo.co.jp."},
                           headers=headers)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="field-authority_email"' in html
    assert 'id="authority_email-error"' in html
    assert "フリーメールアドレスは登録できません" in html
    ok = client.post("/apply/validate/authority_email", data={"authority_email": "ichiro@keiyaku.example.jp"},
                     headers=headers).get_data(as_text=True)
    assert 'class="error"' not in ok
    phone = client.post("/apply/validate/contact_phone", data={"contact_phone": "０８６－２２４－２１１１"},
                        headers=headers).get_data(as_text=True)
    assert 'class="error"' not in phone
    assert client.post("/apply/validate/website", data={}, headers=headers).status_code == 404


def test_live_validation_needs_the_csrf_token(client, department):
    response = client.post("/apply/validate/address", data={"address": "x"}, headers={"HX-Request": "true"})
    assert response.status_code == 400


def test_submit_without_csrf_token_is_refused(client, session, department):
    response = client.post("/apply", data=form_data())
    assert response.status_code == 400
    assert "フォームの有効期限が切れました" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(UsageRequest)) == 0


def test_honeypot_submission_looks_accepted_but_stores_and_sends_nothing(client, session, department):
    response = submit(client, form_data(website="http://spam.example"))
    assert response.status_code == 303
    assert "受付番号" in client.get("/apply/submitted").get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(UsageRequest)) == 0
    from portal.mail.models import OutboxMessage

    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert session.scalar(select(AuditEvent.action)) == "public:usage-request:honeypot-tripped"


def test_honeypot_is_hidden_from_people(client, department):
    """The robots' field sits in an aria-hidden box that the style sheet moves off the screen, and the
    keyboard skips it; the people's fields are in none of that."""
    html = client.get("/apply").get_data(as_text=True)
    fields = _InputAncestry()
    fields.feed(html)
    honeypot = fields.inputs["website"]
    assert honeypot.attrs.get("tabindex") == "-1"
    assert honeypot.attrs.get("autocomplete") == "off"
    [box] = [a for a in honeypot.ancestors if a.get("aria-hidden") == "true"]
    with client.get("/static/css/portal.css") as style_sheet:
        css = style_sheet.get_data(as_text=True)
    rules = [re.search(rf"\.{re.escape(name)}\s*\{{([^}}]*)\}}", css) for name in box.get("class", "").split()]
    declarations = " ".join(rule.group(1) for rule in rules if rule)
    assert "position:absolute" in declarations.replace(" ", "")
    assert re.search(r"left:\s*-\d{4,}px", declarations), declarations
    people = fields.inputs["company_name"]
    assert all(a.get("aria-hidden") != "true" for a in people.ancestors)
    assert people.attrs.get("tabindex") != "-1"


@dataclass
class _Input:
    attrs: dict[str, str]
    ancestors: list[dict[str, str]]


class _InputAncestry(HTMLParser):
    """Each <input name=…> with its attributes and the attributes of the elements around it."""

    VOID = frozenset({"input", "br", "img", "meta", "link", "hr", "source", "wbr", "area", "base", "col",
                      "embed", "track"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, dict[str, str]]] = []
        self.inputs: dict[str, _Input] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in ("input", "textarea", "select") and "name" in values:
            self.inputs[values["name"]] = _Input(values, [a for _, a in self.open])
        if tag not in self.VOID:
            self.open.append((tag, values))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                del self.open[index:]
                return


def test_submitted_page_without_a_submission_goes_back_to_the_form(client):
    response = client.get("/apply/submitted")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/apply")


def test_whole_flow_posts_through_post_form_helper(client, department):
    assert post_form(client, "/apply", form_data()).status_code == 303
