"""Contracts inserted directly (status completed, documents in the real store), without the signing flow."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from portal import clock
from portal.auth.models import Department, StaffUser
from portal.clock import JST
from portal.contracts.documents import store_certificate, store_revision
from portal.contracts.models import (
    CertificateRevision,
    Contract,
    ContractDocument,
    ContractStatus,
    DocumentRevision,
    RevisionKind,
)
from portal.counterparties.normalize import normalize_name

MINIMAL_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
               b"trailer<</Root 1 0 R>>\n%%EOF\n")


def make_contract(
    session: Session,
    *,
    number: str,
    department: Department,
    created_by: StaffUser,
    transaction_date: date,
    amount: int,
    tax_amount: int,
    counterparty_name: str = "株式会社テスト",
    business_name: str = "テスト業務",
    status: ContractStatus = ContractStatus.COMPLETED,
    completed_at: datetime | None = None,
    documents: dict[str, bytes] | None = None,
    certificate: bytes | None = None,
    **fields: Any,
) -> Contract:
    """A contract row; completed ones get `completed_at` (default: noon JST on the transaction date)
    and their `documents` (filename → bytes, default one small PDF) stored as FINAL revisions, and
    `certificate` as their 合意締結証明書 (version 1)."""
    now = clock.now()
    is_completed = status is ContractStatus.COMPLETED
    if is_completed and completed_at is None:
        completed_at = datetime.combine(transaction_date, time(12), JST)
    contract = Contract(
        number=number, business_name=business_name, department_id=department.id,
        counterparty_name=counterparty_name, counterparty_name_normalized=normalize_name(counterparty_name),
        amount=amount, tax_amount=tax_amount, transaction_date=transaction_date,
        planned_conclusion_date=transaction_date, status=status, created_by_id=created_by.id,
        created_at=now, updated_at=now, completed_at=completed_at, sent_at=completed_at, **fields,
    )
    session.add(contract)
    if documents is None:
        documents = {f"{number}.pdf": MINIMAL_PDF}
    with session.info["app"].app_context():
        for position, (filename, data) in enumerate(documents.items(), start=1):
            document = ContractDocument(position=position, filename=filename, page_count=1,
                                        uploaded_by_id=created_by.id, created_at=now)
            contract.documents.append(document)
            session.flush()
            stored = store_revision(document, 1, data)
            document.revisions.append(DocumentRevision(
                number=1, kind=RevisionKind.FINAL if is_completed else RevisionKind.ORIGINAL,
                storage_key=stored.key, sha256=stored.sha256, size=stored.size, created_at=now))
        if certificate is not None:
            stored = store_certificate(contract, certificate)
            contract.certificate_key, contract.certificate_sha256 = stored.key, stored.sha256
            session.add(CertificateRevision(contract_id=contract.id, number=1, kind=RevisionKind.FINAL,
                                            storage_key=stored.key, sha256=stored.sha256, size=stored.size,
                                            created_at=now))
    session.commit()
    return contract
