"""The vendors' help tells the truth about the configured set-up: what Acrobat Reader will show with the
signing certificate, how long download links last, and whom to call."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from flask import Flask

from portal.signing import service
from tests.factories import make_department

UNKNOWN = "署名の有効性は不明です"
VALID_AATL = "信頼ソース取得元: Adobe Approved Trust List (AATL)"


def _help(app: Flask, query: str = "") -> str:
    response = app.test_client().get(f"/help{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _other_ca_pkcs12(path: Path) -> Path:
    """A PKCS#12 of a signing key certified by a CA that is not the portal's own (as an AATL CA would)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Trust Services"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "Example Document Signing CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "岡山県 電子契約サービス")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .sign(ca_key, hashes.SHA256()))
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"service", key, cert, [ca],
                                                           serialization.BestAvailableEncryption(b"pass")))
    return path


def _use_pkcs12(app: Flask, path: Path, **settings: Any) -> None:
    app.config.update(SIGNING_BACKEND="pkcs12", SIGNING_PKCS12_PATH=str(path), SIGNING_PKCS12_PASSPHRASE="pass",
                      **settings)


def test_with_the_builtin_root_the_help_says_unknown_and_how_to_trust_it(app: Flask) -> None:
    html = _help(app)

    assert UNKNOWN in html
    assert "「署名は有効です」と表示されます" in html  # once trusted
    assert VALID_AATL not in html
    assert 'href="/pki/root.crt"' in html
    assert app.test_client().get("/pki/root.crt").status_code == 200
    with app.app_context():
        root = service.configure(app.config).pki.root_cert  # type: ignore[union-attr]
    fingerprint = ":".join(f"{b:02X}" for b in root.fingerprint(hashes.SHA256()))
    assert fingerprint in html
    for step in ("［環境設定］", "ID と信頼済み証明書", "［読み込み］", "［信頼性を編集］",
                 "この証明書を信頼済みのルートとして使用"):
        assert step in html


def test_with_an_aatl_certificate_the_help_says_valid(app: Flask, tmp_path: Path) -> None:
    _use_pkcs12(app, _other_ca_pkcs12(tmp_path / "aatl.p12"), SIGNING_CERT_AATL=True)

    html = _help(app)

    assert "「署名は有効です」" in html
    assert VALID_AATL in html
    assert "Example Trust Services Example Document Signing CA" in html
    assert UNKNOWN not in html
    assert "/pki/root.crt" not in html


def test_another_ca_not_declared_aatl_is_unknown_until_its_root_is_trusted(app: Flask, tmp_path: Path) -> None:
    _use_pkcs12(app, _other_ca_pkcs12(tmp_path / "own-ca.p12"))

    html = _help(app)

    assert UNKNOWN in html
    assert VALID_AATL not in html
    assert "担当課から入手" in html
    assert "/pki/root.crt" not in html  # not the portal's root: the link would mislead


def test_a_certificate_from_the_builtin_root_is_detected_whatever_the_setting_says(
    app: Flask, tmp_path: Path
) -> None:
    with app.app_context():
        local = service.configure(app.config).pki
    assert local is not None
    path = tmp_path / "local.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"service", local.signing_key, local.signing_cert, [local.root_cert],
        serialization.BestAvailableEncryption(b"pass")))
    _use_pkcs12(app, path, SIGNING_CERT_AATL=True)

    html = _help(app)

    assert UNKNOWN in html
    assert 'href="/pki/root.crt"' in html
    assert VALID_AATL not in html


def test_a_broken_signing_setup_still_opens_the_help(app: Flask, tmp_path: Path) -> None:
    _use_pkcs12(app, tmp_path / "missing.p12", SIGNING_CERT_AATL=True)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    html = _help(app)

    assert "担当課にお問い合わせください" in html


@pytest.mark.parametrize("days", [7, 30])
def test_the_download_link_validity_comes_from_the_setting(app: Flask, days: int) -> None:
    app.config["DOWNLOAD_LINK_DAYS"] = days

    html = _help(app)

    assert f"ダウンロード用リンクは{days}日間有効です" in html
    assert "14日間" not in html


def test_no_template_or_mail_hard_codes_the_download_link_days() -> None:
    portal = Path(__file__).resolve().parents[2] / "portal"
    offenders = [str(path.relative_to(portal)) for path in portal.rglob("*")
                 if path.suffix in {".html", ".txt"} and re.search(r"14\s*日間", path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_department_of_the_link_is_named_with_its_phone(app: Flask, session: Any) -> None:
    department = make_department(session, code="DORO", name="土木部 道路建設課")
    department.contact_phone = "086-226-7470"
    department.contact_email = "doro@pref.example.jp"
    session.commit()

    html = _help(app, "?department=DORO")

    assert "土木部 道路建設課" in html
    assert "086-226-7470" in html
    assert "doro@pref.example.jp" in html
    assert "086-226-7470" not in _help(app, "?department=NOPE")


@pytest.mark.parametrize("code", ["' OR 1=1 --", "DORO\x00", "Ｄ" * 5000, "<script>alert(1)</script>", "%", "../DORO"])
def test_a_hostile_department_parameter_shows_the_plain_help(app: Flask, session: Any, code: str) -> None:
    department = make_department(session, code="DORO", name="土木部 道路建設課")
    department.contact_phone = "086-226-7470"
    session.commit()

    response = app.test_client().get("/help", query_string={"department": code})

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "086-226-7470" not in html
    assert "<script>alert(1)</script>" not in html
