"""/audit: the operation log for auditors and administrators, filtered, paged, exported as CSV.

Every use of the viewer is itself an event (its filters included), so reading the log leaves a trace.
"""

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
from portal.audit import bp, export, labels, queries
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
from portal.clock import JST
from portal.db import Base, db
from portal.htmx import render_page_or_partial
from portal.security import request_info, role_required

# Role.AUDITOR of portal.auth.models, by value (audit is a leaf: auth imports it); admins always pass.
AUDITOR = "auditor"
FILTER_KEYS = ("person", "action", "contract", "department", "from", "to", "ip")


def _departments() -> list[tuple[int, str]]:
    table = Base.metadata.tables["departments"]
    return [(row.id, f"{row.code} {row.name}") for row in db().execute(
        select(table.c.id, table.c.code, table.c.name).order_by(table.c.code))]


def query_url(endpoint: str = "audit.index", **changes: Any) -> str:
    """The current filters with some keys changed (None removes a key)."""
    args = MultiDict((key, value) for key, value in request.args.items(multi=True)
                     if key in (*FILTER_KEYS, "page", "before", "after"))
    for key, value in changes.items():
        args.poplist(key)
        if value is not None:
            args[key] = value
    values: dict[str, Any] = args.to_dict(flat=False)
    return url_for(endpoint, **values)


def _log_use(action: AuditAction, **details: Any) -> None:
    info = request_info()
    record(db(), actor=Actor.staff(current_user), action=action, ip=info.ip, user_agent=info.user_agent,
           **details)
    db().commit()


@bp.get("/")
@role_required(AUDITOR)
def index() -> ResponseReturnValue:
    departments = _departments()
    context: dict[str, Any] = {"departments": departments, "groups": labels.actions_by_group(),
                               "args": request.args, "query_url": query_url}
    try:
        criteria = queries.parse_filter(request.args, department_ids={d for d, _ in departments})
    except queries.InvalidFilter as exc:
        _log_use(AuditAction.AUDIT_VIEWED, rejected=sorted(exc.errors))
        return render_page_or_partial("audit/index.html", "audit/_results.html", status=422, results=None,
                                      errors=exc.errors, **context)
    results = queries.search_events(db(), criteria)
    _log_use(AuditAction.AUDIT_VIEWED, criteria=criteria.criteria(), page=criteria.page, count=results.total)
    return render_page_or_partial("audit/index.html", "audit/_results.html", results=results, errors={},
                                  **context)


@bp.get("/export.csv")
@role_required(AUDITOR)
def export_csv() -> ResponseReturnValue:
    criteria = queries.parse_filter(request.args, department_ids={d for d, _ in _departments()})
    count = queries.search_events(db(), criteria, per_page=1).total
    _log_use(AuditAction.AUDIT_EXPORTED, criteria=criteria.criteria(), format="csv", count=count)
    stamp = clock.now().astimezone(JST)
    name = f"操作ログ_{stamp:%Y%m%d_%H%M%S}.csv"
    response = Response(stream_with_context(export.stream_csv(_streamed_rows(criteria))),
                        mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f"attachment; filename=\"audit.csv\"; filename*=UTF-8''{quote(name)}"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _streamed_rows(criteria: queries.AuditFilter) -> Iterator[queries.EventRow]:
    """Rows read with a session of their own: the request's session closes before the body is sent."""
    session = current_app.extensions["portal.session_factory"]()
    try:
        yield from queries.iter_events(session, criteria)
    finally:
        session.close()
