"""GET /api/v1/search: the screen's filters as JSON, for the agency's other systems (bearer token)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from portal import clock
from portal.auth.models import Role, StaffUser
from portal.contracts import api_tokens
from portal.contracts.models import Contract
from portal.db import db
from portal.errors import DomainError
from portal.search import api_bp, service
from portal.search.criteria import InvalidCriteria, parse_criteria

READERS = (Role.STAFF, Role.APPROVER, Role.AUDITOR)


def _error(message: str, status: int, code: str, **extra: Any) -> ResponseReturnValue:
    return jsonify({"error": {"code": code, "message": message, **extra}}), status


def _token_user() -> StaffUser:
    """Raises InvalidApiToken (401)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise api_tokens.InvalidApiToken("Authorization: Bearer <トークン> が必要です。")
    return api_tokens.authenticate(db(), token.strip(), now=clock.now())


def _json_errors(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        try:
            return view(*args, **kwargs)
        except InvalidCriteria as exc:
            return _error(exc.message, 422, "invalid_filter", fields=exc.errors)
        except DomainError as exc:
            db().rollback()
            return _error(exc.message, exc.status_code, "unauthorized" if exc.status_code == 401 else "error")

    return wrapped


def contract_summary(contract: Contract) -> dict[str, Any]:
    return {
        "id": contract.id, "number": contract.number, "business_name": contract.business_name,
        "department": contract.department.code, "counterparty_name": contract.counterparty_name,
        "amount": contract.amount, "tax_amount": contract.tax_amount,
        "tax_excluded_amount": contract.tax_excluded_amount,
        "transaction_date": contract.transaction_date.isoformat(), "status": contract.status.value,
        "completed_at": contract.completed_at.isoformat() if contract.completed_at else None,
    }


@api_bp.get("/search")
@_json_errors
def search() -> ResponseReturnValue:
    user = _token_user()
    if not user.has_role(*READERS):
        return _error("この操作を行う権限がありません。", 403, "forbidden")
    criteria = parse_criteria(request.args, per_page=int(current_app.config["SEARCH_PAGE_SIZE"]),
                              max_per_page=int(current_app.config["SEARCH_MAX_PAGE_SIZE"]))
    page = service.search_contracts(db(), criteria, actor=user)
    db().commit()  # last_used_at of the token
    return jsonify({
        "contracts": [contract_summary(c) for c in page.items],
        "total": page.total, "page": page.page, "per_page": page.per_page, "pages": page.pages,
    })
