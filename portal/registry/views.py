"""Staff pages of the 取引先 registry: list with search, one 取引先, 「電子契約を希望しない」 and its undoing."""

from __future__ import annotations

from flask import Response, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
from portal.auth.models import Role
from portal.counterparties import service as counterparties
from portal.counterparties.models import Counterparty
from portal.db import db
from portal.errors import DomainError
from portal.htmx import hx_redirect, render_page_or_partial
from portal.registry import bp
from portal.registry.forms import DeclineForm, WithdrawDeclineForm
from portal.registry.service import page_for
from portal.security import request_info, role_required

READERS = (Role.STAFF, Role.APPROVER, Role.AUDITOR)
EDITORS = (Role.STAFF, Role.APPROVER)


@bp.get("/")
@role_required(*READERS)
def index() -> ResponseReturnValue:
    """All 取引先 (agency-wide), or those matching ?q= (表記ゆれ absorbed); typing swaps only the rows."""
    query = (request.args.get("q") or "")[:200]
    return render_page_or_partial("registry/index.html", "registry/_rows.html", query=query,
                                  counterparties=counterparties.list_for_staff(db(), query))


@bp.get("/<int:counterparty_id>")
@role_required(*READERS)
def show(counterparty_id: int) -> ResponseReturnValue:
    counterparty = counterparties.get(db(), counterparty_id)
    info = request_info()
    record(db(), actor=Actor.staff(current_user), action=AuditAction.COUNTERPARTY_VIEWED, subject=counterparty,
           ip=info.ip, user_agent=info.user_agent, now=clock.now())
    db().commit()
    return _render(counterparty)


def _render(counterparty: Counterparty, *, form: DeclineForm | WithdrawDeclineForm | None = None,
            error: str | None = None, status: int = 200) -> Response:
    if form is None:
        form = (WithdrawDeclineForm if counterparty.declined_e_contract else DeclineForm)(formdata=None)
    return render_page_or_partial(
        "registry/show.html", "registry/_decline_panel.html", status=status, counterparty=counterparty,
        registry=page_for(db(), counterparty, actor=current_user), form=form, error=error,
        can_edit=current_user.has_role(*EDITORS))


@bp.post("/<int:counterparty_id>/decline")
@role_required(*EDITORS)
def decline(counterparty_id: int) -> ResponseReturnValue:
    """Record 「電子契約を希望しない」 with the vendor's words: new contracts with it go on paper."""
    counterparty = counterparties.get(db(), counterparty_id)
    form = DeclineForm()
    if not form.validate():
        return _render(counterparty, form=form, status=422)
    return _change(counterparty, lambda: counterparties.record_declined(
        db(), counterparty, form.reason.data or "", actor=current_user, now=clock.now(), request=request_info()))


@bp.post("/<int:counterparty_id>/decline/withdraw")
@role_required(*EDITORS)
def withdraw_decline(counterparty_id: int) -> ResponseReturnValue:
    counterparty = counterparties.get(db(), counterparty_id)
    form = WithdrawDeclineForm()
    if not form.validate():
        return _render(counterparty, form=form, status=422)
    return _change(counterparty, lambda: counterparties.withdraw_declined(
        db(), counterparty, form.reason.data or "", actor=current_user, now=clock.now(), request=request_info()))


def _change(counterparty: Counterparty, operation: object) -> ResponseReturnValue:
    counterparty_id = counterparty.id
    try:
        operation()  # type: ignore[operator]
    except DomainError as exc:
        db().rollback()
        return _render(counterparties.get(db(), counterparty_id), error=exc.message, status=exc.status_code)
    db().commit()
    return hx_redirect(url_for("registry.show", counterparty_id=counterparty_id))
