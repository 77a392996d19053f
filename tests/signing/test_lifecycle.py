"""The built-in PKI over time: revocations keep their real time in every CRL, certificates are
renewed before they expire (old signatures still verify), the admin page lists them all."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.audit.service import SYSTEM
from portal.auth.models import Role
from portal.signing import lifecycle, pades, service
from portal.signing import pki as local_pki
from portal.signing.models import CertificateRevocation
from portal.signing.pades import Approval, finalize, sign_approval
from tests.conftest import reread
from tests.factories import login_as, make_staff
from tests.pdfs import make_pdf
from tests.signing.conftest import BASE_URL


@pytest.fixture
def app_config(tmp_path: Path) -> dict[str, Any]:
    # A PKI of its own (made before the app, as `flask init` does): these tests revoke and renew its certificates.
    settings = {"PKI_DIR": str(tmp_path / "pki"), "PUBLIC_BASE_URL": BASE_URL, "AGENCY_NAME": "テスト市",
                "SERVICE_NAME": "テスト市電子契約"}
    service.ensure_pki(settings)
    return settings


def _pki(app: Flask) -> local_pki.LocalPki:
    return service.ensure_pki(app.config)


def _finalized(app: Flask) -> bytes:
    context = service.configure(app.config)
    approval = Approval("山田 太郎", "yamada@vendor.example.co.jp", clock.now())
    return finalize(sign_approval(make_pdf("keiyaku"), approval, context=context), context=context)


def _revoke(app: Flask, session: Session, serial: int, revoked_at: dt.datetime, **kwargs: Any) -> None:
    with app.app_context():
        lifecycle.revoke(session, _pki(app), serial_hex=f"{serial:x}", reason=kwargs.get("reason", "key_compromise"),
                         revoked_at=revoked_at, actor=SYSTEM, now=clock.now())
        session.commit()
        lifecycle.reissue_crl(session, _pki(app))


def _entry(der: bytes, serial: int) -> x509.RevokedCertificate:
    entry = x509.load_der_x509_crl(der).get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    return entry


def test_the_crl_keeps_the_recorded_revocation_time_across_reissues(app: Flask, session: Session) -> None:
    pki = _pki(app)
    serial = pki.signing_cert.serial_number
    revoked_at = (clock.now() - dt.timedelta(hours=2)).replace(microsecond=0)
    _revoke(app, session, serial, revoked_at)
    first = (pki.directory / "crl" / "root.crl").read_bytes()

    later = clock.now() + local_pki.CRL_REFRESH_AFTER + dt.timedelta(seconds=5)
    reissued = local_pki.current_crl(pki, now=later)  # the lazy re-issue reads the table
    much_later = local_pki.current_crl(pki, now=later + 3 * local_pki.CRL_REFRESH_AFTER)

    assert x509.load_der_x509_crl(reissued).last_update_utc == later.replace(microsecond=0)
    for der in (first, reissued, much_later):
        entry = _entry(der, serial)
        assert entry.revocation_date_utc == revoked_at
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    row = session.scalar(select(CertificateRevocation))
    assert row is not None
    assert row.revoked_at == revoked_at
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.PKI_CERTIFICATE_REVOKED))


def test_a_signature_made_after_the_revocation_time_is_reported_revoked(app: Flask, session: Session) -> None:
    signed_at = clock.now()
    before = _finalized(app)
    serial = _pki(app).signing_cert.serial_number
    # The key was compromised a minute before that signature; the revocation is recorded later.
    _revoke(app, session, serial, signed_at - dt.timedelta(minutes=1))

    report = pades.verify(before, context=service.configure(app.config))

    signature = next(s for s in report.signatures if not s.is_document_timestamp)
    assert not report.is_valid
    assert not signature.is_valid
    assert "署名者の証明書は失効しています（CRL に記載されています）。" in signature.problems


def test_a_signature_made_before_the_revocation_time_passes_long_term_validation(app: Flask, session: Session) -> None:
    earlier = _finalized(app)
    serial = _pki(app).signing_cert.serial_number
    _revoke(app, session, serial, clock.now(), reason="superseded")

    result = pades.long_term_validation(earlier, context=service.configure(app.config),
                                        at=clock.now() + dt.timedelta(minutes=1))

    assert result.is_valid, result.indications


@pytest.mark.parametrize(("serial", "reason", "shift", "message"), [
    ("not-hex", "key_compromise", 0, "16 進数"),
    ("deadbeef", "key_compromise", 0, "内蔵 PKI が発行したものではありません"),
    ("ROOT", "key_compromise", 0, "内蔵 PKI が発行したものではありません"),
    ("SIGNING", "because", 0, "失効理由"),
    ("SIGNING", "key_compromise", 3600, "未来"),
    ("SIGNING\n; DROP TABLE certificate_revocations", "key_compromise", 0, "16 進数"),
])
def test_a_refused_revocation_says_why_and_records_nothing(app: Flask, session: Session, serial: str, reason: str,
                                                          shift: int, message: str) -> None:
    pki = _pki(app)
    serial = serial.replace("ROOT", f"{pki.root_cert.serial_number:x}").replace(
        "SIGNING", f"{pki.signing_cert.serial_number:x}")
    with app.app_context(), pytest.raises(lifecycle.RevocationRefused, match=message):
        lifecycle.revoke(session, pki, serial_hex=serial, reason=reason,
                         revoked_at=clock.now() + dt.timedelta(seconds=shift), actor=SYSTEM, now=clock.now())
    session.rollback()
    assert reread(session).scalar(select(CertificateRevocation)) is None


def test_revoking_twice_is_refused(app: Flask, session: Session) -> None:
    serial = _pki(app).tsa_cert.serial_number
    _revoke(app, session, serial, clock.now())
    with pytest.raises(lifecycle.RevocationRefused, match="すでに失効"):
        _revoke(app, session, serial, clock.now())


def test_due_certificates_are_renewed_once_and_old_signatures_still_verify(app: Flask, session: Session) -> None:
    old = _finalized(app)
    pki = _pki(app)
    old_signing, old_tsa = pki.signing_cert, pki.tsa_cert
    settings = {**app.config, "PKI_RENEW_DAYS": 365 * 5}  # both are due now
    barrier = threading.Barrier(2)
    renewed: list[list[local_pki.CertificateRecord]] = []

    def renew() -> None:
        with app.app_context():
            factory = app.extensions["portal.session_factory"]
            with factory() as own:
                barrier.wait()
                renewed.append(lifecycle.renew_due_certificates(own, pki, settings, now=clock.now()))
                own.commit()

    threads = [threading.Thread(target=renew) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Each certificate is renewed by exactly one of them (one may take both, or each one of the two).
    assert sum(len(r) for r in renewed) == 2
    fresh = local_pki.load_local_pki(pki.directory)
    assert fresh.signing_cert != old_signing
    assert fresh.tsa_cert != old_tsa
    assert fresh.signing_cert.issuer == fresh.root_cert.subject
    assert fresh.signing_cert.public_key() != old_signing.public_key()
    listed = {record.certificate for record in local_pki.list_certificates(fresh)}
    assert {old_signing, old_tsa, fresh.signing_cert, fresh.tsa_cert, fresh.root_cert} == listed
    assert not (fresh.directory / "signing.key").exists()  # the retired key is gone, its certificate stays
    context = service.configure(app.config)
    assert context.signer.certificate.serial_number == fresh.signing_cert.serial_number
    assert pades.verify(old, context=context).is_valid
    new = _finalized(app)
    assert pades.verify(new, context=context).is_valid
    events = reread(session).scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.PKI_CERTIFICATE_RENEWED))
    assert sorted(event.details["role"] for event in events) == ["signing", "tsa"]


def test_a_revoked_signing_certificate_is_replaced_by_the_next_check(app: Flask, session: Session) -> None:
    pki = _pki(app)
    _revoke(app, session, pki.signing_cert.serial_number, clock.now())

    result = app.test_cli_runner().invoke(args=["pki", "renew"])

    assert result.exit_code == 0, result.output
    assert "更新しました: signing" in result.output
    assert local_pki.load_local_pki(pki.directory).signing_cert != pki.signing_cert


def test_admin_page_lists_every_certificate_and_warns_90_days_ahead(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    pki = _pki(app)
    retired = pki.signing_cert
    local_pki.renew_certificate(pki, local_pki.SIGNING_NAME, lifetime=dt.timedelta(days=80))
    current = local_pki.load_local_pki(pki.directory).signing_cert
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    session.commit()
    login_as(client, admin)

    html = client.get("/admin/signing").get_data(as_text=True)

    assert f"{retired.serial_number:x}" in html
    assert f"{current.serial_number:x}" in html
    assert f"{pki.tsa_cert.serial_number:x}" in html
    assert f"署名用証明書の有効期限（{current.not_valid_after_utc:%Y-%m-%d}）が 90 日以内です。" in html
    assert "過去" in html


def test_cli_revoke_records_the_given_time_and_refuses_a_non_admin(app: Flask, session: Session) -> None:
    pki = _pki(app)
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    staff = make_staff(session, role=Role.STAFF, email="staff@pref.example.jp")
    session.commit()
    serial = f"{pki.tsa_cert.serial_number:x}"
    runner = app.test_cli_runner()

    refused = runner.invoke(args=["pki", "revoke", serial, "--as", staff.email])
    naive = runner.invoke(args=["pki", "revoke", serial, "--as", admin.email, "--at", "2026-12-01T09:00:00"])
    done = runner.invoke(args=["pki", "revoke", serial, "--as", admin.email, "--reason", "key_compromise",
                               "--at", "2026-12-01T09:00:00+09:00"])
    listing = runner.invoke(args=["pki", "certificates"])

    assert refused.exit_code != 0
    assert "管理者のアカウントではありません" in refused.output
    assert "タイムゾーン" in naive.output
    assert done.exit_code == 0, done.output
    entry = _entry((pki.directory / "crl" / "root.crl").read_bytes(), pki.tsa_cert.serial_number)
    assert entry.revocation_date_utc == dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)
    assert "失効" in listing.output
    assert len(reread(session).scalars(select(CertificateRevocation)).all()) == 1
