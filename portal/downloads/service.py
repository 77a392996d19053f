"""Completion (R4, R17, R18): B-LTA on every document and the certificate, status 締結済み in the same
transaction, then 「電子署名完了のお知らせ」 to every party with a download link valid DOWNLOAD_LINK_DAYS.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, RequestInfo, record
from portal.contracts.models import Contract, ContractStatus, DocumentRevision, PartyStatus, RevisionKind
from portal.downloads import certificate
from portal.downloads.models import DownloadLink
from portal.errors import DomainError, LinkExpired, NotFound
from portal.formatting import jst, wareki, yen
from portal.mail.service import enqueue
from portal.signature_requests.service import AUTH_LABELS
from portal.signature_requests.signing import finalize_bytes
from portal.storage import get_store
from portal.tokens import hash_token, new_token
from portal.urls import external_url

UNKNOWN_LINK = "このダウンロード用リンクは無効です。メールに記載されたURLをもう一度ご確認ください。"


class NotCompleted(DomainError):
    status_code = 409


def complete_contract(session: Session, contract: Contract, *, now: datetime) -> None:
    """Finalize (PAdES B-LTA) every document, sign the 合意締結証明書, mark 締結済み, mail everyone.

    Refuses (NotCompleted) while any signer has not signed (R4). Raises portal.signing errors
    (TimestampUnavailable, RevocationUnavailable) before anything is changed.
    """
    if any(p.status is not PartyStatus.SIGNED for p in contract.parties) or not contract.parties:
        raise NotCompleted("全ての署名者の署名が揃っていないため、締結済みにできません。")
    finals = [(document, finalize_bytes(get_store().get(document.current.storage_key)))
              for document in contract.documents]
    store = get_store()
    for document, data in finals:
        stored = store.put(data)
        document.revisions.append(DocumentRevision(
            number=document.current.number + 1, kind=RevisionKind.FINAL, storage_key=stored.key,
            sha256=stored.sha256, size=stored.size, created_at=now))
    contract.status = ContractStatus.COMPLETED
    contract.completed_at = now
    contract.updated_at = now
    stored_certificate = store.put(finalize_bytes(certificate_pdf(contract, now=now)))
    contract.certificate_key = stored_certificate.key
    contract.certificate_sha256 = stored_certificate.sha256
    session.flush()
    record(session, actor=SYSTEM, action=AuditAction.CONTRACT_COMPLETED, subject=contract, now=now,
           documents=[{"filename": d.filename, "sha256": d.current.sha256} for d in contract.documents],
           certificate_sha256=stored_certificate.sha256)
    _mail_completion(session, contract, now=now)


def _mail_completion(session: Session, contract: Contract, *, now: datetime) -> None:
    days = current_app.config["DOWNLOAD_LINK_DAYS"]
    recipients = {p.email.lower(): p for p in contract.parties}
    for party in recipients.values():
        token, token_hash = new_token()
        link = DownloadLink(contract=contract, recipient=party.email, token_hash=token_hash, created_at=now,
                            expires_at=now + timedelta(days=days))
        session.add(link)
        enqueue(session, "signature_completed", party.email,
                {"contract": contract, "party": party, "link": external_url("downloads.show", token=token),
                 "expires_at": link.expires_at, "days": days, "is_vendor": party.staff_user_id is None},
                to_name=party.name, now=now)
    session.flush()


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
        lines.append(line(f"{party.position}. {party.role.label}: {party.display_name}",
                          gap_before=4))
        lines.append(line(f"   メールアドレス: {party.email}"))
        signed_at = jst(party.signed_at, "%Y-%m-%d %H:%M:%S")
        lines.append(line(f"   署名日時: {signed_at} JST  IPアドレス: {party.signed_ip}"))
        lines.append(line(f"   認証方法: {methods}"))
    lines.append(line(f"発行日時: {jst(now, '%Y-%m-%d %H:%M:%S')} JST  発行者: {config['AGENCY_NAME']} "
                   f"{config['SERVICE_NAME']}", gap_before=10))
    return certificate.render(lines)


def issue_link(session: Session, contract: Contract, *, recipient: str, now: datetime) -> str:
    """A new download link for a completed contract (e.g. staff re-sending it). Raises NotCompleted."""
    if contract.status is not ContractStatus.COMPLETED:
        raise NotCompleted("締結済みの契約ではありません。")
    token, token_hash = new_token()
    session.add(DownloadLink(contract=contract, recipient=recipient, token_hash=token_hash, created_at=now,
                             expires_at=now + timedelta(days=current_app.config["DOWNLOAD_LINK_DAYS"])))
    session.flush()
    return external_url("downloads.show", token=token)


def resolve_link(session: Session, token: str, *, now: datetime) -> DownloadLink:
    """Raises NotFound for an unknown token, LinkExpired (410) after DOWNLOAD_LINK_DAYS."""
    link = session.scalar(select(DownloadLink).where(DownloadLink.token_hash == hash_token(token)))
    if link is None:
        raise NotFound(UNKNOWN_LINK)
    if link.is_expired(now):
        days = current_app.config["DOWNLOAD_LINK_DAYS"]
        contract = link.contract
        raise LinkExpired(f"リンクの有効期限（{days}日）が切れています。締結済みの文書が必要な場合は、"
                          f"{contract.department.name}（契約番号 {contract.number}）にお問い合わせください。")
    return link


def download(session: Session, link: DownloadLink, document_id: int | None, *, now: datetime,
             request: RequestInfo) -> tuple[str, bytes]:
    """(filename, bytes) of a final document, or of the certificate when document_id is None; audited."""
    contract = link.contract
    if document_id is None:
        if not contract.certificate_key:
            raise NotFound("合意締結証明書がありません。")
        filename, data = f"合意締結証明書_{contract.number}.pdf", get_store().get(contract.certificate_key)
    else:
        document = next((d for d in contract.documents if d.id == document_id), None)
        if document is None:
            raise NotFound("文書が見つかりません。")
        filename, data = document.filename, get_store().get(document.current.storage_key)
    link.download_count += 1
    link.last_downloaded_at = now
    record(session, actor=Actor.signer(link.recipient), action=AuditAction.CONTRACT_LINK_DOWNLOADED,
           subject=contract, now=now, ip=request.ip, user_agent=request.user_agent, filename=filename)
    return filename, data
