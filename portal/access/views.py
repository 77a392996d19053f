"""The staff-network check before every request, and the admin page that edits the list."""

from __future__ import annotations

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal import clock
from portal.access import bp, service
from portal.auth.models import Role
from portal.db import db
from portal.errors import DomainError
from portal.security import request_info, role_required


def refuse_staff_requests_from_outside() -> None:
    """Before every request: a staff-side path from an address outside the allowed networks is refused (403)."""
    public = request.endpoint is None or service.is_public_path(request.path)
    if public and not (request.path == "/" and current_user.is_authenticated):
        return
    configured = current_app.config.get("STAFF_ALLOWED_NETWORKS", "")
    networks = service.effective_networks(db(), configured)
    if service.is_allowed(request.remote_addr, networks):
        return
    service.record_refusal(db(), path=request.path, request=request_info(), now=clock.now(), user=current_user)
    db().commit()
    raise service.NetworkNotAllowed(service.display_address(request.remote_addr))


def _render(text: str | None = None, *, error: str | None = None, saved: bool = False,
            status: int = 200) -> ResponseReturnValue:
    rows = service.stored_networks(db())
    return render_template(
        "access/networks.html",
        text=text if text is not None else "\n".join(row.cidr for row in rows),
        configured=str(current_app.config.get("STAFF_ALLOWED_NETWORKS", "") or ""),
        own_ip=service.display_address(request.remote_addr), error=error, saved=saved,
    ), status


@bp.get("/networks")
@role_required(Role.ADMIN)
def networks() -> ResponseReturnValue:
    return _render()


@bp.post("/networks")
@role_required(Role.ADMIN)
def save_networks() -> ResponseReturnValue:
    text = request.form.get("networks", "")[:20_000]
    try:
        service.replace_networks(db(), text, configured=current_app.config.get("STAFF_ALLOWED_NETWORKS", ""),
                                 actor=current_user, request=request_info(), now=clock.now())
    except DomainError as exc:
        db().rollback()
        return _render(text, error=exc.message, status=422)
    db().commit()
    return _render(saved=True)
