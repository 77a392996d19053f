"""What the 取引先 page shows, limited to what the staff member may see."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.models import StaffUser
from portal.contracts import service as contracts
from portal.contracts.models import Contract
from portal.counterparties.models import Counterparty, SigningAuthority
from portal.usage_requests import service as usage_requests
from portal.usage_requests.models import UsageRequest


@dataclass(frozen=True)
class AuthorityRow:
    authority: SigningAuthority
    usage_request: UsageRequest | None  # the accepted 申出書 that registered it, if the user may see it


@dataclass(frozen=True)
class CounterpartyPage:
    counterparty: Counterparty
    authorities: list[AuthorityRow]  # newest first
    usage_requests: list[UsageRequest]  # of the user's department (admin: all), newest first
    contracts: list[Contract]  # those the user may see, newest first


def page_for(session: Session, counterparty: Counterparty, *, actor: StaffUser) -> CounterpartyPage:
    requests = list(session.scalars(
        select(UsageRequest).where(UsageRequest.counterparty_id == counterparty.id, usage_requests.visible_to(actor))
        .order_by(UsageRequest.submitted_at.desc(), UsageRequest.id.desc())))
    by_authority = {r.signing_authority_id: r for r in requests if r.signing_authority_id}
    rows = [AuthorityRow(a, by_authority.get(a.id)) for a in reversed(counterparty.authorities)]
    found = session.scalars(select(Contract).where(Contract.counterparty_id == counterparty.id)
                            .order_by(Contract.created_at.desc(), Contract.id.desc()).limit(500))
    return CounterpartyPage(counterparty, rows, requests, [c for c in found if contracts.can_view(c, actor)])
