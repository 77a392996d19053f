"""RFC 9457 problem details (application/problem+json) for every answer under /api/ that is an error.

`type` is a URN naming the problem (listed in the OpenAPI document); `code` repeats its last part for
clients that switch on a short string; `detail` is the Japanese message for the person at the other
system; `errors` maps input keys to their messages where the input was at fault.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, json, request
from werkzeug.exceptions import HTTPException

from portal.errors import MESSAGES, DomainError

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:keiyaku-portal:problem:"

TITLES = {
    400: "リクエストの形式が正しくありません",
    401: "認証が必要です",
    403: "権限がありません",
    404: "見つかりません",
    405: "このメソッドは使えません",
    406: "この形式では応答できません",
    409: "現在の状態では実行できません",
    410: "期限切れです",
    413: "リクエストが大きすぎます",
    415: "この Content-Type は受け付けられません",
    422: "入力内容に誤りがあります",
    429: "リクエストが多すぎます",
    500: "システムエラー",
}
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 410: "gone",
              413: "payload_too_large", 415: "unsupported_media_type", 422: "unprocessable_content",
              429: "too_many_requests", 500: "internal_error"}


class ApiProblem(DomainError):
    """A refusal raised by the API itself, with its status, code and optional per-key errors."""

    def __init__(self, detail: str, status: int = 422, code: str = "invalid_request",
                 errors: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status
        self.code = code
        self.errors = errors or {}
        self.headers = headers or {}


def problem(status: int, detail: str, *, code: str | None = None, headers: dict[str, str] | None = None,
            **extensions: Any) -> Response:
    code = code or HTTP_CODES.get(status, "error")
    body = {"type": TYPE_PREFIX + code, "title": TITLES.get(status, TITLES[500]), "status": status,
            "detail": detail, "instance": request.path, "code": code, **extensions}
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=MEDIA_TYPE)
    response.headers.update(headers or {})
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="keiyaku-portal"')
    return response


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def render(exc: Exception) -> Response:
    """The problem+json answer for any exception reaching the app's error handlers on an /api/ path."""
    from portal.db import db

    db().rollback()  # nothing half-done is committed by a later request on this session
    if isinstance(exc, ApiProblem):
        extra: dict[str, Any] = {"errors": exc.errors} if exc.errors else {}
        return problem(exc.status_code, exc.message, code=exc.code, headers=exc.headers, **extra)
    if isinstance(exc, DomainError):
        return _domain(exc)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
        detail = MESSAGES.get(status, MESSAGES[500])
        if status == 404:
            detail = "この URL の API はありません。/api/v1/openapi.json を参照してください。"
        elif status == 405:
            detail = f"{request.method} はこの URL では使えません（使えるメソッド: {headers.get('Allow', '')}）。"
        elif status == 413:
            detail = "リクエストが大きすぎます。文書の大きさと件数、metadata の長さを確認してください。"
        elif status == 400:
            detail = "リクエストを読み取れませんでした。Content-Type と本文の形式を確認してください。"
        return problem(status, detail, headers=headers)
    log.error("unhandled error in the API", exc_info=exc)
    return problem(500, MESSAGES[500])


# Domain errors that mean "not in this state" answer 409; the others keep their own status (mostly 422).
CONFLICT_ERRORS = frozenset({"NotEditable"})


def _domain(exc: DomainError) -> Response:
    name = type(exc).__name__
    code = getattr(exc, "code", None) or _snake(name)
    status = 409 if name in CONFLICT_ERRORS else exc.status_code
    extra: dict[str, Any] = {}
    if reasons := getattr(exc, "reasons", None):
        extra["reasons"] = list(reasons)
    if errors := getattr(exc, "errors", None):
        extra["errors"] = dict(errors)
    return problem(status, exc.message, code=code, **extra)
