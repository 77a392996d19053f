"""Staff screens 「編集する」 (a draft's metadata and signers, until it is sent) and 「この契約を複製して作成」."""

from __future__ import annotations

import dataclasses

from flask import flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal import clock
from portal.clock import JST
from portal.contracts import bp, editing, lifecycle, service
from portal.contracts.forms import ContractForm, CopyForm, EditContractForm
from portal.contracts.lifecycle import Action
from portal.contracts.models import Contract, ContractStatus
from portal.contracts.views import EDITORS, _contract_form, _fill_signer, _input_from
from portal.db import db
from portal.errors import DomainError
from portal.htmx import hx_redirect, render_page_or_partial
from portal.security import request_info, role_required

KEEP_ACCESS_CODE = "空欄のままなら、今のアクセスコード（設定している場合）を変更しません。"


def edit_notice(contract: Contract) -> str:
    """What saving does to the 決裁, said before saving."""
    if contract.status is ContractStatus.APPROVED:
        return ("この契約は決裁の確認が済んでいます（" + contract.approval_reference + "）。内容を変更して保存すると"
                "決裁の確認は取り消されて下書きに戻り、送信する前に承認者がもう一度決裁を確認する必要があります。")
    if contract.status is ContractStatus.AWAITING_APPROVAL:
        return "この契約は決裁の確認待ちです。承認者は変更後の内容で決裁を確認します。"
    return "送信するまでは内容を変更できます。変更した項目と変更前・変更後の値は操作ログに残ります。"


@bp.route("/<int:contract_id>/edit", methods=["GET", "POST"])
@role_required(*EDITORS)
def edit(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    lifecycle.require(contract, Action.EDIT)  # sent or closed: the refusal page (409) says why
    form = _contract_form(form_class=EditContractForm, data=editing.form_values(contract))
    form.access_code.description = KEEP_ACCESS_CODE
    if contract.counterparty is not None:
        _fill_signer(form, contract.counterparty)
    page = {"form": form, "contract": contract, "editing": True, "notice": edit_notice(contract),
            "counterparty": contract.counterparty,
            "form_action": url_for("contracts.edit", contract_id=contract.id), "submit_label": "変更を保存"}
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_page_or_partial("contracts/edit.html", "contracts/_form.html", status=status, **page)
    assert isinstance(form, EditContractForm)
    try:
        data = dataclasses.replace(_input_from(form), department=contract.department, consent=None)
        edited = editing.edit_draft(db(), contract, data, actor=current_user, now=clock.now(),
                                     request=request_info(), remove_access_code=bool(form.remove_access_code.data))
    except DomainError as exc:
        db().rollback()
        contract = service.get_contract(db(), contract_id)
        page |= {"contract": contract, "notice": edit_notice(contract)}
        return render_page_or_partial("contracts/edit.html", "contracts/_form.html", status=exc.status_code,
                                      error=exc.message, **page)
    db().commit()
    changed = "、".join(c.label for c in edited.changes)
    if not edited.changes:
        flash("変更された項目はありませんでした。", "info")
    elif edited.approval_voided:
        flash(f"変更を保存しました（{changed}）。決裁の確認は取り消されました。承認者に再度の確認を依頼してください。",
              "success")
    else:
        flash(f"変更を保存しました（{changed}）。", "success")
    return hx_redirect(url_for("contracts.show", contract_id=contract_id))


@bp.route("/<int:contract_id>/copy", methods=["GET", "POST"])
@role_required(*EDITORS)
def copy(contract_id: int) -> ResponseReturnValue:
    """The new-contract form pre-filled from the contract; saving makes a new draft with a new number."""
    original = service.get_for_staff(db(), contract_id, actor=current_user)
    editing.require_copyable(original)
    today = clock.now().astimezone(JST).date()
    form: ContractForm = _contract_form(data=editing.copy_defaults(original, today=today))
    if original.counterparty is not None:
        _fill_signer(form, original.counterparty)  # next year's contract: today's registered authority signs
    copy_form = CopyForm()
    page = {"form": form, "copy_of": original, "copy_form": copy_form, "original": None, "amendment": None,
            "counterparty": original.counterparty,
            "form_action": url_for("contracts.copy", contract_id=original.id)}
    if not form.validate_on_submit() or not copy_form.validate():
        status = 422 if request.method == "POST" else 200
        return render_page_or_partial("contracts/new.html", "contracts/_form.html", status=status, **page)
    try:
        contract = editing.copy_contract(db(), original, _input_from(form),
                                         copy_documents=bool(copy_form.copy_documents.data), actor=current_user,
                                         now=clock.now(), request=request_info())
    except DomainError as exc:
        db().rollback()
        return render_page_or_partial("contracts/new.html", "contracts/_form.html", status=exc.status_code,
                                      error=exc.message, **page)
    db().commit()
    copied = len(contract.documents)
    flash(f"{original.number} を複製して下書き {contract.number} を作成しました。"
          + (f"文書 {copied} 件もコピーしました。" if copied else "PDF 文書をアップロードしてください。"), "success")
    return hx_redirect(url_for("contracts.show", contract_id=contract.id))
