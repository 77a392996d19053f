"""Deadlines: reminders before the planned conclusion date, paper fallback after it.

run_deadlines() is idempotent (a reminder is remembered on the party), so the worker may call it
as often as it likes; `flask --app app contracts deadlines` runs it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, record
from portal.clock import JST
from portal.contracts import lifecycle, notifications
from portal.contracts.models import Contract, ContractStatus

PAST_DEADLINE = "締結予定日までに電子署名が完了しなかったため、紙の契約書による締結に移行しました。"


@dataclass
class DeadlineReport:
    reminded: int = 0
    switched_to_paper: int = 0


def run_deadlines(session: Session, *, now: datetime) -> DeadlineReport:
    """Remind current signers N days before 締結予定日; move contracts past it to 紙契約へ移行.

    Each contract is locked before it is changed and its state read again under the lock, so two
    runs at once (two workers, or the command beside the worker) remind each signer once per
    threshold and move a contract to paper once.
    """
    report = DeadlineReport()
    today = now.astimezone(JST).date()
    signing = select(Contract.id).where(
        Contract.status.in_([ContractStatus.AWAITING_COUNTERPARTY, ContractStatus.AWAITING_AGENCY])
    ).order_by(Contract.id)
    for contract_id in session.scalars(signing).all():
        contract = session.get(Contract, contract_id)
        if contract is None:
            continue
        if contract.planned_conclusion_date < today:
            try:
                lifecycle.fall_back_to_paper(session, contract, reason=PAST_DEADLINE, now=now)
            except lifecycle.TransitionRefused:
                continue  # signed (or closed) by someone else since the query above
            report.switched_to_paper += 1
            continue
        if _due_reminders(contract, today) and remind(session, contract, today=today, now=now):
            report.reminded += 1
    session.flush()
    return report


def _due_reminders(contract: Contract, today: date) -> list[int]:
    party = contract.current_party
    if party is None or not contract.status.is_signing:
        return []
    remaining = (contract.planned_conclusion_date - today).days
    days_before = sorted(int(d) for d in current_app.config["REMINDER_DAYS_BEFORE"])
    return [d for d in days_before if remaining <= d and d not in party.reminders_sent]


def remind(session: Session, contract: Contract, *, today: date, now: datetime) -> bool:
    """Under the contract's lock: a fresh signing link to the signer whose turn it is, and word to the sender.

    False when nothing was due any more (another run reminded first, or the contract moved on).
    """
    contract = lifecycle.lock(session, contract.id)
    due = _due_reminders(contract, today)
    if not due:
        return False
    reissued = lifecycle.reissue_link(session, contract, now=now, keep_previous=True)
    party = reissued.party
    # One mail even when several thresholds passed at once (e.g. the worker was down).
    party.reminders_sent = [*party.reminders_sent, *due]
    remaining = (contract.planned_conclusion_date - today).days
    notifications.signature_reminder(session, contract, party, days=remaining, link=reissued.link, now=now)
    record(session, actor=SYSTEM, action=AuditAction.CONTRACT_REMINDED, subject=contract, now=now,
           party=party.position, email=party.email, days_before=remaining, link_reissued=True)
    return True
