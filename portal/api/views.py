"""Routes of /api/v1. Views stay thin: authenticate, read, one service call, commit, answer.

The API can create, approve, send and read; it cannot sign: signing needs the signer's own action
on the signing page.
"""

from __future__ import annotations

import io
import json
from typing import Any

from flask import Response, current_app, jsonify, request, send_file
from flask.typing import ResponseReturnValue

from portal import clock
from portal.api import bp, idempotency, parsing
from portal.api.auth import READERS, WRITERS, api_token_id, api_user, token_required
from portal.api.problems import ApiProblem
from portal.api.serializers import contract_json
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
from portal.auth.models import Role
from portal.contracts import service
from portal.contracts.models import Contract
from portal.db import db
from portal.search.criteria import InvalidCriteria, parse_criteria
from portal.search.service import search_contracts
from portal.security import request_info

MAX_FILES = 20


@bp.get("/contracts")
@bp.get("/search")  # the path of the first search API, kept as an alias (same filters, same answer)
@token_required(*READERS)
def index() -> ResponseReturnValue:
    """The search screen's filters (電帳法: 取引年月日, 金額, 取引先 …), dates in ISO or 和暦, paged."""
    try:
        criteria = parse_criteria(request.args, per_page=int(current_app.config["SEARCH_PAGE_SIZE"]),
                                  max_per_page=int(current_app.config["SEARCH_MAX_PAGE_SIZE"]))
    except InvalidCriteria as exc:
        raise ApiProblem(exc.message, 422, "invalid_filter", errors=exc.errors) from None
    page = search_contracts(db(), criteria, actor=api_user())
    _record_read(AuditAction.API_SEARCHED, None, query=request.query_string.decode(errors="replace")[:2000],
                 count=page.total)
    return jsonify({"contracts": [contract_json(c) for c in page.items], "total": page.total,
                    "page": page.page, "per_page": page.per_page, "pages": page.pages})


def _read_create_body() -> tuple[Any, list[tuple[str, bytes]]]:
    if request.mimetype == "application/json":
        try:
            return json.loads(request.get_data(as_text=True) or "null"), []
        except ValueError:
            raise ApiProblem("本文を JSON として読めません。", 400, "invalid_json") from None
    if request.mimetype != "multipart/form-data":
        raise ApiProblem("Content-Type は multipart/form-data（metadata と files）または application/json です。",
                         415, "unsupported_media_type")
    try:
        metadata = json.loads(request.form.get("metadata") or "")
    except ValueError:
        raise ApiProblem("metadata には契約の内容を JSON で指定してください。", 400, "invalid_json",
                         errors={"metadata": "JSON として読めません。"}) from None
    uploads = request.files.getlist("files")
    if len(uploads) > MAX_FILES:
        raise ApiProblem(f"一度に添付できる文書は{MAX_FILES}件までです。", 422, "too_many_files")
    return metadata, [(upload.filename or "", upload.read()) for upload in uploads]


@bp.post("/contracts")
@token_required(*WRITERS)
def create() -> ResponseReturnValue:
    """Create a draft with its documents. With Idempotency-Key, a retry answers with the first result."""
    metadata, files = _read_create_body()
    key = request.headers.get("Idempotency-Key")
    session, user, token = db(), api_user(), api_token_id()
    if key is not None:
        key = idempotency.check_key(key)
        earlier = idempotency.claim(session, token_id=token, key=key,
                                    fingerprint=idempotency.fingerprint(metadata, files),
                                    method=request.method, path=request.path, now=clock.now())
        if earlier is not None:
            response = jsonify(earlier.response_body)
            response.status_code = earlier.response_status
            response.headers["Idempotent-Replayed"] = "true"
            return response
    contract = service.create_draft(session, parsing.contract_input(metadata, user), actor=user, now=clock.now(),
                                    request=request_info())
    for filename, data in files:
        service.attach_document(session, contract, filename=filename, data=data, actor=user, now=clock.now(),
                                request=request_info())
    body = contract_json(contract)
    if key is not None:
        idempotency.complete(session, key, token, status=201, body=body, contract_id=contract.id)
    session.commit()
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = f"{request.script_root}/api/v1/contracts/{contract.id}"
    return response


def _load(contract_id: int) -> Contract:
    return service.get_for_staff(db(), contract_id, actor=api_user())


@bp.post("/contracts/<int:contract_id>/approve")
@token_required(Role.APPROVER)
def approve(contract_id: int) -> ResponseReturnValue:
    """決裁の確認: the approver records the approval reference (決裁番号・日付)."""
    contract = _load(contract_id)
    payload: Any = request.form
    if request.is_json:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            raise ApiProblem("本文は approval_reference を持つ JSON オブジェクトです。", 400, "invalid_json")
    reference = payload.get("approval_reference", "")
    if not isinstance(reference, str) or len(reference) > 100 or any(ord(c) < 32 for c in reference):
        raise ApiProblem("approval_reference は改行を含まない100文字以内の文字列で指定してください。", 422,
                         "invalid_request", errors={"approval_reference": "100文字以内の文字列です。"})
    service.confirm_internal_approval(db(), contract, approver=api_user(), reference=reference, now=clock.now(),
                                      request=request_info())
    db().commit()
    return jsonify(contract_json(contract))


@bp.post("/contracts/<int:contract_id>/send")
@token_required(*WRITERS)
def send(contract_id: int) -> ResponseReturnValue:
    from portal.mail.worker import notify

    contract = _load(contract_id)
    service.send_for_signature(db(), contract, actor=api_user(), now=clock.now(), request=request_info())
    db().commit()
    notify()
    return jsonify(contract_json(contract))


@bp.get("/contracts/<int:contract_id>")
@token_required(*READERS)
def show(contract_id: int) -> ResponseReturnValue:
    contract = _load(contract_id)
    _record_read(AuditAction.API_CONTRACT_VIEWED, contract)
    return jsonify(contract_json(contract, session=db()))


def _record_read(action: AuditAction, contract: Contract | None, **details: Any) -> None:
    info = request_info()
    record(db(), actor=Actor.staff(api_user()), action=action, subject=contract, ip=info.ip,
           user_agent=info.user_agent, token_id=api_token_id(), **details)
    db().commit()


@bp.get("/contracts/<int:contract_id>/documents/<int:n>")
@token_required(*READERS)
def document(contract_id: int, n: int) -> ResponseReturnValue:
    contract = _load(contract_id)
    found = next((d for d in contract.documents if d.position == n), None)
    if found is None:
        raise ApiProblem("この契約にその番号の文書はありません。", 404, "not_found")
    data = service.read_revision(found.current)
    _record_read(AuditAction.API_DOCUMENT_DOWNLOADED, contract, filename=found.filename,
                 revision=found.current.number, sha256=found.current.sha256)
    return send_file(io.BytesIO(data), mimetype="application/pdf", download_name=found.filename)


@bp.get("/openapi.json")
def openapi() -> Response:
    from portal.api.openapi import spec

    return jsonify(spec())
