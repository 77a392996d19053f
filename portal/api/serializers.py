"""The JSON shape of a contract, for every endpoint that returns one (listed in openapi.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from portal.audit.labels import VIEWS
from portal.audit.queries import describe
from portal.audit.service import events_for
from portal.contracts import service
from portal.contracts.models import Contract


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def contract_json(contract: Contract, *, session: Session | None = None) -> dict[str, Any]:
    """With `session`, the contract's audit events are included (the single-contract endpoint)."""
    body: dict[str, Any] = {
        "id": contract.id, "number": contract.number, "business_name": contract.business_name,
        "contract_type": contract.contract_type,
        "consent": {"by": contract.consent_by, "on": _iso(contract.consent_on), "method": contract.consent_method}
        if contract.has_consent else None,
        "amends": contract.amends.number if contract.amends else None,
        "department": contract.department.code, "counterparty_name": contract.counterparty_name,
        "amount": contract.amount, "tax_amount": contract.tax_amount,
        "tax_excluded_amount": contract.tax_excluded_amount,
        "transaction_date": contract.transaction_date.isoformat(),
        "term_start": _iso(contract.term_start), "term_end": _iso(contract.term_end),
        "planned_conclusion_date": contract.planned_conclusion_date.isoformat(),
        "status": contract.status.value, "status_reason": contract.status_reason,
        "approved": service.is_approved(contract), "approval_reference": contract.approval_reference,
        "completed_at": _iso(contract.completed_at),
        "documents": [{"n": d.position, "filename": d.filename, "pages": d.page_count, "sha256": d.current.sha256,
                       "revisions": len(d.revisions)} for d in contract.documents],
        "signers": [{"position": p.position, "role": p.role.value, "organization": p.organization,
                     "title": p.title, "name": p.name, "email": p.email, "status": p.status.value,
                     "signed_at": _iso(p.signed_at), "auth_methods": list(p.auth_methods or [])}
                    for p in contract.parties],
    }
    if session is not None:
        events = [e for e in events_for(session, contract) if e.action not in VIEWS]
        body["events"] = [{"at": e.occurred_at.isoformat(), "action": e.action, "actor": e.actor_label,
                           "description": row.sentence}
                          for e, row in zip(events, describe(session, events), strict=True)]
    return body
