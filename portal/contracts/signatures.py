"""Thin adapter over portal.signing: the configured context, one approval over every document, B-LTA.

portal.signing builds its context from app settings with configure(); it is cached per settings,
so calling it per operation is cheap and works whether or not the signing package has set it up.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, render_template

from portal.contracts import documents
from portal.contracts.models import Contract, ContractDocument, Party, PartyRole
from portal.signing import pades
from portal.signing import service as signing_service
from portal.signing.context import SigningContext


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
    """sign_approval() on the current revision of every document; raises before returning anything.

    With SIGNATURE_STAMP each signature is also shown as a stamp on the last page (see stamp())."""
    ctx = context()
    approval = approval_for(party, now=now)
    shown = stamp(contract.contract_type or "contract", what="承認", signer=approval.name, at=approval.approved_at,
                  slot=party.position - 1)
    return [(document, pades.sign_approval(documents.read_revision(document.current), approval, context=ctx,
                                           stamp=shown))
            for document in contract.documents]


def stamp(kind: str, *, what: str, signer: str, at: datetime, slot: int = 0) -> pades.Stamp | None:
    """The visible stamp of a signature when SIGNATURE_STAMP is on (None: invisible, the default).

    `kind` picks the corner in SIGNATURE_STAMP_CORNERS: a contract type (CONTRACT_TYPES) or "contract" for
    a contract's documents, "certificate" for the certificate;
    the text is the template contracts/signature_stamp.txt. Raises FontMissing without the PDF font."""
    config = current_app.config
    if not config["SIGNATURE_STAMP"]:
        return None
    from portal.formatting import jst_wareki
    from portal.printing.archival import font_file

    corners = config["SIGNATURE_STAMP_CORNERS"]
    text = render_template("contracts/signature_stamp.txt", what=what, signer=signer,
                           signed_at=jst_wareki(at, seconds=True)).strip()
    corner = corners.get(kind) or corners.get("contract", "bottom-right")
    return pades.Stamp(text=text, font_file=str(font_file()), corner=corner, slot=slot)


def finalize_bytes(data: bytes) -> bytes:
    return pades.finalize(data, context=context())


def verify_bytes(data: bytes) -> pades.VerificationReport:
    return pades.verify(data, context=context())


def sign_issued_bytes(data: bytes, *, reason: str, stamp: pades.Stamp | None = None) -> bytes:
    """A document the service issues (the certificate), signed by the service key (PAdES B-T)."""
    return pades.sign_issued(data, reason=reason, context=context(), stamp=stamp)
