"""What the staff contract page (contracts/show.html) shows, for the views of contracts and of the
sender tools alike."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from portal import clock
from portal.auth.models import Role
from portal.contracts import lifecycle, sender, service
from portal.contracts.editing import may_copy
from portal.contracts.forms import AccessCodeChangeForm, ApprovalForm, ConsentForm, DownloadLinkForm
from portal.contracts.models import Contract, ContractStatus
from portal.db import db

EDITORS = (Role.STAFF, Role.APPROVER)
CONSENT_STATUSES = (ContractStatus.DRAFT, ContractStatus.AWAITING_APPROVAL, ContractStatus.APPROVED)


def sender_panel(contract: Contract) -> dict[str, Any]:
    """What contracts/_sender_tools.html needs (part of the contract page's context)."""
    tools = sender.state(db(), contract, current_user)
    download_link_form = DownloadLinkForm(formdata=None)
    download_link_form.recipient.choices = [("", "選択してください"), *tools.recipients]
    return {"tools": tools, "access_code_form": AccessCodeChangeForm(formdata=None),
            "download_link_form": download_link_form}


def show_context(contract: Contract) -> dict[str, Any]:
    """The context of contracts/show.html, for every view that draws the page or one of its parts."""
    can = lifecycle.permissions(contract, current_user)
    needs_consent = (service.consent_required(contract) and not contract.has_consent
                     and contract.status in CONSENT_STATUSES and current_user.has_role(*EDITORS))
    return {"contract": contract, "events": service.history(db(), contract), "approval_form": ApprovalForm(),
            "consent_form": ConsentForm(formdata=None) if needs_consent else None,
            "can_amend": contract.status is ContractStatus.COMPLETED and current_user.has_role(*EDITORS),
            "can_copy": may_copy(contract) and current_user.has_role(*EDITORS), "version": service.version_of(contract),
            "can": can, "can_edit": current_user.has_role(*EDITORS),
            "sending_refusal": lifecycle.sending_refusal(contract, clock.now()) if can["send"] else None,
            **sender_panel(contract)}
