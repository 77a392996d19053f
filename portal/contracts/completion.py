"""Completion: PAdES B-LTA on every document, the signed 合意締結証明書, status 締結済み — one transaction.

complete_contract() is a plain function of (session, contract, now): today the last signer's
request calls it right after the signature; a worker job can call it just the same later.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from portal.contracts import certificate, lifecycle
from portal.contracts.models import AUTH_LABELS, Contract, DocumentRevision, RevisionKind
from portal.contracts.signatures import finalize_bytes
from portal.formatting import jst, wareki, yen
from portal.storage import get_store


def complete_contract(session: Session, contract: Contract, *, now: datetime) -> None:
    """Finalize (B-LTA) every document, sign the certificate, mark 締結済み; the completion mails are queued.

    Locks the contract. Raises lifecycle.TransitionRefused while any signer has not signed or when
    the contract was closed meanwhile (e.g. moved to paper), and portal.signing errors
    (TimestampUnavailable, RevocationUnavailable) before anything is changed.
    """
    contract = lifecycle.lock(session, contract.id)
    lifecycle.require(contract, lifecycle.Action.COMPLETE)
    lifecycle.require_all_signed(contract)
    store = get_store()
    finals = [(document, finalize_bytes(store.get(document.current.storage_key))) for document in contract.documents]
    for document, data in finals:
        stored = store.put(data)
        document.revisions.append(DocumentRevision(
            number=document.current.number + 1, kind=RevisionKind.FINAL, storage_key=stored.key,
            sha256=stored.sha256, size=stored.size, created_at=now))
    contract.completed_at = now
    stored_certificate = store.put(finalize_bytes(certificate_pdf(contract, now=now)))
    contract.certificate_key = stored_certificate.key
    contract.certificate_sha256 = stored_certificate.sha256
    session.flush()
    lifecycle.complete(session, contract, now=now,
                       documents=[{"filename": d.filename, "sha256": d.current.sha256} for d in contract.documents],
                       certificate_sha256=stored_certificate.sha256)


def certificate_pdf(contract: Contract, *, now: datetime) -> bytes:
    """The unsigned 合意締結証明書 for a completed contract (its documents' final revisions)."""
    config = current_app.config
    line = certificate.Line
    lines = [
        line("合意締結証明書", 18),
        line(f"{config['AGENCY_NAME']} {config['SERVICE_NAME']}は、次の契約について、下記の署名者全員が"
             "電子署名の手続きを完了し、合意が締結されたことを証明します。", gap_before=10),
        line(f"契約番号: {contract.number}", gap_before=8),
        line(f"業務名: {contract.business_name}"),
        line(f"取引先: {contract.counterparty_name}"),
        line(f"契約金額: {yen(contract.amount)}（うち消費税及び地方消費税額 {yen(contract.tax_amount)}）"),
        line(f"取引年月日: {wareki(contract.transaction_date)}（{contract.transaction_date.isoformat()}）"),
        line(f"締結日時: {jst(contract.completed_at, '%Y-%m-%d %H:%M:%S')} JST"),
        line(f"決裁番号: {contract.approval_reference}"),
        line("文書（締結済みファイルの SHA-256）", 12, gap_before=10),
    ]
    for document in contract.documents:
        lines.append(line(f"{document.position}. {document.filename}（{document.page_count}ページ）"))
        lines.append(line(f"   締結済み SHA-256: {document.current.sha256}"))
        lines.append(line(f"   原本 SHA-256: {document.original.sha256}"))
    lines.append(line("署名者（署名順）", 12, gap_before=10))
    for party in contract.parties:
        methods = "、".join(AUTH_LABELS.get(m, m) for m in party.auth_methods)
        lines.append(line(f"{party.position}. {party.role.label}: {party.display_name}", gap_before=4))
        lines.append(line(f"   メールアドレス: {party.email}"))
        signed_at = jst(party.signed_at, "%Y-%m-%d %H:%M:%S")
        lines.append(line(f"   署名日時: {signed_at} JST  IPアドレス: {party.signed_ip}"))
        lines.append(line(f"   認証方法: {methods}"))
    lines.append(line(f"発行日時: {jst(now, '%Y-%m-%d %H:%M:%S')} JST  発行者: {config['AGENCY_NAME']} "
                      f"{config['SERVICE_NAME']}", gap_before=10))
    return certificate.render(lines)
