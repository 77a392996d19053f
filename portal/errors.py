"""Domain errors carry the Japanese message shown to people; HTTP errors render human pages."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, current_app, make_response, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import escape
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from portal.htmx import wants_partial

log = logging.getLogger(__name__)

# For a path prefix (e.g. "/api/"), renders an error as that part of the site answers (JSON there):
# called with the exception (HTTPException, DomainError or the unhandled one behind a 500).
ErrorRenderer = Callable[[Exception], ResponseReturnValue]


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


ROLLED_BACK = "この操作は取り消され、何も変更されていません。時間をおいて再度お試しください。"
FAILURE_MESSAGES = {
    # (a database failure?, something already committed in this request?) -> message
    (True, False): "データベースの処理中にエラーが発生しました。" + ROLLED_BACK,
    (False, False): "システムエラーが発生しました。" + ROLLED_BACK,
    (True, True): "データベースの処理中にエラーが発生しました。操作の一部が保存されている可能性があります。"
                  "画面を開き直して内容を確認してください。",
    (False, True): "システムエラーが発生しました。操作の一部が保存されている可能性があります。"
                   "画面を開き直して内容を確認してください。",
}
BARE_ERROR_PAGE = ('<!doctype html><html lang="ja"><meta charset="utf-8"><title>エラー</title>'
                   '<h1>エラー</h1><p>{message}</p></html>')


def failure_message(exc: BaseException | None) -> str:
    """What a 500 tells the person: what failed, and whether anything of their request was kept."""
    from portal.db import committed_in_request

    return FAILURE_MESSAGES[(isinstance(exc, SQLAlchemyError), committed_in_request())]


def render_error(status: int, message: str | None = None) -> ResponseReturnValue:
    text = message or MESSAGES.get(status, MESSAGES[500])
    template = "errors/_inline.html" if wants_partial() else "errors/error.html"
    response = make_response(render_template(template, status=status, message=text), status)
    response.vary.add("HX-Request")
    response.vary.add("HX-History-Restore-Request")
    return response


def register_error_renderer(app: Flask, path_prefix: str, renderer: ErrorRenderer) -> None:
    """Errors under `path_prefix` (404 and 405 included) are rendered by `renderer`, not as HTML pages."""
    app.extensions.setdefault("portal.error_renderers", {})[path_prefix] = renderer


def _renderer_for_path() -> ErrorRenderer | None:
    renderers: dict[str, ErrorRenderer] = current_app.extensions.get("portal.error_renderers", {})
    return next((r for prefix, r in renderers.items() if request.path.startswith(prefix)), None)


def register_error_handlers(app: Flask) -> None:
    from portal.db import TRANSIENT_FAILURE_PAGE

    app.extensions[TRANSIENT_FAILURE_PAGE] = lambda: render_error(503)

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException) -> ResponseReturnValue:
        if renderer := _renderer_for_path():
            return renderer(exc)
        status = exc.code or 500
        description = exc.description if status == 400 and "CSRF" in (exc.description or "") else None
        if description:
            description = "フォームの有効期限が切れました。ページを再読み込みしてからやり直してください。"
        return render_error(status, description)

    @app.errorhandler(DomainError)
    def handle_domain(exc: DomainError) -> ResponseReturnValue:
        if renderer := _renderer_for_path():
            return renderer(exc)
        return render_error(exc.status_code, exc.message)

    @app.errorhandler(500)
    def handle_500(exc: Exception) -> ResponseReturnValue:
        from portal.db import reset_request_session

        original = getattr(exc, "original_exception", None) or exc
        reset_request_session()  # the failed transaction must not break the page that reports it
        if renderer := _renderer_for_path():
            return renderer(original)
        message = failure_message(original)
        try:
            return render_error(500, message)
        except Exception:
            log.exception("the error page could not be rendered; answering with the bare page")
            return make_response(BARE_ERROR_PAGE.format(message=escape(message)), 500)
