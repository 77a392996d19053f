"""Download links of the completion mail (issued by portal.contracts.notifications): resolve and serve them."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.contracts import documents
from portal.contracts.models import DownloadLink
from portal.errors import LinkExpired, NotFound
from portal.tokens import hash_token

UNKNOWN_LINK = ("このダウンロード用リンクは使えません。"
                "リンクの有効期限が切れたか、新しいリンクが送られた可能性があります。最新の「電子署名完了のお知らせ」メールのリンクを開くか、担当課にお問い合わせください。")


def resolve_link(session: Session, token: str, *, now: datetime) -> DownloadLink:
    """Raises NotFound for an unknown token, LinkExpired (410) after DOWNLOAD_LINK_DAYS."""
    link = session.scalar(select(DownloadLink).where(DownloadLink.token_hash == hash_token(token)))
    if link is None:
        raise NotFound(UNKNOWN_LINK)
    if link.is_expired(now):
        days = current_app.config["DOWNLOAD_LINK_DAYS"]
        contract = link.contract
        raise LinkExpired(f"リンクの有効期限（{days}日）が切れています。締結済みの文書が必要な場合は、"
                          f"{contract.department.name}（契約番号 {contract.number}）にお問い合わせください。"
                          "新しいダウンロード用リンクをお送りします。").for_department(contract.department)
    return link


def record_opened(session: Session, link: DownloadLink, *, now: datetime, request: RequestInfo) -> None:
    """Log that the completion link's page (the list of signed documents) was opened."""
    record(session, actor=Actor.signer(link.recipient), action=AuditAction.CONTRACT_LINK_OPENED,
           subject=link.contract, now=now, ip=request.ip, user_agent=request.user_agent, link_id=link.id)


def download(session: Session, link: DownloadLink, document_id: int | None, *, now: datetime,
             request: RequestInfo) -> tuple[str, bytes]:
    """(filename, bytes) of a final document, or of the certificate when document_id is None; audited."""
    contract = link.contract
    if document_id is None:
        if not contract.certificate_key:
            raise NotFound("合意締結証明書がありません。")
        filename, data = f"合意締結証明書_{contract.number}.pdf", documents.read_certificate(contract)
    else:
        document = next((d for d in contract.documents if d.id == document_id), None)
        if document is None:
            raise NotFound("文書が見つかりません。")
        filename, data = document.download_name(document.current), documents.read_revision(document.current)
    link.download_count += 1
    link.last_downloaded_at = now
    record(session, actor=Actor.signer(link.recipient), action=AuditAction.CONTRACT_LINK_DOWNLOADED,
           subject=contract, now=now, ip=request.ip, user_agent=request.user_agent, filename=filename)
    return filename, data
