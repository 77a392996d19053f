"""Completion-mail links: /d/<token> lists the signed documents; 410 after DOWNLOAD_LINK_DAYS."""

from __future__ import annotations

import io

from flask import render_template, send_file
from flask.typing import ResponseReturnValue

from portal import clock
from portal.contact import remember as remember_contact
from portal.db import db
from portal.downloads import bp, service
from portal.extensions import limiter
from portal.logging_setup import identify
from portal.security import request_info


@bp.get("/d/<token>")
@limiter.limit("60/minute")
def show(token: str) -> ResponseReturnValue:
    link = service.resolve_link(db(), token, now=clock.now())
    identify(download_link_id=link.id)
    remember_contact(link.contract.department)
    service.record_opened(db(), link, now=clock.now(), request=request_info())
    db().commit()
    return render_template("downloads/show.html", link=link, contract=link.contract, token=token)


@bp.get("/d/<token>/documents/<int:document_id>")
@limiter.limit("60/minute")
def document(token: str, document_id: int) -> ResponseReturnValue:
    return _send(token, document_id)


@bp.get("/d/<token>/certificate")
@limiter.limit("60/minute")
def certificate(token: str) -> ResponseReturnValue:
    return _send(token, None)


def _send(token: str, document_id: int | None) -> ResponseReturnValue:
    link = service.resolve_link(db(), token, now=clock.now())
    identify(download_link_id=link.id)
    remember_contact(link.contract.department)
    filename, data = service.download(db(), link, document_id, now=clock.now(), request=request_info())
    db().commit()
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True, download_name=filename)
