"""The transition table, pair by pair: every (status, action) in lifecycle.TRANSITIONS works through the
real service functions and ends in a status the table names, with its one audit event; every other pair
is refused with lifecycle.refusal()'s Japanese message and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.models import AuditEvent
from portal.audit.service import Actor, RequestInfo
from portal.auth.models import Role, StaffUser
from portal.contracts import lifecycle
from portal.contracts import service as contracts
from portal.contracts.lifecycle import Action, TransitionRefused
from portal.contracts.models import Contract, ContractStatus, Party, PartyStatus
from tests.factories import make_contract, make_department, make_staff
from tests.pdfs import make_pdf

S = ContractStatus
SIGNER_INFO = RequestInfo(ip="192.0.2.10", user_agent="pytest")


@dataclass
class People:
    staff: StaffUser
    approver: StaffUser


@pytest.fixture
def people(session: Session) -> People:
    department = make_department(session)
    return People(make_staff(session, role=Role.STAFF, email="tanto@pref.example.jp", department=department),
                  make_staff(session, role=Role.APPROVER, email="shonin@pref.example.jp", name="岡山 花子",
                             department=department))


def _waiting_party(contract: Contract) -> Party:
    """Whose turn it is, else the first who has not signed, else the first party."""
    parties = contract.parties
    return (next((p for p in parties if p.status is PartyStatus.REQUESTED), None)
            or next((p for p in parties if p.status is not PartyStatus.SIGNED), None) or parties[0])


def _sign(session: Session, contract: Contract, people: People) -> None:
    party = lifecycle.lock_for_party(session, _waiting_party(contract).id)
    assert party is not None
    if not lifecycle.check_may_sign(party):
        return
    actor = Actor.staff(people.approver) if party.staff_user_id else Actor.signer(party.email)
    lifecycle.sign(session, party, actor=actor, methods=["email_link"], request=SIGNER_INFO, now=clock.now())


def _decline(session: Session, contract: Contract, people: People) -> None:
    party = _waiting_party(contract)
    lifecycle.decline(session, party, reason="金額が見積りと異なります", actor=Actor.signer(party.email),
                      request=SIGNER_INFO, now=clock.now())


def _edit(session: Session, contract: Contract, people: People) -> None:
    """「編集する」 with a new amount, through editing.edit_draft()."""
    import dataclasses

    from portal.contracts.editing import edit_draft

    data = _draft_input(contract)
    edit_draft(session, contract, dataclasses.replace(data, amount=contract.amount + 11_000,
                                                      tax_amount=contract.tax_amount + 1_000),
               actor=people.staff, now=clock.now())


def _draft_input(contract: Contract) -> contracts.ContractInput:
    signers = [contracts.SignerInput(role=p.role, organization=p.organization, title=p.title, name=p.name,
                                     email=p.email, user_email=p.email) for p in contract.parties]
    return contracts.ContractInput(
        business_name=contract.business_name, department=contract.department,
        counterparty_name=contract.counterparty_name, amount=contract.amount, tax_amount=contract.tax_amount,
        transaction_date=contract.transaction_date, term_start=contract.term_start, term_end=contract.term_end,
        planned_conclusion_date=contract.planned_conclusion_date, signers=signers,
        contract_type=contract.contract_type)


def _complete(session: Session, contract: Contract, people: People) -> None:
    lifecycle.complete(session, lifecycle.lock(session, contract.id), now=clock.now())


ACTIONS: dict[Action, Callable[[Session, Contract, People], Any]] = {
    Action.EDIT_DOCUMENTS: lambda session, contract, people: contracts.attach_document(
        session, contract, filename="追加仕様書.pdf", data=make_pdf("Annex"), actor=people.staff, now=clock.now()),
    Action.EDIT: _edit,
    Action.REQUEST_APPROVAL: lambda session, contract, people: contracts.request_approval(
        session, contract, actor=people.staff, now=clock.now()),
    Action.APPROVE: lambda session, contract, people: contracts.confirm_internal_approval(
        session, contract, approver=people.approver, reference="総契第123号", now=clock.now()),
    Action.SEND: lambda session, contract, people: contracts.send_for_signature(
        session, contract, actor=people.staff, now=clock.now()),
    Action.SIGN: _sign,
    Action.DECLINE: _decline,
    Action.COMPLETE: _complete,
    Action.PAPER: lambda session, contract, people: lifecycle.fall_back_to_paper(
        session, contract, reason="相手方の申出により紙で締結", now=clock.now(), actor=people.staff),
    Action.CANCEL: lambda session, contract, people: lifecycle.cancel(
        session, contract, reason="事業の中止", actor=people.staff, now=clock.now()),
}

# How each status is reached from a 下書き with one document, through the same functions.
# 締結処理中: everyone has signed and the contract waits for the worker's 締結処理 (COMPLETE's allowed case).
PATHS: dict[str, tuple[ContractStatus, bool, tuple[Action, ...]]] = {
    "draft": (S.DRAFT, False, ()),
    "awaiting_approval": (S.AWAITING_APPROVAL, False, (Action.REQUEST_APPROVAL,)),
    "approved": (S.APPROVED, False, (Action.APPROVE,)),
    "awaiting_counterparty": (S.AWAITING_COUNTERPARTY, False, (Action.APPROVE, Action.SEND)),
    "awaiting_agency": (S.AWAITING_AGENCY, False, (Action.APPROVE, Action.SEND, Action.SIGN)),
    "completing": (S.COMPLETING, False, (Action.APPROVE, Action.SEND, Action.SIGN, Action.SIGN)),
    "completing_agency_first": (S.COMPLETING, True, (Action.APPROVE, Action.SEND, Action.SIGN, Action.SIGN)),
    "completed": (S.COMPLETED, False, (Action.APPROVE, Action.SEND, Action.SIGN, Action.SIGN, Action.COMPLETE)),
    "declined": (S.DECLINED, False, (Action.APPROVE, Action.SEND, Action.DECLINE)),
    "paper": (S.PAPER, False, (Action.APPROVE, Action.SEND, Action.PAPER)),
    "cancelled": (S.CANCELLED, False, (Action.APPROVE, Action.SEND, Action.CANCEL)),
}


def _contract_in(app: Flask, session: Session, people: People, path: str) -> Contract:
    status, agency_first, steps = PATHS[path]
    contract = make_contract(session, staff=people.staff, approver=people.approver, agency_first=agency_first,
                             documents={"契約書.pdf": make_pdf("Agreement")})
    with app.app_context():
        for action in steps:
            ACTIONS[action](session, session.get(Contract, contract.id), people)
            session.commit()
    session.expire_all()
    assert contract.status is status
    return contract


def _events(session: Session, contract_id: int, action: str) -> int:
    query = select(func.count()).select_from(AuditEvent).where(AuditEvent.subject_id == str(contract_id),
                                                                AuditEvent.action == action)
    return session.scalar(query) or 0


A = Action
SIGNING = (S.AWAITING_COUNTERPARTY, S.AWAITING_AGENCY)
# The lifecycle as the portal's users know it, written out independently of lifecycle.TRANSITIONS.
ALLOWED: dict[tuple[ContractStatus, Action], tuple[ContractStatus, ...]] = {
    (S.DRAFT, A.EDIT_DOCUMENTS): (S.DRAFT,),
    (S.DRAFT, A.REQUEST_APPROVAL): (S.AWAITING_APPROVAL,),
    (S.DRAFT, A.APPROVE): (S.APPROVED,),
    (S.AWAITING_APPROVAL, A.EDIT_DOCUMENTS): (S.AWAITING_APPROVAL,),
    (S.AWAITING_APPROVAL, A.APPROVE): (S.APPROVED,),
    (S.APPROVED, A.EDIT_DOCUMENTS): (S.DRAFT,),  # a changed document voids the 決裁
    (S.DRAFT, A.EDIT): (S.DRAFT,),
    (S.AWAITING_APPROVAL, A.EDIT): (S.AWAITING_APPROVAL,),
    (S.APPROVED, A.EDIT): (S.DRAFT,),  # so does a changed amount, term or signer
    (S.APPROVED, A.SEND): SIGNING,
    **{(status, A.SIGN): (*SIGNING, S.COMPLETING) for status in SIGNING},  # the last signature: 締結処理中
    **{(status, A.DECLINE): (S.DECLINED,) for status in SIGNING},
    (S.COMPLETING, A.COMPLETE): (S.COMPLETED,),
    **{(status, action): (after,)
       for status in (S.DRAFT, S.AWAITING_APPROVAL, S.APPROVED, *SIGNING, S.DECLINED)
       for action, after in ((A.PAPER, S.PAPER), (A.CANCEL, S.CANCELLED))},
}


def test_the_table_is_the_lifecycle() -> None:
    assert lifecycle.TRANSITIONS == ALLOWED


NOT_ALL_SIGNED = "全ての署名者の署名が揃っていないため、締結済みにできません。"
NOBODY_TO_DECLINE = "この契約はすでに署名済みです。差し戻しはできません。"  # the first signer has signed


@dataclass(frozen=True)
class Expected:
    after: ContractStatus | None = None  # None: refused
    events: int = 1  # audit events of lifecycle.AUDIT_ACTIONS[action]
    message: str = ""


def _expected(path: str, status: ContractStatus, action: Action) -> Expected:
    everyone_signed = status in (S.COMPLETING, S.COMPLETED)
    if action is Action.SIGN and everyone_signed:
        return Expected(after=status, events=0)  # a second signature is a harmless no-op (double click)
    if (status, action) not in ALLOWED:
        return Expected(message=lifecycle.refusal(status, action))
    if action is Action.COMPLETE and not everyone_signed:
        return Expected(message=NOT_ALL_SIGNED)
    if action is Action.DECLINE and everyone_signed:
        return Expected(message=NOBODY_TO_DECLINE)
    if action in (Action.EDIT_DOCUMENTS, Action.EDIT) and status is not S.APPROVED:
        return Expected(after=status, events=0)  # the document is added (its own event); no transition
    if action is Action.SIGN:  # the counterparty signs first; the agency's signature is the last one
        return Expected(after=S.AWAITING_AGENCY if status is S.AWAITING_COUNTERPARTY else S.COMPLETING)
    return Expected(after=ALLOWED[(status, action)][0])


@pytest.mark.parametrize("path", list(PATHS))
def test_every_action_in_every_status(app: Flask, session: Session, people: People, path: str) -> None:
    contract = _contract_in(app, session, people, path)
    status = contract.status
    mismatches = []
    for action in Action:
        audit_action = lifecycle.AUDIT_ACTIONS[action]
        events_before = _events(session, contract.id, audit_action)
        expected = _expected(path, status, action)
        with app.app_context():
            try:
                ACTIONS[action](session, session.get(Contract, contract.id), people)
                session.flush()
            except TransitionRefused as exc:
                if expected.after is not None:
                    mismatches.append(f"{action}: refused ({exc.message}), expected → {expected.after}")
                elif exc.message != expected.message:
                    mismatches.append(f"{action}: refused with {exc.message!r}, expected {expected.message!r}")
                session.rollback()
                continue
        after = session.get(Contract, contract.id).status
        events = _events(session, contract.id, audit_action) - events_before
        if expected.after is None:
            mismatches.append(f"{action}: allowed (→ {after}), expected {expected.message!r}")
        elif after is not expected.after:
            mismatches.append(f"{action}: → {after}, expected → {expected.after}")
        elif events != expected.events:
            mismatches.append(f"{action}: {events} audit events {audit_action}, expected {expected.events}")
        session.rollback()
    assert not mismatches, "\n".join([f"from {status} ({path}):", *mismatches])


def test_every_refused_pair_has_a_message_naming_what_happened() -> None:
    """The table's complement: each refusal is a Japanese sentence, 「この契約はすでに…」 for what has happened."""
    for status in ContractStatus:
        for action in Action:
            if (status, action) in ALLOWED:
                continue
            message = lifecycle.refusal(status, action)
            assert message.endswith("。"), (status, action, message)
            if status in (S.COMPLETING, S.COMPLETED, S.DECLINED) or (status in (S.PAPER, S.CANCELLED)
                                                          and action not in (Action.SIGN, Action.DECLINE)):
                assert message.startswith("この契約はすでに"), (status, action, message)
            with pytest.raises(TransitionRefused) as refused:
                lifecycle.require(_Stub(status), action)  # type: ignore[arg-type]
            assert refused.value.message == message


@dataclass
class _Stub:
    status: ContractStatus
