"""合意締結証明書 (completion certificate): an archival A4 PDF (portal/printing/archival.py) listing the
contract, who sent it and when, every delivered document with its SHA-256 before and after signing,
and each signer's name, title, organisation, e-mail, authentication methods, time, IP and user agent.

completion.py signs it with the service key and makes it B-LTA like the documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.contracts.models import AUTH_LABELS, Contract, Party
from portal.formatting import jst_wareki, wareki, yen
from portal.printing.archival import HEADING_GAP, HEADING_SIZE, ArchivalPdf, Metadata

TITLE = "合意締結証明書"
HASH_SIZE = 8.5  # pt: a SHA-256 in hex fits one line of the value column


@dataclass(frozen=True)
class Issuer:
    agency: str  # AGENCY_NAME
    service: str  # SERVICE_NAME

    @property
    def name(self) -> str:
        return f"{self.agency} {self.service}"


def signature_reason(contract: Contract, issuer: Issuer) -> str:
    """The /Reason of the service's signature on the certificate."""
    return f"{issuer.name} が契約番号 {contract.number} の合意締結証明書を発行しました"


def _signer_rows(party: Party) -> list[tuple[str, str]]:
    return [
        ("氏名", party.name),
        ("役職", party.title),
        ("所属・商号", party.organization),
        ("メールアドレス", party.email),
        ("認証方法", "、".join(AUTH_LABELS.get(method, method) for method in party.auth_methods)),
        ("署名日時", jst_wareki(party.signed_at, seconds=True)),
        ("IPアドレス", party.signed_ip),
        ("ユーザーエージェント", party.signed_user_agent),
    ]


def render(contract: Contract, *, issuer: Issuer, issued_at: datetime, completed_at: datetime,
           final_digests: dict[int, str]) -> bytes:
    """The unsigned certificate. `final_digests`: SHA-256 of each document's final (B-LTA) file, by document id."""
    sheet = ArchivalPdf(Metadata(title=f"{TITLE} {contract.number}", author=issuer.name,
                                 subject=contract.business_name),
                        footer=f"{TITLE} 契約番号 {contract.number} ／ 発行 {issuer.name}")
    sheet.text(TITLE, size=18, align="C", gap_mm=5)
    sheet.text(f"{issuer.name}は、次の契約について、下記の署名者全員が電子署名の手続きを完了し、"
               "合意が締結されたことを証明します。", gap_mm=5)
    sender = contract.sent_by
    sheet.heading("契約")
    sheet.rows([
        ("契約番号", contract.number),
        ("業務名", contract.business_name),
        ("取引先", contract.counterparty_name),
        ("契約金額", f"{yen(contract.amount)}（うち消費税及び地方消費税額 {yen(contract.tax_amount)}）"),
        ("取引年月日", wareki(contract.transaction_date)),
        ("決裁番号", contract.approval_reference),
        ("送信者", f"{sender.department.name} {sender.title} {sender.name}".replace("  ", " ") if sender else ""),
        ("送信日時", jst_wareki(contract.sent_at, seconds=True)),
        ("締結日時", jst_wareki(completed_at, seconds=True)),
    ])
    sheet.heading("文書")
    for document in contract.documents:
        caption = f"{document.position}. {document.filename}（{document.page_count}ページ）"
        hashes = [("署名前 SHA-256", document.original.sha256), ("締結済み SHA-256", final_digests[document.id])]
        sheet.keep_together(sheet.text_height(caption, gap_mm=1) + sheet.rows_height(hashes, size=HASH_SIZE, gap_mm=3))
        sheet.text(caption, gap_mm=1)
        sheet.rows(hashes, size=HASH_SIZE, gap_mm=3)
    signers = [(f"{party.position}. {party.role.label}", _signer_rows(party)) for party in contract.parties]
    heading = "署名者（署名順）"
    for index, (caption, rows) in enumerate(signers):
        height = sheet.text_height(caption, gap_mm=1) + sheet.rows_height(rows, gap_mm=3)
        if index == 0:  # the heading stays with the first signer
            height += sheet.text_height(heading, size=HEADING_SIZE, gap_mm=HEADING_GAP)
        sheet.keep_together(height)
        if index == 0:
            sheet.heading(heading)
        sheet.text(caption, gap_mm=1)
        sheet.rows(rows, gap_mm=3)
    sheet.rule()
    sheet.text(f"発行日時 {jst_wareki(issued_at, seconds=True)}　発行者 {issuer.name}", size=9, gap_mm=1)
    sheet.text("この証明書には発行者の電子署名とタイムスタンプが付されています。署名前後の文書は上記の SHA-256 で"
               "照合できます。", size=9)
    return sheet.output()
