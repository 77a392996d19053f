"""What a backup must bring back, measured on the snapshot and again on the restored database:
row counts, the newest audit event, and the answers of a few searches (電帳法 search must find the
same contracts after a restore)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from portal.audit import chain
from portal.audit.models import AuditEvent
from portal.auth.models import Role, StaffUser
from portal.contracts.models import Contract, ContractDocument, ContractStatus, DocumentRevision, PageImage
from portal.preservation.models import MetadataCorrection

SEARCH_SAMPLE = 12  # contracts whose counterparty, business name, number and date are searched for


def counts(connection: Connection) -> dict[str, Any]:
    """Row counts of the records a restore must bring back, and the newest audit event."""
    session = Session(bind=connection)

    def count(model: Any, *where: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    result: dict[str, Any] = {
        "contracts": count(Contract),
        "completed_contracts": count(Contract, Contract.status == ContractStatus.COMPLETED),
        "documents": count(ContractDocument),
        "document_revisions": count(DocumentRevision),
        "page_images": count(PageImage),
        "metadata_corrections": count(MetadataCorrection),
        "audit_events": count(AuditEvent),
    }
    result["last_audit_event_id"] = session.scalar(select(func.max(AuditEvent.id)))
    result["audit_chain_position"], result["last_audit_hash"] = chain.head(session)
    return result


def _auditor() -> StaffUser:
    return StaffUser(role=Role.AUDITOR, department_id=0)


def search_probes(connection: Connection) -> list[dict[str, Any]]:
    """Searches by 取引先, 業務名, 契約番号 and 取引年月日 for a sample of contracts, with the ids found."""
    from portal.search.criteria import SearchCriteria

    session = Session(bind=connection)
    ids = list(session.scalars(select(Contract.id).order_by(Contract.id)))
    step = max(1, len(ids) // SEARCH_SAMPLE)
    probes: list[dict[str, Any]] = [{"criteria": {}}]
    for contract_id in ids[::step][:SEARCH_SAMPLE]:
        contract = session.get(Contract, contract_id)
        assert contract is not None
        probes += [{"criteria": {"counterparty": contract.counterparty_name}},
                   {"criteria": {"business_name": contract.business_name}},
                   {"criteria": {"number": contract.number}},
                   {"criteria": {"date_from": contract.transaction_date.isoformat(),
                                 "date_to": contract.transaction_date.isoformat()}}]
    for probe in probes:
        probe["found"] = _search(session, SearchCriteria, probe["criteria"])
    session.close()
    return probes


def _search(session: Session, criteria_class: Any, criteria: dict[str, Any]) -> dict[str, Any]:
    from datetime import date

    from portal.search.service import search_contracts

    values = {key: date.fromisoformat(value) if key.startswith("date_") else value for key, value in criteria.items()}
    page = search_contracts(session, criteria_class(per_page=100, **values), actor=_auditor())
    return {"total": page.total, "first_ids": sorted(contract.id for contract in page.items)}


def search_differences(connection: Connection, probes: list[dict[str, Any]]) -> list[str]:
    """The recorded searches whose answer differs on this database, one line each."""
    from portal.search.criteria import SearchCriteria

    session = Session(bind=connection)
    problems = []
    for probe in probes:
        found = _search(session, SearchCriteria, probe["criteria"])
        if found != probe["found"]:
            label = "、".join(f"{k}={v}" for k, v in probe["criteria"].items()) or "条件なし"
            problems.append(f"検索（{label}）の結果がバックアップ時と異なります: "
                            f"{probe['found']['total']} 件 → {found['total']} 件")
    session.close()
    return problems
