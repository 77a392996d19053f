"""Landing page, dashboard, help pages and the main navigation."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from flask import Blueprint, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from portal import clock, contact
from portal.auth.models import Department
from portal.db import db
from portal.home import service
from portal.htmx import render_page_or_partial, wants_partial
from portal.signing import pki
from portal.signing import service as signing

log = logging.getLogger(__name__)

bp = Blueprint("home", __name__, template_folder="templates")

# (endpoint, label, roles allowed); admin sees everything.
NAV = [
    ("home.index", "ホーム", ("staff", "approver", "auditor")),
    ("contracts.index", "契約", ("staff", "approver", "auditor")),
    ("usage_requests.index", "利用申出", ("staff", "approver", "auditor")),
    ("registry.index", "取引先", ("staff", "approver", "auditor")),
    ("search.index", "検索", ("staff", "approver", "auditor")),
    ("preservation.verification_index", "一括検証", ("auditor",)),
    ("preservation.retention", "保存期間", ()),
    ("preservation.tombstones", "削除記録", ("auditor",)),
    ("audit.index", "操作ログ", ("auditor",)),
    ("admin.users", "ユーザー管理", ()),
    ("admin.departments", "所属", ()),
    ("access.networks", "接続元の制限", ()),
    ("mail.index", "送信メール", ()),
    ("admin.api_token_list", "API トークン", ()),
    ("webhooks.index", "Webhook", ()),
    ("signing.admin_status", "署名設定", ()),
    ("admin.integrity", "操作ログの検証", ("auditor",)),
    ("backup.index", "バックアップ", ()),
]


@bp.app_context_processor
def navigation() -> dict[str, Any]:
    if not current_user or not current_user.is_authenticated:
        return {"nav_items": [], "nav_badges": {}}
    endpoints = set(current_app.view_functions)
    items = [
        (endpoint, label)
        for endpoint, label, roles in NAV
        if endpoint in endpoints and (current_user.role == "admin" or current_user.role in roles)
    ]
    return {"nav_items": items, "nav_badges": _nav_badges()}


def _today() -> date:
    return clock.now().astimezone(clock.JST).date()


def _nav_badges() -> dict[str, list[tuple[str, int]]]:
    """The menu's to-do counts, once per request; none when the database cannot answer (an error page)."""
    if "nav_badges" not in g:
        try:
            g.nav_badges = service.nav_badges(service.counts(db(), current_user, today=_today()))
        except SQLAlchemyError:
            log.warning("menu counts unavailable", exc_info=True)
            g.nav_badges = {}
    return dict(g.nav_badges)


@bp.get("/")
def index() -> ResponseReturnValue:
    """The landing page; for staff, their to-do lists (htmx refreshes them, and the menu counts, every minute)."""
    if current_user.is_authenticated:
        todo = service.todo_lists(db(), current_user, today=_today())
        g.nav_badges = service.nav_badges({t.key: t.count for t in todo})
        return render_page_or_partial("home/index.html", "home/_todo.html", todo=todo,
                                      refreshing=wants_partial())
    endpoints = current_app.view_functions
    return render_template(
        "home/index.html",
        can_apply="usage_requests.new" in endpoints,
        can_verify="signing.verify_page" in endpoints,
    )


@bp.get("/help")
def help() -> ResponseReturnValue:
    """The vendors' help: what Acrobat will show with the configured certificate, the link validity, whom to ask.

    ?department=<code> (the links of a contract's pages carry it) adds that department's contact.
    """
    config = current_app.config
    code = request.args.get("department", "")[:16]
    # A code with control characters names no department (PostgreSQL refuses NUL in a parameter).
    department = db().scalar(select(Department).where(Department.code == code)) if code.isprintable() and code \
        else None
    if department is not None:
        contact.remember(department)
    return render_template(
        "home/help.html",
        department=department,
        general=contact.contact_for(None, config),
        acrobat=_acrobat_outlook(),
        root_name=pki.ROOT_NAME,
        download_link_days=config["DOWNLOAD_LINK_DAYS"],
    )


def _acrobat_outlook() -> signing.AcrobatOutlook | None:
    # The help must open even when the signing set-up is broken (the admin page reports why).
    try:
        return signing.acrobat_outlook(current_app.config)
    except Exception:
        log.exception("the help page could not read the signing certificate")
        return None
