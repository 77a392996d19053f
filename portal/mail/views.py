from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from portal import clock
from portal.db import db
from portal.mail import bp, service
from portal.mail.models import OutboxMessage
from portal.security import request_info, role_required

# Role.ADMIN of portal.auth.models, by value: auth sends mail (enrolment links), so mail does not import auth.
ADMIN = "admin"


@bp.get("/")
@role_required(ADMIN)
def index() -> ResponseReturnValue:
    messages = list(db().scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)))
    service.record_list_viewed(db(), viewer=current_user, now=clock.now(), request=request_info(),
                               count=len(messages))
    db().commit()
    return render_template("mail/admin/index.html", messages=messages)


@bp.get("/<int:message_id>")
@role_required(ADMIN)
def show(message_id: int) -> ResponseReturnValue:
    message = service.view_message(db(), message_id, viewer=current_user, now=clock.now(), request=request_info())
    db().commit()
    return render_template("mail/admin/show.html", message=message, body=service.readable_body(message))
