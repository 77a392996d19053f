"""HTTP endpoints of portal.signing: /verify, /tsa, certificates, CRL, the admin page, the CLI."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import tsp
from cryptography import x509
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal.auth.models import Role
from portal.signing.cli import verify_command
from portal.signing.context import SigningContext
from portal.signing.inputs import TruncatedPdf
from portal.signing.pades import Approval, finalize, sign_approval
from tests.conftest import csrf_from, login_as, make_staff
from tests.pdfs import make_pdf
from tests.signing import hostile_pdfs
from tests.signing.conftest import BASE_URL


@pytest.fixture
def app_config(signing_settings: dict[str, Any]) -> dict[str, Any]:
    # Share the session's PKI so each app does not generate new keys.
    return {key: signing_settings[key] for key in ("PKI_DIR", "PUBLIC_BASE_URL", "AGENCY_NAME", "SERVICE_NAME")}


@pytest.fixture(scope="module")
def finalized(context: SigningContext) -> bytes:
    import datetime as dt

    approval = Approval("山田 太郎", "yamada@city.example.lg.jp", dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    return finalize(sign_approval(make_pdf(), approval, context=context), context=context)


def _upload(client: FlaskClient, data: bytes, filename: str = "契約書.pdf", **headers: str) -> Any:
    token = csrf_from(client.get("/verify").get_data(as_text=True))
    return client.post(
        "/verify",
        data={"csrf_token": token, "pdf": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        headers=headers,
    )


def test_verify_page_shows_the_acrobat_style_report(client: FlaskClient, finalized: bytes) -> None:
    response = _upload(client, finalized)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for phrase in (
        "署名は有効です",
        "文書は、この署名が適用されてから変更されていません",
        "埋め込みタイムスタンプが署名に含まれています",
        "署名は LTV 対応です",
        "山田 太郎 様 yamada@city.example.lg.jp が 2026-04-01 09:00:00 +09:00 JST に承認しました",
        "PAdES B-LTA",
    ):
        assert phrase in html, phrase


def test_verify_htmx_request_gets_only_the_report_partial(client: FlaskClient, finalized: bytes) -> None:
    response = _upload(client, finalized, **{"HX-Request": "true"})

    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="verify-report"')  # the partial, its Jinja comment rendered away
    assert "<html" not in html
    assert "HX-Request" in response.headers.get("Vary", "")


def test_verify_reports_tampering(client: FlaskClient, finalized: bytes) -> None:
    tampered = bytearray(finalized)
    position = finalized.index(b"(Contract page 1) Tj")
    tampered[position + 1] ^= 0x01

    html = _upload(client, bytes(tampered)).get_data(as_text=True)

    assert "署名は無効です" in html
    assert "この署名が適用された後に文書が改変されています" in html


def test_verify_refuses_a_non_pdf_with_its_message(client: FlaskClient) -> None:
    response = _upload(client, b"hello, not a pdf" * 10, filename="note.txt")

    assert response.status_code == 422
    assert "PDF ファイルではありません" in response.get_data(as_text=True)


@pytest.mark.parametrize("make", [hostile_pdfs.malformed_xref, hostile_pdfs.negative_startxref,
                                  hostile_pdfs.huge_xref_subsection, hostile_pdfs.root_not_a_dictionary,
                                  hostile_pdfs.wrong_offsets], ids=lambda make: make.__name__)
def test_verify_answers_a_broken_xref_with_its_message(client: FlaskClient, make: Any) -> None:
    response = _upload(client, make())

    assert response.status_code == 422
    assert TruncatedPdf.default_message in response.get_data(as_text=True)


def test_tsa_endpoint_speaks_rfc3161(client: FlaskClient) -> None:
    request = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": bytes(32)},
            "nonce": 12345,
            "cert_req": True,
        }
    )

    response = client.post("/tsa", data=request.dump(), content_type="application/timestamp-query")

    assert response.status_code == 200
    assert response.mimetype == "application/timestamp-reply"
    reply = tsp.TimeStampResp.load(response.data)
    assert reply["status"]["status"].native == "granted"
    tst_info = reply["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert tst_info["nonce"].native == 12345


def test_tsa_endpoint_refuses_other_content_types(client: FlaskClient) -> None:
    assert client.post("/tsa", data=b"x", content_type="text/plain").status_code == 415


def test_crl_and_root_certificate_are_served(client: FlaskClient, context: SigningContext) -> None:
    assert context.pki is not None

    crl = client.get("/pki/crl/root.crl")
    root = client.get("/pki/root.crt")

    assert crl.mimetype == "application/pkix-crl"
    assert x509.load_der_x509_crl(crl.data).is_signature_valid(context.pki.root_cert.public_key())
    assert x509.load_der_x509_certificate(root.data) == context.pki.root_cert
    assert client.get("/pki/root.key").status_code == 404
    assert client.get("/pki/crl/other.crl").status_code == 404
    assert context.pki.crl_url == f"{BASE_URL}/pki/crl/root.crl"


def test_admin_page_shows_certificates_and_warns_about_a_non_accredited_tsa(
    client: FlaskClient, session: Session
) -> None:
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    session.commit()
    login_as(client, admin)

    html = client.get("/admin/signing").get_data(as_text=True)

    assert "<title>電子署名の設定 | " in html  # a plain title, not the certificate table inside it
    assert html.count("<h2>内蔵 PKI の証明書</h2>") == 1
    assert "内蔵タイムスタンプ局" in html
    assert "認定タイムスタンプ局の一覧（TSA_ACCREDITED_URLS）に含まれていません" in html
    assert "有効期限" in html


def test_admin_page_is_for_admins_only(client: FlaskClient, session: Session) -> None:
    staff = make_staff(session, role=Role.STAFF)
    session.commit()
    login_as(client, staff)

    assert client.get("/admin/signing").status_code == 403


def test_cli_verify_exits_zero_only_when_all_valid(app: Flask, tmp_path: Path, finalized: bytes) -> None:
    good = tmp_path / "good.pdf"
    good.write_bytes(finalized)
    unsigned = tmp_path / "unsigned.pdf"
    unsigned.write_bytes(make_pdf())
    runner = app.test_cli_runner()

    ok = runner.invoke(verify_command, [str(good)])
    bad = runner.invoke(verify_command, [str(unsigned)])

    assert ok.exit_code == 0, ok.output
    assert "署名は有効です" in ok.output
    assert "結果: すべて有効です" in ok.output
    assert bad.exit_code == 1
    assert "この PDF には電子署名がありません。" in bad.output


def test_default_context_follows_the_app_settings(app: Flask, signing_settings: dict[str, Any]) -> None:
    from portal.signing import service

    with app.app_context():
        context = service.get_context()

    assert context.pki is not None
    assert str(context.pki.directory) == signing_settings["PKI_DIR"]
    assert context.max_bytes == app.config["PDF_MAX_BYTES"]
