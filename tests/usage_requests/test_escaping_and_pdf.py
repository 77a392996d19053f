"""Whatever a vendor types is shown as text everywhere: staff pages, mails and the PDF (別記様式)."""

from __future__ import annotations

import re

import pypdfium2
import pytest

from portal.usage_requests import pdf
from portal.usage_requests.models import UsageRequestStatus
from tests.conftest import csrf_from, post_form
from tests.factories import login_as, make_staff
from tests.printing.pdfcheck import RARE_NAMES, assert_archival, require_font, run_tool
from tests.usage_requests.conftest import SCRIPT, deliver, form_data, latest_request, make_usage_request, submit

TEXT_FIELDS = ["address", "company_name", "representative", "contact_person", "contract_name", "authority_title",
               "authority_name"]
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"


def pdf_text(data: bytes) -> str:
    document = pypdfium2.PdfDocument(data)
    try:
        return "".join(page.get_textpage().get_text_bounded() for page in document)
    finally:
        document.close()


@pytest.fixture
def app_config(mail_app_config):
    return mail_app_config


def test_script_in_every_field_stays_text_in_pages_mails_and_pdf(app, client, session, department, smtp_server):
    data = form_data(**{name: f"{name}{SCRIPT}" for name in TEXT_FIELDS})
    assert submit(client, data).status_code == 303
    deliver(app)
    for mail in smtp_server.inbox.messages:
        assert mail.get_content_type() == "text/plain"  # no HTML part that could run anything
        body = smtp_server.inbox.text(mail)
        assert f"company_name{SCRIPT}" in body

    # Found by subject: the parsed To header of a display name holding "<" no longer shows the address.
    [confirmation] = [m for m in smtp_server.inbox.messages if "確認のお願い" in str(m["Subject"])]
    link = re.search(r"http://localhost(/apply/confirm/\S+)", smtp_server.inbox.text(confirmation)).group(1)
    confirm_page = client.get(link).get_data(as_text=True)
    assert SCRIPT not in confirm_page
    assert ESCAPED in confirm_page
    client.post(link, data={"csrf_token": csrf_from(confirm_page)})

    staff = make_staff(session, department=department)
    staff_client = app.test_client()
    login_as(staff_client, staff)
    usage_request = latest_request(session)
    for url in ("/usage-requests/", f"/usage-requests/{usage_request.id}"):
        html = staff_client.get(url).get_data(as_text=True)
        assert SCRIPT not in html
        assert ESCAPED in html

    show = f"/usage-requests/{usage_request.id}"
    assert post_form(staff_client, f"{show}/accept", {}, page=show).status_code == 303
    text = pdf_text(staff_client.get(f"{show}/form.pdf").data)
    for name in TEXT_FIELDS:
        assert f"{name}{SCRIPT}" in text.replace("\r", "").replace("\n", "")
    html = staff_client.get(show).get_data(as_text=True)
    assert SCRIPT not in html


def test_refused_form_echoes_input_escaped(client, department):
    response = submit(client, form_data(company_name=SCRIPT, authority_email="x@gmail.com"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert SCRIPT not in html
    assert "&lt;script&gt;" in html


def test_pdf_is_an_a4_page_in_the_official_layout(app, session, department):
    usage_request = make_usage_request(session, department, status=UsageRequestStatus.ACCEPTED)
    with app.app_context():
        data = pdf.render_usage_request(usage_request, addressee="岡山県知事")
    document = pypdfium2.PdfDocument(data)
    page = document[0]
    width, height = page.get_size()
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    bitmap = page.render(scale=0.5, grayscale=True)
    pixels = bytes(bitmap.buffer)
    assert sum(1 for value in pixels if value < 128) > 1000, "page 1 rendered blank"
    text = page.get_textpage().get_text_bounded()
    for expected in ("(別記様式)", "電子契約利用申出書", "岡山県知事 様", "住所(所在地)", "商号(名称)",
                     "代表者職・氏名", "担当者職・氏名", "連絡先", "契約業務名", "【契約締結権限者】",
                     "メールアドレス", "【留意事項】",
                     "株式会社けいやく商事", "髙橋 一郎", "ichiro@keiyaku-shoji.example.jp", "086-224-2111",
                     "令和", "フリーメールアドレスは不可とします。", usage_request.receipt_number):
        assert expected in text, expected
    document.close()


def test_longest_allowed_values_wrap_and_nothing_is_lost(app, session, department):
    usage_request = make_usage_request(session, department, address="東" * 300, company_name="京" * 200,
                                       representative="都" * 200, contact_person="庁" * 200,
                                       contract_name="契" * 200, authority_title="役" * 100,
                                       authority_name="名" * 100)
    with app.app_context():
        data = pdf.render_usage_request(usage_request, addressee="岡山県知事")
    text = pdf_text(data)
    for char, count in (("東", 300), ("京", 200), ("都", 200), ("庁", 200), ("契", 200), ("役", 100), ("名", 100)):
        assert text.count(char) >= count, char


def test_generated_usage_request_embeds_its_font_and_reads_back_rare_names(app, session, department):
    require_font()
    usage_request = make_usage_request(session, department, status=UsageRequestStatus.ACCEPTED,
                                       company_name="株式会社𠮷野家", authority_name="髙橋 一郎",
                                       contact_person="﨑山 花子", contract_name="道路補修業務 DORO-2026-0011")
    with app.app_context():
        data = pdf.render_usage_request(usage_request, addressee="岡山県知事")
    assert_archival(data)
    text = run_tool("pdftotext", data)
    for name in (*RARE_NAMES, "DORO-2026-0011"):
        assert name in text, name
