"""A stored file that fails its check (storage.TamperedFile) is refused, logged and never served.

Whatever read it (a staff download, a vendor's 14-day link, the certificate, a page image, an export)
the request is rolled back, an audit event names the key, its owner and why, and the person is told
in Japanese that the document was not served, with status 409 (never a 500).
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal.audit.actions import AuditAction
from portal.audit.service import ANONYMOUS, Actor, record
from portal.errors import DomainError
from portal.storage import TamperedFile

log = logging.getLogger(__name__)

REFUSED = ("保存されている文書が記録（SHA-256・保存先）と一致しないため、表示・ダウンロードを中止しました。"
           "改ざんまたは破損の可能性があります。この操作は記録されました。管理者に連絡してください。")


class DocumentRefused(DomainError):
    status_code = 409

    def __init__(self) -> None:
        super().__init__(REFUSED)


def _actor() -> Actor:
    if getattr(current_user, "is_authenticated", False) and hasattr(current_user, "email"):
        return Actor.staff(current_user)
    return ANONYMOUS


def init_app(app: Flask) -> None:
    @app.errorhandler(TamperedFile)
    def refuse_tampered(exc: TamperedFile) -> ResponseReturnValue:
        from portal.db import db, reset_request_session

        log.error("refused to serve %s", exc)
        reset_request_session()  # nothing the request did before the read is kept
        session = db()
        record(session, actor=_actor(), action=AuditAction.STORAGE_INTEGRITY_FAILED, ip=request.remote_addr or "",
               user_agent=request.user_agent.string, key=exc.key, owner=exc.owner, why=exc.why, path=request.path)
        session.commit()
        return current_app.handle_user_exception(DocumentRefused())  # rendered as every DomainError is
