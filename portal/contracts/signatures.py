"""Thin adapter over portal.signing: the configured context, one approval over every document, B-LTA.

portal.signing builds its context from app settings with configure(); it is cached per settings,
so calling it per operation is cheap and works whether or not the signing package has set it up.
"""

from __future__ import annotations

from flask import current_app

from portal.contracts.models import Contract, ContractDocument, Party, PartyRole
from portal.signing import pades
from portal.signing import service as signing_service
from portal.signing.context import SigningContext
from portal.storage import get_store


def context() -> SigningContext:
    return signing_service.configure(current_app.config)


def approval_for(party: Party, *, now: object) -> pades.Approval:
    """The /Reason names the signer; for the agency also its department, title and name."""
    name = party.name
    if party.role is PartyRole.AGENCY:
        name = f"{party.organization} {party.title} {party.name}".replace("  ", " ").strip()
    elif party.organization:
        name = f"{party.organization} {party.name}"
    return pades.Approval(name=name, email=party.email, approved_at=now)  # type: ignore[arg-type]


def approve_documents(contract: Contract, party: Party, *, now: object) -> list[tuple[ContractDocument, bytes]]:
    """sign_approval() on the current revision of every document; raises before returning anything."""
    ctx = context()
    store = get_store()
    approval = approval_for(party, now=now)
    return [(document, pades.sign_approval(store.get(document.current.storage_key), approval, context=ctx))
            for document in contract.documents]


def finalize_bytes(data: bytes) -> bytes:
    return pades.finalize(data, context=context())


def verify_bytes(data: bytes) -> pades.VerificationReport:
    return pades.verify(data, context=context())


def sign_issued_bytes(data: bytes, *, reason: str) -> bytes:
    """A document the service issues (the certificate), signed by the service key (PAdES B-T)."""
    return pades.sign_issued(data, reason=reason, context=context())
