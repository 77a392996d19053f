"""JSON API /api/v1 for the agency's other systems (issue 4 §10). Bearer tokens act as their user.

The API can create, approve, send and read; it cannot sign (R2): signing needs the signer's own
action on the signing page.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any

from flask import current_app, g, jsonify, request, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from portal import clock
from portal.audit.service import events_for
from portal.auth.models import Department, Role, StaffUser
from portal.contracts import api_bp, api_tokens, service
from portal.contracts.models import Contract, PartyRole
from portal.db import db
from portal.errors import DomainError
from portal.extensions import csrf
from portal.security import request_info


class ApiError(DomainError):
    def __init__(self, message: str, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message)
        self.status_code = status
        self.code = code


@api_bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> ResponseReturnValue:
    db().rollback()
    code = getattr(exc, "code", None) or _snake(type(exc).__name__)
    body: dict[str, Any] = {"error": {"code": code, "message": exc.message}}
    if isinstance(exc, service.ContractNotEligible):
        body["error"]["reasons"] = exc.reasons
    return jsonify(body), exc.status_code


@api_bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> ResponseReturnValue:
    return jsonify({"error": {"code": _snake(type(exc).__name__), "message": exc.description}}), exc.code or 500


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def token_required(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError("Authorization: Bearer <トークン> が必要です。", 401, "unauthorized")
            user = api_tokens.authenticate(db(), token.strip(), now=clock.now())
            if roles and not user.has_role(*roles):
                raise ApiError("この操作を行う権限がありません。", 403, "forbidden")
            g.api_user = user
            return view(*args, **kwargs)

        return wrapped

    return decorator


READERS = (Role.STAFF, Role.APPROVER, Role.AUDITOR)
WRITERS = (Role.STAFF, Role.APPROVER)


def _date(value: Any, key: str, *, required: bool = True) -> date | None:
    if value in (None, ""):
        if required:
            raise ApiError(f"{key} は必須です（YYYY-MM-DD）。", 422, "invalid_metadata")
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ApiError(f"{key} は YYYY-MM-DD 形式の日付で指定してください。", 422, "invalid_metadata") from None


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(f"{key} は整数（円）で指定してください。", 422, "invalid_metadata")
    return value


def _parse_input(metadata: dict[str, Any], user: StaffUser) -> service.ContractInput:
    department = user.department
    if metadata.get("department"):
        wanted = str(metadata["department"])
        department = db().scalar(select(Department).where((Department.code == wanted) | (Department.name == wanted)))
        if department is None:
            raise ApiError(f"所属 {wanted} が見つかりません。", 422, "invalid_metadata")
    signers = []
    for raw in metadata.get("signers") or []:
        try:
            role = PartyRole(raw.get("role"))
        except ValueError:
            raise ApiError("signers[].role は counterparty または agency です。", 422, "invalid_metadata") from None
        signers.append(service.SignerInput(role=role, organization=str(raw.get("organization", "")),
                                           title=str(raw.get("title", "")), name=str(raw.get("name", "")),
                                           email=str(raw.get("email", "")), user_email=str(raw.get("user_email", ""))))
    return service.ContractInput(
        business_name=str(metadata.get("business_name", "")), department=department,
        counterparty_name=str(metadata.get("counterparty_name", "")),
        amount=_int(metadata.get("amount"), "amount"), tax_amount=_int(metadata.get("tax_amount", 0), "tax_amount"),
        transaction_date=_date(metadata.get("transaction_date"), "transaction_date"),  # type: ignore[arg-type]
        term_start=_date(metadata.get("term_start"), "term_start", required=False),
        term_end=_date(metadata.get("term_end"), "term_end", required=False),
        planned_conclusion_date=_date(metadata.get("planned_conclusion_date"),  # type: ignore[arg-type]
                                      "planned_conclusion_date"),
        auto_renewal=bool(metadata.get("auto_renewal", False)),
        paper_required_by_law=bool(metadata.get("paper_required_by_law", False)),
        council_approval_required=bool(metadata.get("council_approval_required", False)),
        access_code=str(metadata.get("access_code") or ""), signers=signers)


def contract_json(contract: Contract, *, with_events: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": contract.id, "number": contract.number, "business_name": contract.business_name,
        "department": contract.department.code, "counterparty_name": contract.counterparty_name,
        "amount": contract.amount, "tax_amount": contract.tax_amount,
        "transaction_date": contract.transaction_date.isoformat(),
        "term_start": contract.term_start.isoformat() if contract.term_start else None,
        "term_end": contract.term_end.isoformat() if contract.term_end else None,
        "planned_conclusion_date": contract.planned_conclusion_date.isoformat(),
        "status": contract.status.value, "status_reason": contract.status_reason,
        "approved": service.is_approved(contract), "approval_reference": contract.approval_reference,
        "completed_at": contract.completed_at.isoformat() if contract.completed_at else None,
        "documents": [{"n": d.position, "filename": d.filename, "pages": d.page_count, "sha256": d.current.sha256,
                       "revisions": len(d.revisions)} for d in contract.documents],
        "signers": [{"position": p.position, "role": p.role.value, "organization": p.organization,
                     "title": p.title, "name": p.name, "email": p.email, "status": p.status.value,
                     "signed_at": p.signed_at.isoformat() if p.signed_at else None,
                     "auth_methods": p.auth_methods} for p in contract.parties],
    }
    if with_events:
        body["events"] = [{"at": e.occurred_at.isoformat(), "action": e.action, "actor": e.actor_label}
                          for e in events_for(db(), contract)]
    return body


@api_bp.post("/contracts")
@token_required(*WRITERS)
def create() -> ResponseReturnValue:
    try:
        metadata = json.loads(request.form.get("metadata") or "")
    except ValueError:
        raise ApiError("metadata には JSON を指定してください。", 422, "invalid_metadata") from None
    if not isinstance(metadata, dict):
        raise ApiError("metadata は JSON オブジェクトです。", 422, "invalid_metadata")
    user = g.api_user
    contract = service.create_draft(db(), _parse_input(metadata, user), actor=user, now=clock.now(),
                                    request=request_info())
    for upload in request.files.getlist("files"):
        service.attach_document(db(), contract, filename=upload.filename or "", data=upload.read(), actor=user,
                                now=clock.now(), request=request_info())
    db().commit()
    return jsonify(contract_json(contract)), 201


def _load(contract_id: int) -> Contract:
    return service.get_for_staff(db(), contract_id, actor=g.api_user)


@api_bp.post("/contracts/<int:contract_id>/approve")
@token_required(Role.APPROVER)
def approve(contract_id: int) -> ResponseReturnValue:
    contract = _load(contract_id)
    payload = request.get_json(silent=True) or request.form
    service.confirm_internal_approval(db(), contract, approver=g.api_user,
                                      reference=str(payload.get("approval_reference", "")), now=clock.now(),
                                      request=request_info())
    db().commit()
    return jsonify(contract_json(contract))


@api_bp.post("/contracts/<int:contract_id>/send")
@token_required(*WRITERS)
def send(contract_id: int) -> ResponseReturnValue:
    from portal.mail.worker import notify

    contract = _load(contract_id)
    service.send_for_signature(db(), contract, actor=g.api_user, now=clock.now(), request=request_info())
    db().commit()
    notify()
    return jsonify(contract_json(contract))


@api_bp.get("/contracts/<int:contract_id>")
@token_required(*READERS)
def show(contract_id: int) -> ResponseReturnValue:
    return jsonify(contract_json(_load(contract_id), with_events=True))


@api_bp.get("/contracts/<int:contract_id>/documents/<int:n>")
@token_required(*READERS)
def document(contract_id: int, n: int) -> ResponseReturnValue:
    contract = _load(contract_id)
    found = next((d for d in contract.documents if d.position == n), None)
    if found is None:
        raise ApiError("文書が見つかりません。", 404, "not_found")
    return send_file(io.BytesIO(service.read_revision(found.current)), mimetype="application/pdf",
                     download_name=found.filename)


@api_bp.get("/contracts")
@token_required(*READERS)
def index() -> ResponseReturnValue:
    # The same filters as the search screen and /api/v1/search (電帳法: date, amount, counterparty, …).
    from portal.search.criteria import InvalidCriteria, parse_criteria
    from portal.search.service import search_contracts

    try:
        criteria = parse_criteria(request.args, per_page=int(current_app.config["SEARCH_PAGE_SIZE"]),
                                  max_per_page=int(current_app.config["SEARCH_MAX_PAGE_SIZE"]))
    except InvalidCriteria as exc:
        raise ApiError(exc.message, 422, "invalid_filter") from None
    page = search_contracts(db(), criteria, actor=g.api_user)
    return jsonify({"contracts": [contract_json(c) for c in page.items], "total": page.total,
                    "page": page.page, "per_page": page.per_page, "pages": page.pages})


# Bearer tokens, no cookies: CSRF does not apply to the API's POSTs.
for _view in (create, approve, send):
    csrf.exempt(_view)


@api_bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    from portal.contracts.openapi import SPEC

    return jsonify(SPEC)
