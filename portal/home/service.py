"""The staff to-do lists of the home page and the counts beside the menu.

Each list shows only what its user may act on: the contract lists use the scope of the contract list
(portal.contracts.service.visible_to: the department, or contracts the user signs; admins all),
決裁 waits only for the department's approvers who did not prepare the contract (four eyes), a
signature only for the party whose turn it is, new 利用申出書 the scope of their own list, failed mails
administrators. Auditors act on nothing, so they have no to-do list.

All counts come from one SELECT of scalar subqueries; the rows of each list are one query more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from portal.auth.models import Role, StaffUser
from portal.contracts import service as contracts
from portal.contracts.models import (
    Contract,
    ContractDocument,
    ContractStatus,
    Party,
    PartyRole,
    PartyStatus,
    RequestStatus,
    SignatureRequest,
)
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.usage_requests import service as usage_requests
from portal.usage_requests.models import UsageRequest, UsageRequestStatus

ROWS_SHOWN = 5  # rows per list on the home page; the rest are one link away
ALL_ROWS = 50  # lists without a filtered full page show every row, up to this many
DUE_SOON_DAYS = 7
URGENT_DAYS = 3  # days left at or below which the 締結予定日 is shown in red

# Not closed and not yet signed by everyone: a 締結予定日 still matters.
UNSIGNED_OPEN = (ContractStatus.DRAFT, ContractStatus.AWAITING_APPROVAL, ContractStatus.APPROVED,
                 ContractStatus.AWAITING_COUNTERPARTY, ContractStatus.AWAITING_AGENCY)


@dataclass(frozen=True)
class TodoRow:
    title: str
    detail: str
    endpoint: str
    values: dict[str, Any]
    days_left: int | None = None

    @property
    def is_urgent(self) -> bool:
        return self.days_left is not None and self.days_left <= URGENT_DAYS


@dataclass(frozen=True)
class TodoList:
    key: str
    heading: str
    badge: str  # the menu badge's words: 「決裁待ち 3件」
    count: int
    rows: list[TodoRow] = field(default_factory=list)
    full_list: tuple[str, dict[str, Any]] | None = None  # (endpoint, query) of the filtered list page

    @property
    def has_more(self) -> bool:
        return self.count > len(self.rows)


@dataclass(frozen=True)
class _Spec:
    key: str
    heading: str
    badge: str
    applies: Callable[[StaffUser], bool]
    query: Callable[[StaffUser, date], Select[Any]]  # the rows, in display order
    row: Callable[[Any, date], TodoRow]
    full_list: tuple[str, dict[str, Any]] | None = None


def _acts_on_contracts(user: StaffUser) -> bool:
    return user.has_role(Role.STAFF, Role.APPROVER)


def _approves(user: StaffUser) -> bool:
    return user.has_role(Role.APPROVER)


def _is_admin(user: StaffUser) -> bool:
    return user.role == Role.ADMIN


_CONTRACT_COLUMNS = (Contract.id, Contract.number, Contract.business_name, Contract.counterparty_name,
                     Contract.planned_conclusion_date)


def _contracts(user: StaffUser, *conditions: Any) -> Select[Any]:
    return (select(*_CONTRACT_COLUMNS).where(contracts.visible_to(user), *conditions)
            .order_by(Contract.planned_conclusion_date, Contract.id))


def _approval(user: StaffUser, today: date) -> Select[Any]:
    # The approver of the department, and not one who prepared it (lifecycle.may_approve).
    uploaded_by_user = exists().where(ContractDocument.contract_id == Contract.id,
                                      ContractDocument.uploaded_by_id == user.id)
    return _contracts(user, Contract.status == ContractStatus.AWAITING_APPROVAL,
                      Contract.department_id == user.department_id, Contract.created_by_id != user.id,
                      ~uploaded_by_user)


def _my_signature(user: StaffUser, today: date) -> Select[Any]:
    return (select(*_CONTRACT_COLUMNS, Party.id.label("party_id")).join(Party, Party.contract_id == Contract.id)
            .where(Party.staff_user_id == user.id, Party.role == PartyRole.AGENCY,
                   Party.status == PartyStatus.REQUESTED, Contract.status == ContractStatus.AWAITING_AGENCY)
            .order_by(Contract.planned_conclusion_date, Contract.id))


def _ready_to_send(user: StaffUser, today: date) -> Select[Any]:
    return _contracts(user, Contract.status == ContractStatus.APPROVED)


def _awaiting_vendor(user: StaffUser, today: date) -> Select[Any]:
    return _contracts(user, Contract.status == ContractStatus.AWAITING_COUNTERPARTY)


def _due_soon(user: StaffUser, today: date) -> Select[Any]:
    # Overdue ones stay in the list: their links have expired, someone must decide (paper, new date).
    return _contracts(user, Contract.status.in_(UNSIGNED_OPEN),
                      Contract.planned_conclusion_date <= today + timedelta(days=DUE_SOON_DAYS))


def _locked_links(user: StaffUser, today: date) -> Select[Any]:
    locked = (select(SignatureRequest.id).join(Party, Party.id == SignatureRequest.party_id)
              .where(Party.contract_id == Contract.id, SignatureRequest.status == RequestStatus.OPEN,
                     SignatureRequest.failed_code_attempts >= int(current_app.config["ACCESS_CODE_MAX_ATTEMPTS"])))
    return _contracts(user, Contract.status.in_((ContractStatus.AWAITING_COUNTERPARTY,
                                                 ContractStatus.AWAITING_AGENCY)),
                      Contract.access_code_hash.is_not(None), exists(locked))


def _new_usage_requests(user: StaffUser, today: date) -> Select[Any]:
    return (select(UsageRequest.id, UsageRequest.receipt_number, UsageRequest.company_name,
                   UsageRequest.contract_name)
            .where(usage_requests.visible_to(user), UsageRequest.status == UsageRequestStatus.PENDING)
            .order_by(UsageRequest.submitted_at, UsageRequest.id))


def _failed_mail(user: StaffUser, today: date) -> Select[Any]:
    return (select(OutboxMessage.id, OutboxMessage.subject, OutboxMessage.recipient)
            .where(OutboxMessage.status == OutboxStatus.FAILED).order_by(OutboxMessage.id.desc()))


def _contract_row(row: Any, today: date) -> TodoRow:
    return TodoRow(title=row.business_name, detail=f"{row.number}　{row.counterparty_name}",
                   endpoint="contracts.show", values={"contract_id": row.id})


def _dated_row(row: Any, today: date) -> TodoRow:
    return TodoRow(title=row.business_name, detail=f"{row.number}　{row.counterparty_name}",
                   endpoint="contracts.show", values={"contract_id": row.id},
                   days_left=(row.planned_conclusion_date - today).days)


def _signature_row(row: Any, today: date) -> TodoRow:
    return TodoRow(title=row.business_name, detail=f"{row.number}　{row.counterparty_name}",
                   endpoint="signature_requests.staff_review", values={"party_id": row.party_id},
                   days_left=(row.planned_conclusion_date - today).days)


def _usage_request_row(row: Any, today: date) -> TodoRow:
    return TodoRow(title=row.company_name, detail=f"{row.receipt_number}　{row.contract_name}",
                   endpoint="usage_requests.show", values={"request_id": row.id})


def _mail_row(row: Any, today: date) -> TodoRow:
    return TodoRow(title=row.subject, detail=row.recipient, endpoint="mail.show", values={"message_id": row.id})


SPECS = (
    _Spec("approval", "決裁の確認を待っている契約", "決裁待ち", _approves, _approval, _dated_row,
          ("contracts.index", {"status": ContractStatus.AWAITING_APPROVAL.value})),
    _Spec("signature", "あなたの署名を待っている契約", "署名待ち", _approves, _my_signature, _signature_row),
    _Spec("ready_to_send", "承認済み（送信待ち）の契約", "送信待ち", _acts_on_contracts, _ready_to_send, _dated_row,
          ("contracts.index", {"status": ContractStatus.APPROVED.value})),
    _Spec("awaiting_vendor", "相手方の署名を待っている契約", "相手方の署名待ち", _acts_on_contracts,
          _awaiting_vendor, _dated_row, ("contracts.index", {"status": ContractStatus.AWAITING_COUNTERPARTY.value})),
    _Spec("due_soon", f"締結予定日が{DUE_SOON_DAYS}日以内の契約", "締結予定日が近い契約", _acts_on_contracts,
          _due_soon, _dated_row),
    _Spec("locked_links", "アクセスコードの誤りでロックされた署名用リンク", "ロック中のリンク", _acts_on_contracts,
          _locked_links, _contract_row),
    _Spec("usage_requests", "確認待ちの電子契約利用申出書", "確認待ちの申出", _acts_on_contracts,
          _new_usage_requests, _usage_request_row, ("usage_requests.index",
                                                    {"status": UsageRequestStatus.PENDING.value})),
    _Spec("failed_mail", "送信に失敗したメール", "送信失敗のメール", _is_admin, _failed_mail, _mail_row,
          ("mail.index", {})),
)

# Which lists' counts the menu shows beside which entry.
NAV_BADGES = {
    "home.index": ("due_soon", "awaiting_vendor"),
    "contracts.index": ("approval", "signature", "ready_to_send", "locked_links"),
    "usage_requests.index": ("usage_requests",),
    "mail.index": ("failed_mail",),
}


def _specs_for(user: StaffUser) -> list[_Spec]:
    return [spec for spec in SPECS if spec.applies(user)]


def counts(session: Session, user: StaffUser, *, today: date) -> dict[str, int]:
    """The number of items in each list `user` has (no key for the lists they do not have), in one query."""
    specs = _specs_for(user)
    if not specs:
        return {}
    columns = [select(func.count()).select_from(spec.query(user, today).order_by(None).subquery())
               .scalar_subquery().label(spec.key) for spec in specs]
    row = session.execute(select(*columns)).one()
    return {spec.key: int(value) for spec, value in zip(specs, row, strict=True)}


def todo_lists(session: Session, user: StaffUser, *, today: date) -> list[TodoList]:
    """Every list `user` has, with its count and first rows (all rows where no filtered list page exists).

    `today` is the JST date the days left to each 締結予定日 are counted from.
    """
    specs = _specs_for(user)
    numbers = counts(session, user, today=today)
    lists = []
    for spec in specs:
        count = numbers[spec.key]
        limit = ROWS_SHOWN if spec.full_list else ALL_ROWS
        rows = [spec.row(r, today) for r in session.execute(spec.query(user, today).limit(limit))] if count else []
        lists.append(TodoList(key=spec.key, heading=spec.heading, badge=spec.badge, count=count, rows=rows,
                              full_list=spec.full_list))
    return lists


def nav_badges(numbers: dict[str, int]) -> dict[str, list[tuple[str, int]]]:
    """Menu endpoint → [(badge words, count)] for the non-zero counts."""
    labels = {spec.key: spec.badge for spec in SPECS}
    return {endpoint: [(labels[key], numbers[key]) for key in keys if numbers.get(key)]
            for endpoint, keys in NAV_BADGES.items()}
