"""Search screen and exports. The URL carries the whole query: bookmarks and the back button work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from flask import Response, current_app, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
from portal.auth.models import Department, Role
from portal.clock import JST
from portal.contracts.models import STATUS_LABELS
from portal.db import db
from portal.htmx import render_page_or_partial
from portal.search import bp, export, service
from portal.search.criteria import SCREEN_STATUSES, SORT_KEYS, InvalidCriteria, SearchCriteria, parse_criteria
from portal.search.forms import SearchForm
from portal.security import request_info, role_required

VIEWERS = (Role.STAFF, Role.APPROVER, Role.AUDITOR)
# under 「詳しい条件」
MORE_FIELDS = ("business_name", "number", "contract_type", "department", "history", "paper_originals")


def _criteria() -> SearchCriteria:
    """Raises InvalidCriteria."""
    return parse_criteria(request.args, per_page=int(current_app.config["SEARCH_PAGE_SIZE"]),
                          max_per_page=int(current_app.config["SEARCH_MAX_PAGE_SIZE"]),
                          default_statuses=SCREEN_STATUSES)


def _form() -> SearchForm:
    form = SearchForm(formdata=request.args)
    form.contract_type.choices = [("", "すべて"), *[(t, t) for t in current_app.config["CONTRACT_TYPES"]]]
    if service.sees_everything(current_user):
        departments = db().scalars(select(Department).order_by(Department.code))
        form.department.choices = [("", "すべて"), *[(str(d.id), f"{d.code} {d.name}") for d in departments]]
    return form


def query_url(endpoint: str = "search.index", **changes: Any) -> str:
    """The current query with some keys changed (None removes a key); used by sort and page links."""
    args = MultiDict(request.args)
    for key, value in changes.items():
        args.poplist(key)
        if value is not None:
            args[key] = value
    values: dict[str, Any] = args.to_dict(flat=False)
    return url_for(endpoint, **values)


@bp.get("/")
@role_required(*VIEWERS)
def index() -> ResponseReturnValue:
    form = _form()
    chosen = [v.strip() for item in request.args.getlist("status") for v in item.split(",") if v.strip()]
    context: dict[str, Any] = {"form": form, "query_url": query_url, "sort_keys": SORT_KEYS,
                               "statuses": STATUS_LABELS, "has_query": bool(request.args),
                               "checked_statuses": set(chosen) or {s.value for s in SCREEN_STATUSES},
                               "more_open": any(request.args.get(k) for k in MORE_FIELDS)}
    try:
        criteria = _criteria()
    except InvalidCriteria as exc:
        form.show_errors(exc)
        return render_page_or_partial("search/index.html", "search/_results.html", status=422, results=None,
                                      errors=list(exc.errors.values()), criteria=None, **context)
    # 「件数を数える」 asks for the exact total; otherwise counting stops at the limit (1,000 件以上).
    count_limit = None if request.args.get("count") == "all" else int(current_app.config["SEARCH_COUNT_LIMIT"])
    page = service.search_contracts(db(), criteria, actor=current_user, count_limit=count_limit)
    info = request_info()
    record(db(), actor=Actor.staff(current_user), action=AuditAction.SEARCH_PERFORMED, ip=info.ip,
           user_agent=info.user_agent, query=request.query_string.decode(errors="replace")[:2000], count=page.total,
           count_is_lower_bound=page.total_is_lower_bound)
    db().commit()
    return render_page_or_partial("search/index.html", "search/_results.html", results=page, criteria=criteria,
                                  errors=[], **context)


@bp.get("/export.csv")
@role_required(*VIEWERS)
def export_csv() -> ResponseReturnValue:
    criteria = _criteria()
    _record_export("csv", criteria)
    rows = _streamed_rows(criteria)
    return _download(stream_with_context(export.stream_csv(rows)), "text/csv; charset=utf-8", "csv")


@bp.get("/export.zip")
@role_required(*VIEWERS)
def export_zip() -> ResponseReturnValue:
    criteria = _criteria()
    _record_export("zip", criteria)
    rows = _streamed_rows(criteria)
    omit_paper = request.args.get("paper_originals") == "omit"
    return _download(stream_with_context(export.stream_zip(rows, omit_paper_originals=omit_paper)),
                     "application/zip", "zip")


def _streamed_rows(criteria: SearchCriteria) -> Iterator[Any]:
    """Rows for a streamed export, read with a session of their own.

    The request's session is closed when the view returns, while the response body is still being
    produced; a server-side cursor on it would leave the connection idle in a transaction.
    """
    actor = current_user._get_current_object()
    session = current_app.extensions["portal.session_factory"]()
    try:
        yield from service.export_rows(session, criteria, actor=actor)
    finally:
        session.close()


def _record_export(kind: str, criteria: SearchCriteria) -> None:
    info = request_info()
    record(db(), actor=Actor.staff(current_user), action=AuditAction.SEARCH_EXPORTED, subject=None,
           ip=info.ip, user_agent=info.user_agent, format=kind, query=request.query_string.decode()[:2000],
           count=service.count_contracts(db(), criteria, actor=current_user))
    db().commit()


def _download(body: Any, mimetype: str, extension: str) -> Response:
    stamp = clock.now().astimezone(JST)
    name = f"契約検索_{stamp:%Y%m%d_%H%M%S}.{extension}"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"search.{extension}\"; filename*=UTF-8''{quote(name)}"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # let nginx pass the stream on as it comes
    return response
