"""Domain errors carry the Japanese message shown to people; HTTP errors render human pages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Self

from flask import Flask, current_app, make_response, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import escape
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from portal.contact import HasContact, remember, remembered, snapshot
from portal.htmx import wants_partial

log = logging.getLogger(__name__)

# For a path prefix (e.g. "/api/"), renders an error as that part of the site answers (JSON there):
# called with the exception (HTTPException, DomainError or the unhandled one behind a 500).
ErrorRenderer = Callable[[Exception], ResponseReturnValue]


class DomainError(Exception):
    """A refused action with a message for the person who tried it."""

    status_code = 422
    # The department whose contract the refused action concerned: its contact is shown with the message.
    department: HasContact | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def for_department(self, department: HasContact | None) -> Self:
        self.department = snapshot(department)
        return self


class NotFound(DomainError):
    status_code = 404


class LinkExpired(DomainError):
    status_code = 410


# The headline of an error page: what happened, in words (the status code is only the small print).
MESSAGES = {
    400: "リクエストの内容を確認できませんでした。",
    403: "このページを表示する権限がありません。",
    404: "お探しのページは見つかりませんでした。",
    405: "この操作はこの画面からは行えません。",
    410: "リンクの有効期限が切れています。",
    413: "ファイルが大きすぎるため、受け付けられませんでした。",
    422: "入力内容を確認してください。",
    423: "このリンクはロックされています。",
    429: "操作が多すぎます。一時的に受け付けを止めています。",
    500: "システムエラーが発生しました。",
    503: "ただいま混み合っています。",
}
# What to do next, under the headline of a page for an HTTP error (a DomainError's message says it itself).
ADVICE = {
    400: "ページを再読み込みしてから、もう一度お試しください。",
    403: "ログインし直すか、別のアカウントでログインしている場合はログアウトしてからやり直してください。"
         "権限が必要な場合は、所属の管理者にお問い合わせください。",
    404: "URL が正しいか確認してください。メールのリンクから開いた場合は、リンクの有効期限が切れたか、"
         "新しいリンクが送られた可能性があります。担当課にお問い合わせください。",
    405: "ブラウザの「戻る」や再読み込みではなく、画面のボタンやリンクから操作してください。",
    410: "新しいリンクが必要な場合は、担当課にお問い合わせください。",
    413: "ファイルを小さくする（スキャンの解像度を下げるなど）か、いくつかに分けてから、もう一度送信してください。",
    422: "",
    423: "担当課にご連絡いただくと、ロックを解除するか新しいリンクをお送りします。",
    429: "1 分ほど待ってから、もう一度お試しください。",
    500: "時間をおいて再度お試しください。続く場合は、担当課（職員の方はシステム管理者）にお問い合わせください。",
    503: "少し待ってから、もう一度お試しください。",
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


def render_error(status: int, message: str | None = None, *, advice: str | None = None,
                 department: HasContact | None = None) -> ResponseReturnValue:
    """The error page (or, for htmx, its inline partial): the message, what to do, and whom to ask.

    `department` (else the one the request's view remembered, portal.contact) names the contact.
    """
    if department is not None:
        remember(department)
    text = message or MESSAGES.get(status, MESSAGES[500])
    if advice is None:
        advice = "" if message else ADVICE.get(status, ADVICE[500])
    template = "errors/_inline.html" if wants_partial() else "errors/error.html"
    response = make_response(render_template(template, status=status, message=text, advice=advice,
                                             department=remembered()), status)
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
        return render_error(exc.status_code, exc.message, department=exc.department)

    @app.errorhandler(500)
    def handle_500(exc: Exception) -> ResponseReturnValue:
        from portal.db import reset_request_session

        original = getattr(exc, "original_exception", None) or exc
        reset_request_session()  # the failed transaction must not break the page that reports it
        if renderer := _renderer_for_path():
            return renderer(original)
        message = failure_message(original)
        try:
            return render_error(500, message, advice=ADVICE[500])
        except Exception:
            log.exception("the error page could not be rendered; answering with the bare page")
            return make_response(BARE_ERROR_PAGE.format(message=escape(message)), 500)
