"""Domain errors carry the Japanese message shown to people; HTTP errors render human pages."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException


class DomainError(Exception):
    """A refused action with a message for the person who tried it."""

    status_code = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404


class LinkExpired(DomainError):
    status_code = 410


MESSAGES = {
    400: "リクエストの内容を確認できませんでした。もう一度お試しください。",
    403: "このページを表示する権限がありません。",
    404: "お探しのページは見つかりませんでした。",
    405: "この操作はできません。",
    410: "リンクの有効期限が切れています。",
    413: "ファイルが大きすぎます。",
    422: "入力内容を確認してください。",
    429: "操作が多すぎます。しばらく待ってから再度お試しください。",
    500: "システムエラーが発生しました。時間をおいて再度お試しください。",
    503: "ただいま混み合っています。少し待ってから再度お試しください。",
}


def render_error(status: int, message: str | None = None) -> ResponseReturnValue:
    text = message or MESSAGES.get(status, MESSAGES[500])
    if getattr(request, "htmx", False):
        return render_template("errors/_inline.html", status=status, message=text), status
    return render_template("errors/error.html", status=status, message=text), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        description = exc.description if status == 400 and "CSRF" in (exc.description or "") else None
        if description:
            description = "フォームの有効期限が切れました。ページを再読み込みしてからやり直してください。"
        return render_error(status, description)

    @app.errorhandler(DomainError)
    def handle_domain(exc: DomainError) -> ResponseReturnValue:
        return render_error(exc.status_code, exc.message)

    @app.errorhandler(500)
    def handle_500(exc: Exception) -> ResponseReturnValue:
        return render_error(500)
