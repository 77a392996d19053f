"""The built-in PKI over time: certificates renewed before they expire, revocations recorded.

- renew_due_certificates(): the worker's periodic job.  The service signing certificate is
  renewed PKI_RENEW_DAYS before it expires; the TSA certificate TIMESTAMP_RENEW_DAYS earlier
  still, so that documents timestamped by the old one can get their archive timestamp from
  the new one before the old one is due (portal.preservation.renewal).
- revoke(): a row in certificate_revocations with the moment the certificate stopped being
  trustworthy; every CRL lists exactly those rows with exactly those times.
- certificate_overview(): every certificate (current and retired) with expiry and warnings.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, record
from portal.errors import DomainError

from . import pki as local_pki
from .models import CertificateRevocation

log = logging.getLogger(__name__)
WARN_BEFORE = dt.timedelta(days=90)
REASONS = {flag.name: flag for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl}
ROLE_LABELS = {local_pki.ROOT_NAME: "ルート認証局", local_pki.SIGNING_NAME: "署名用証明書",
               local_pki.TSA_NAME: "タイムスタンプ局"}
_LEGACY_REVOKED_FILE = "revoked.txt"


class RevocationRefused(DomainError):
    """The serial number is not one of ours, is already revoked, or the input is malformed."""


def revocation_entries(session: Session) -> list[local_pki.RevokedEntry]:
    """Every recorded revocation, as the CRL lists it."""
    rows = session.scalars(select(CertificateRevocation).order_by(CertificateRevocation.id))
    return [local_pki.RevokedEntry(int(row.serial_number, 16), row.revoked_at, REASONS.get(row.reason)) for row in rows]


def revoke(session: Session, pki: local_pki.LocalPki, *, serial_hex: str, reason: str, revoked_at: dt.datetime,
           actor: Actor, now: dt.datetime, note: str = "") -> CertificateRevocation:
    """Record that the certificate with ``serial_hex`` (issued by our root) was revoked at ``revoked_at``.

    The caller commits, then calls reissue_crl() so that the next CRL lists it.
    Raises RevocationRefused for an unknown serial, one already revoked, an unknown reason, or a
    revocation time in the future.
    """
    serial = serial_hex.strip().lower().removeprefix("0x").replace(":", "")
    try:
        number = int(serial, 16)
    except ValueError:
        raise RevocationRefused("シリアル番号は 16 進数で指定してください。") from None
    known = {record_.certificate.serial_number: record_ for record_ in local_pki.list_certificates(pki)}
    if number not in known or known[number].role == local_pki.ROOT_NAME:
        raise RevocationRefused(f"シリアル番号 {serial} の証明書は内蔵 PKI が発行したものではありません。")
    if reason not in REASONS:
        raise RevocationRefused(f"失効理由 {reason} は使えません（{', '.join(REASONS)}）。")
    if revoked_at > now:
        raise RevocationRefused("失効日時に未来の時刻は指定できません。")
    if session.scalar(select(CertificateRevocation).where(CertificateRevocation.serial_number == f"{number:x}")):
        raise RevocationRefused(f"シリアル番号 {serial} の証明書はすでに失効しています。")
    row = CertificateRevocation(serial_number=f"{number:x}", subject=known[number].subject, reason=reason,
                                revoked_at=revoked_at, recorded_at=now, recorded_by=actor.label, note=note)
    session.add(row)
    session.flush()
    record(session, actor=actor, action=AuditAction.PKI_CERTIFICATE_REVOKED, subject=row, now=now,
           serial=row.serial_number, reason=reason, revoked_at=revoked_at.isoformat())
    return row


def reissue_crl(session: Session, pki: local_pki.LocalPki, *, now: dt.datetime | None = None) -> bytes:
    """Issue the CRL from the revocations table now (after a revocation has committed)."""
    return local_pki.issue_crl(pki, revocation_entries(session), now=now)


def import_legacy_revocations(session: Session, pki: local_pki.LocalPki, *, now: dt.datetime) -> int:
    """Move serials from the old ``revoked.txt`` into the table (revoked at the file's time); returns how many."""
    path = pki.directory / _LEGACY_REVOKED_FILE
    if not path.exists():
        return 0
    revoked_at = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    existing = set(session.scalars(select(CertificateRevocation.serial_number)))
    added = 0
    for line in path.read_text().split():
        serial = f"{int(line, 16):x}"
        if serial not in existing:
            session.add(CertificateRevocation(serial_number=serial, subject="", reason="unspecified",
                                              revoked_at=min(revoked_at, now), recorded_at=now, recorded_by="system",
                                              note=f"{_LEGACY_REVOKED_FILE} から移行"))
            existing.add(serial)
            added += 1
    session.flush()
    path.rename(path.with_name(f"{_LEGACY_REVOKED_FILE}.imported"))
    return added


def _renew_before(settings: Mapping[str, Any]) -> dict[str, dt.timedelta]:
    signing_days = int(settings.get("PKI_RENEW_DAYS", 120))
    timestamp_days = int(settings.get("TIMESTAMP_RENEW_DAYS", 365))
    return {local_pki.SIGNING_NAME: dt.timedelta(days=signing_days),
            local_pki.TSA_NAME: dt.timedelta(days=signing_days + timestamp_days)}


def due_roles(pki: local_pki.LocalPki, settings: Mapping[str, Any], *, now: dt.datetime) -> list[str]:
    """The built-in certificates whose remaining validity is shorter than their renewal margin."""
    before = _renew_before(settings)
    return [role for role in local_pki.RENEWABLE if pki.current(role).not_valid_after_utc - now < before[role]]


def renew_due_certificates(session: Session, pki: local_pki.LocalPki, settings: Mapping[str, Any], *,
                           now: dt.datetime, force: tuple[str, ...] = ()) -> list[local_pki.CertificateRecord]:
    """Renew every built-in certificate that is due (or named in ``force``, or revoked); returns the new ones.

    Audited; the caller commits.  The CRL is re-issued from the table afterwards.
    """
    import_legacy_revocations(session, pki, now=now)
    revoked = {entry.serial_number for entry in revocation_entries(session)}
    roles = set(due_roles(pki, settings, now=now)) | set(force)
    roles |= {role for role in local_pki.RENEWABLE if pki.current(role).serial_number in revoked}
    renewed = []
    for role in local_pki.RENEWABLE:
        if role not in roles:
            continue
        old = pki.current(role)
        years = int(settings.get("SIGNING_CERT_YEARS", 2)) if role == local_pki.SIGNING_NAME else 5
        renewed_pki = local_pki.renew_certificate(pki, role, years=years, now=now, replacing=old.serial_number)
        if renewed_pki is None:
            pki = local_pki.load_local_pki(pki.directory)
            continue  # another process renewed it meanwhile (and recorded that)
        pki = renewed_pki
        new = pki.current(role)
        record(session, actor=SYSTEM, action=AuditAction.PKI_CERTIFICATE_RENEWED, subject=("pki", role), now=now,
               role=role, old_serial=f"{old.serial_number:x}", old_not_after=old.not_valid_after_utc.isoformat(),
               serial=f"{new.serial_number:x}", not_after=new.not_valid_after_utc.isoformat())
        log.info("built-in %s certificate renewed: %x until %s", role, new.serial_number, new.not_valid_after_utc)
        renewed.append(next(r for r in local_pki.list_certificates(pki) if r.certificate == new))
    reissue_crl(session, pki, now=now)
    return renewed


@dataclass(frozen=True)
class CertificateLine:
    """One line of the admin page's certificate list."""

    role_label: str
    subject: str
    serial_hex: str
    not_before: dt.datetime
    not_after: dt.datetime
    is_current: bool
    revoked_at: dt.datetime | None
    warning: str | None


def certificate_overview(pki: local_pki.LocalPki, revocations: list[local_pki.RevokedEntry], *,
                         now: dt.datetime) -> list[CertificateLine]:
    """Every certificate of the built-in PKI with its expiry; current ones warn 90 days ahead."""
    revoked_at = {entry.serial_number: entry.revoked_at for entry in revocations}
    lines = []
    for item in local_pki.list_certificates(pki):
        label = ROLE_LABELS.get(item.role, item.role)
        when = revoked_at.get(item.certificate.serial_number)
        warning = None
        if item.is_current and when is not None:
            warning = (f"使用中の{label}（{item.serial_hex}）は失効しています。"
                       "更新してください（flask --app app pki renew）。")
        elif item.is_current and item.not_after - now < WARN_BEFORE:
            warning = f"{label}の有効期限（{item.not_after:%Y-%m-%d}）が 90 日以内です。"
        lines.append(CertificateLine(label, item.subject, item.serial_hex, item.certificate.not_valid_before_utc,
                                     item.not_after, item.is_current, when, warning))
    return lines


def register(app: Any, load_pki: Callable[[Mapping[str, Any]], local_pki.LocalPki]) -> None:
    """The periodic job (hourly) and the CRL's revocation source for this app's database; `load_pki` is
    portal.signing.service.ensure_pki (passed in: the service reads this module's certificate overview)."""
    from portal import clock
    from portal.jobs import register_job

    database_url = app.config["DATABASE_URL"]

    def source() -> list[local_pki.RevokedEntry]:
        # Called from the signing loop at most once per CRL_REFRESH_AFTER: an unpooled engine of
        # its own, so no connection outlives the call (nor the app that registered it).
        from sqlalchemy.pool import NullPool

        from portal.db import make_engine

        engine = make_engine(database_url, poolclass=NullPool)
        try:
            with Session(engine) as session:
                return revocation_entries(session)
        finally:
            engine.dispose()

    pki_dir = Path(app.config["PKI_DIR"])
    local_pki.register_revocation_source(pki_dir, source)

    def job(session: Session) -> None:
        pki = load_pki(app.config)
        renew_due_certificates(session, pki, app.config, now=clock.now())

    register_job(app, "pki-lifecycle", job, every_seconds=int(app.config["PKI_CHECK_SECONDS"]))
