"""Landing page, dashboard, help pages and the main navigation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

bp = Blueprint("home", __name__, template_folder="templates")

# (endpoint, label, roles allowed); admin sees everything.
NAV = [
    ("home.index", "ホーム", ("staff", "approver", "auditor")),
    ("contracts.index", "契約", ("staff", "approver", "auditor")),
    ("usage_requests.index", "利用申出", ("staff", "approver", "auditor")),
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
        return {"nav_items": []}
    endpoints = set(current_app.view_functions)
    items = [
        (endpoint, label)
        for endpoint, label, roles in NAV
        if endpoint in endpoints and (current_user.role == "admin" or current_user.role in roles)
    ]
    return {"nav_items": items}


@bp.get("/")
def index() -> ResponseReturnValue:
    endpoints = current_app.view_functions
    return render_template(
        "home/index.html",
        can_apply="usage_requests.new" in endpoints,
        can_verify="signing.verify_page" in endpoints,
    )


@bp.get("/help")
def help() -> ResponseReturnValue:
    config = current_app.config
    return render_template(
        "home/help.html",
        contact_phone=config["CONTACT_PHONE"],
        contact_hours=config["CONTACT_HOURS"],
        contact_email=config["CONTACT_EMAIL"],
        contact_form_url=config["CONTACT_FORM_URL"],
    )
