"""The 「送信者の操作」 panel of the contract page: resend, unlock, change the アクセスコード, new download link.

Each view: load (404 for other departments) → one portal.contracts.sender call → commit → mail →
redirect; a refusal rolls back and shows the panel again with the message.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal import clock
from portal.contracts import bp, sender, service
from portal.contracts.forms import AccessCodeChangeForm, DownloadLinkForm
from portal.contracts.models import Contract
from portal.contracts.page_context import EDITORS, show_context
from portal.db import db
from portal.errors import DomainError
from portal.htmx import hx_redirect, render_page_or_partial
from portal.mail.worker import notify as notify_outbox
from portal.security import request_info, role_required


@bp.post("/<int:contract_id>/resend")
@role_required(*EDITORS)
def resend(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    return _use(contract, lambda: sender.resend_request(db(), contract, actor=current_user, now=clock.now(),
                                                        request=request_info()),
                "署名依頼を新しいリンクで再送しました。以前のリンクは使えなくなりました。")


@bp.post("/<int:contract_id>/unlock")
@role_required(*EDITORS)
def unlock_link(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    return _use(contract, lambda: sender.unlock(db(), contract, actor=current_user, now=clock.now(),
                                                request=request_info()),
                "署名用リンクのロックを解除しました。署名者にお知らせしました。")


@bp.post("/<int:contract_id>/access-code")
@role_required(*EDITORS)
def change_access_code(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    form = AccessCodeChangeForm()
    if not form.validate_on_submit():
        errors = [str(e) for field in form for e in field.errors]
        return _panel(contract, errors[0] if errors else "入力内容を確認してください。", 422)
    return _use(contract, lambda: sender.change_access_code(db(), contract, form.access_code.data or "",
                                                            actor=current_user, now=clock.now(),
                                                            request=request_info()),
                "アクセスコードを変更しました。新しいコードはメール以外の方法で相手方に伝えてください。")


@bp.post("/<int:contract_id>/download-links")
@role_required(*EDITORS)
def reissue_download_link(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    form = DownloadLinkForm()
    form.recipient.choices = sender.download_recipients(db(), contract)
    if not form.validate_on_submit():
        errors = [str(e) for field in form for e in field.errors]
        return _panel(contract, errors[0] if errors else "送付先を選んでください。", 422)
    return _use(contract, lambda: sender.reissue_download_link(db(), contract, form.recipient.data or "",
                                                               actor=current_user, now=clock.now(),
                                                               request=request_info()),
                "ダウンロード用リンクを再発行し、メールで送りました。")


def _use(contract: Contract, operation: Callable[[], object], done: str) -> ResponseReturnValue:
    contract_id = contract.id
    try:
        operation()
    except DomainError as exc:
        db().rollback()
        return _panel(service.get_contract(db(), contract_id), exc.message, exc.status_code)
    db().commit()
    notify_outbox()
    flash(done, "success")
    return hx_redirect(url_for("contracts.show", contract_id=contract_id))


def _panel(contract: Contract, error: str, status: int) -> ResponseReturnValue:
    return render_page_or_partial("contracts/show.html", "contracts/_sender_tools.html", status=status,
                                  sender_error=error, **show_context(contract))
