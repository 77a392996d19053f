from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from portal.db import db
from portal.errors import NotFound
from portal.mail import bp
from portal.mail.models import OutboxMessage
from portal.security import role_required

# Role.ADMIN of portal.auth.models, by value: auth sends mail (enrolment links), so mail does not import auth.
ADMIN = "admin"


@bp.get("/")
@role_required(ADMIN)
def index() -> ResponseReturnValue:
    messages = db().scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200))
    return render_template("mail/admin/index.html", messages=list(messages))


@bp.get("/<int:message_id>")
@role_required(ADMIN)
def show(message_id: int) -> ResponseReturnValue:
    message = db().get(OutboxMessage, message_id)
    if message is None:
        raise NotFound("メールが見つかりません。")
    return render_template("mail/admin/show.html", message=message)
