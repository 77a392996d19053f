from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select

from portal import clock
from portal.db import db
from portal.mail import bp, reasons, service, worker
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.security import request_info, role_required

# Role.ADMIN of portal.auth.models, by value: auth sends mail (enrolment links), so mail does not import auth.
ADMIN = "admin"


@bp.get("/")
@role_required(ADMIN)
def index() -> ResponseReturnValue:
    messages = list(db().scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)))
    held = db().scalar(select(func.count()).select_from(OutboxMessage)
                       .where(OutboxMessage.status == OutboxStatus.HELD)) or 0
    service.record_list_viewed(db(), viewer=current_user, now=clock.now(), request=request_info(),
                               count=len(messages))
    db().commit()
    configured = bool(current_app.config["MAIL_SERVER"])
    return render_template("mail/admin/index.html", messages=messages, held_count=held, mail_configured=configured,
                           reasons={m.id: reasons.describe(m, mail_configured=configured) for m in messages})


@bp.get("/<int:message_id>")
@role_required(ADMIN)
def show(message_id: int) -> ResponseReturnValue:
    message = service.view_message(db(), message_id, viewer=current_user, now=clock.now(), request=request_info())
    db().commit()
    configured = bool(current_app.config["MAIL_SERVER"])
    return render_template("mail/admin/show.html", message=message, body=service.readable_body(message),
                           mail_configured=configured, reason=reasons.describe(message, mail_configured=configured))


@bp.post("/<int:message_id>/send")
@role_required(ADMIN)
def send(message_id: int) -> ResponseReturnValue:
    """「送信する」 on one held mail."""
    return _send_held(message_id)


@bp.post("/send-held")
@role_required(ADMIN)
def send_all_held() -> ResponseReturnValue:
    """「保留中のメールをすべて送信」."""
    return _send_held(None)


def _send_held(message_id: int | None) -> ResponseReturnValue:
    back = url_for("mail.index")  # the list shows what changed, for one mail as for all
    try:
        released = service.send_held(db(), actor=current_user, now=clock.now(), request=request_info(),
                                     message_id=message_id)
    except service.MailNotConfigured as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(back, 303)
    db().commit()
    worker.notify()
    if released:
        flash(f"{released}件のメールを送信待ちにしました。まもなく送信されます。", "success")
    else:
        flash("送信できる保留中のメールはありません（すでに送信待ちか、送信済みです）。", "info")
    return redirect(back, 303)
