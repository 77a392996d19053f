"""Reading the operation log: the viewer's filters, its pages, and each event as a row in Japanese.

Read-only. The audit package is a leaf that every feature imports, so names of people, contracts
and departments are read from their tables in the shared metadata, not through the feature models.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, Table, and_, cast, false, func, or_, select
from sqlalchemy.orm import Session

from portal.audit import labels
from portal.audit.models import AuditEvent
from portal.clock import JST
from portal.db import Base
from portal.errors import DomainError
from portal.formatting import jst
from portal.parsing import InvalidDate, parse_date_span

PER_PAGE = 50
MAX_PAGE = 1_000_000
LIMITS = {"person": 100, "contract": 40, "ip": 50, "from": 40, "to": 40}
FIELD_NAMES = {"person": "操作者", "action": "操作の種類", "contract": "契約番号", "department": "所属",
               "from": "期間（から）", "to": "期間（まで）", "ip": "IP アドレス", "page": "ページ"}
_IP_TEXT = re.compile(r"^[0-9A-Fa-f.:]+$")


class InvalidFilter(DomainError):
    """One or more filters cannot be read; `errors` maps the field to its message."""

    status_code = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("検索条件を確認してください。" + " ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class AuditFilter:
    person: str = ""
    action: str = ""  # an action code, or "group:<key>" for a group of labels.GROUPS
    contract: str = ""
    department_id: int | None = None
    period_from: date | None = None
    period_to: date | None = None
    ip: str = ""
    page: int = 1
    # Page links continue from a row (newest first: `before` the last one shown, `after` the first), so a
    # page deep in a large log costs what the first does; a bare page number is read with OFFSET.
    before: int | None = None
    after: int | None = None

    def criteria(self) -> dict[str, Any]:
        """The filters as the viewer's own audit event records them (only those that are set)."""
        values = {"person": self.person, "action": self.action, "contract": self.contract,
                  "department_id": self.department_id, "ip": self.ip,
                  "from": self.period_from.isoformat() if self.period_from else None,
                  "to": self.period_to.isoformat() if self.period_to else None}
        return {key: value for key, value in values.items() if value not in (None, "")}


def _clean(args: Mapping[str, str], name: str, errors: dict[str, str]) -> str:
    raw = args.get(name) or ""
    if len(raw) > LIMITS.get(name, 100):
        errors[name] = f"{FIELD_NAMES[name]}は{LIMITS.get(name, 100)}文字以内で入力してください。"
        return ""
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in raw):
        errors[name] = f"{FIELD_NAMES[name]}に使えない制御文字が含まれています。"
        return ""
    return unicodedata.normalize("NFKC", raw).strip()


def parse_filter(args: Mapping[str, str], *, department_ids: set[int]) -> AuditFilter:
    """The filters of the query string. Raises InvalidFilter naming each field that cannot be read."""
    errors: dict[str, str] = {}
    person, contract, ip = (_clean(args, name, errors) for name in ("person", "contract", "ip"))
    action = args.get("action") or ""
    if action and not _is_action_choice(action):
        errors["action"] = "操作の種類は一覧から選んでください。"
        action = ""
    department_id = None
    department = args.get("department") or ""
    if department:
        if not (department.isascii() and department.isdigit() and int(department) in department_ids):
            errors["department"] = "所属は一覧から選んでください。"
        else:
            department_id = int(department)
    if ip and not _IP_TEXT.match(ip.rstrip("*")):
        errors["ip"] = "IP アドレスは 192.0.2.10 や 2001:db8::1 の形で、前方一致は 192.0.2. のように入力してください。"
    period_from = _date(args, "from", errors, first=True)
    period_to = _date(args, "to", errors, first=False)
    if period_from and period_to and period_from > period_to:
        errors["to"] = "期間の「まで」は「から」より後の日付にしてください。"
    page_text = args.get("page") or "1"
    page = int(page_text) if page_text.isascii() and page_text.isdigit() and len(page_text) <= 7 else 0
    if not 1 <= page <= MAX_PAGE:
        errors["page"] = "ページの番号が正しくありません。"
    before, after = (_row_id(args, name, errors) for name in ("before", "after"))
    if errors:
        raise InvalidFilter(errors)
    return AuditFilter(person=person, action=action, contract=contract, department_id=department_id,
                       period_from=period_from, period_to=period_to, ip=ip, page=page, before=before, after=after)


def _row_id(args: Mapping[str, str], name: str, errors: dict[str, str]) -> int | None:
    text = args.get(name) or ""
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        errors["page"] = "ページの番号が正しくありません。"
        return None
    return int(text)


def _is_action_choice(value: str) -> bool:
    if value.startswith("group:"):
        return value[6:] in labels.GROUPS
    return value in {str(action) for action in labels.LABELS}


def _date(args: Mapping[str, str], name: str, errors: dict[str, str], *, first: bool) -> date | None:
    text = _clean(args, name, errors)
    if not text:
        return None
    try:
        span = parse_date_span(text)
    except InvalidDate as exc:
        errors[name] = f"{FIELD_NAMES[name]}: {exc.message}"
        return None
    return span[0] if first else span[1]


# ---------------------------------------------------------------- the query


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _without_spaces(column: Any) -> Any:
    return func.replace(func.replace(column, " ", ""), "\u3000", "")


def _conditions(criteria: AuditFilter) -> list[ColumnElement[bool]]:
    users, contracts = _table("staff_users"), _table("contracts")
    conditions: list[ColumnElement[bool]] = []
    if criteria.person:
        pattern = _like(re.sub(r"\s+", "", criteria.person).lower())
        named = select(users.c.id).where(or_(func.lower(_without_spaces(users.c.name)).like(pattern, escape="\\"),
                                             func.lower(users.c.email).like(pattern, escape="\\")))
        by_user: ColumnElement[bool] = AuditEvent.actor_user_id.in_(named)
        # Labels are e-mail addresses (signers, unknown logins): a Japanese name can only match a user, and
        # leaving the label out then lets the index on actor_user_id answer.
        conditions.append(or_(by_user, func.lower(AuditEvent.actor_label).like(pattern, escape="\\"))
                          if criteria.person.isascii() else by_user)
    if criteria.action.startswith("group:"):
        group = criteria.action[6:]
        conditions.append(AuditEvent.action.in_([str(a) for a, label in labels.LABELS.items() if label.group == group]))
    elif criteria.action:
        conditions.append(AuditEvent.action == criteria.action)
    if criteria.contract:
        numbered = select(cast(contracts.c.id, String)).where(
            func.lower(contracts.c.number).like(_like(criteria.contract.lower()), escape="\\"))
        conditions.append(and_(AuditEvent.subject_type == "contracts", AuditEvent.subject_id.in_(numbered)))
    if criteria.department_id is not None:
        members = select(users.c.id).where(users.c.department_id == criteria.department_id)
        owned = select(cast(contracts.c.id, String)).where(contracts.c.department_id == criteria.department_id)
        # The department's people (as they are now: an index answers, a JSON field in every row would not)
        # and its contracts.
        conditions.append(or_(AuditEvent.actor_user_id.in_(members),
                              and_(AuditEvent.subject_type == "contracts", AuditEvent.subject_id.in_(owned))))
    if criteria.period_from:
        conditions.append(AuditEvent.occurred_at >= datetime.combine(criteria.period_from, time(0), tzinfo=JST))
    if criteria.period_to:
        end = datetime.combine(criteria.period_to + timedelta(days=1), time(0), tzinfo=JST)
        conditions.append(AuditEvent.occurred_at < end)
    if criteria.ip:
        conditions.append(_ip_condition(criteria.ip))
    return conditions


def _ip_condition(text: str) -> ColumnElement[bool]:
    if text.endswith(("*", ".", ":")):
        prefix = text.rstrip("*")
        return AuditEvent.ip.like(_like(prefix)[1:], escape="\\")
    try:
        address = str(ipaddress.ip_address(text))
    except ValueError:
        return false()
    return AuditEvent.ip == address


@dataclass(frozen=True)
class EventPage:
    rows: list[EventRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def search_events(session: Session, criteria: AuditFilter, *, per_page: int = PER_PAGE) -> EventPage:
    """One page of events matching every filter, newest first."""
    conditions = _conditions(criteria)
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
    query = select(AuditEvent).where(*conditions)
    if criteria.before is not None:
        query = query.where(AuditEvent.id < criteria.before).order_by(AuditEvent.id.desc())
    elif criteria.after is not None:
        query = query.where(AuditEvent.id > criteria.after).order_by(AuditEvent.id.asc())
    else:
        query = query.order_by(AuditEvent.id.desc()).offset((criteria.page - 1) * per_page)
    events = list(session.scalars(query.limit(per_page)))
    if criteria.after is not None:
        events.reverse()
    return EventPage(describe(session, events), total, criteria.page, per_page)


def iter_events(session: Session, criteria: AuditFilter, *, batch: int = 500) -> Iterator[EventRow]:
    """Every matching event, newest first, read in batches (for the CSV export)."""
    conditions = _conditions(criteria)
    before: int | None = None
    while True:
        query = select(AuditEvent).where(*conditions)
        if before is not None:
            query = query.where(AuditEvent.id < before)
        events = list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(batch)))
        if not events:
            return
        yield from describe(session, events)
        before = events[-1].id
        session.expunge_all()


# ---------------------------------------------------------------- rows in Japanese

ACTOR_TYPES = {"signer": "署名者", "system": "システム", "anonymous": "外部の利用者", "sso": "組織のアカウント"}
SUBJECT_NAMES = {"outbox_messages": "送信メール", "webhook_endpoints": "Webhook の送信先", "api_tokens": "API トークン",
                 "verification_runs": "一括検証", "retention_policies": "保存期間の設定",
                 "webhook_deliveries": "Webhook の送信"}


@dataclass(frozen=True)
class EventRow:
    id: int
    occurred_at: datetime
    actor: str
    role: str
    department: str
    kind: str
    sentence: str
    details: str
    target: str
    ip: str
    user_agent: str
    contract_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def time_jst(self) -> str:
        return jst(self.occurred_at, "%Y-%m-%d %H:%M:%S")


def describe(session: Session, events: Sequence[AuditEvent]) -> list[EventRow]:
    """Each event as a row people read: names instead of ids, a sentence instead of the code."""
    names = _Names(session, events)
    return [_row(event, names) for event in events]


class _Names:
    """Names of the people and objects of a batch of events, read in one query per table."""

    def __init__(self, session: Session, events: Sequence[AuditEvent]) -> None:
        users, departments = _table("staff_users"), _table("departments")
        by_type: dict[str, set[str]] = {}
        for event in events:
            if event.subject_type:
                by_type.setdefault(event.subject_type, set()).add(event.subject_id)
        user_ids = {e.actor_user_id for e in events if e.actor_user_id} | _ints(by_type.get("staff_users", set()))
        self.users: dict[int, Any] = {}
        if user_ids:
            query = (select(users.c.id, users.c.name, users.c.role, departments.c.name.label("department"))
                     .join(departments, departments.c.id == users.c.department_id).where(users.c.id.in_(user_ids)))
            self.users = {row.id: row for row in session.execute(query)}
        self.subjects: dict[tuple[str, str], str] = {}
        self._load(session, by_type, "contracts", "number", "契約 {}")
        self._load(session, by_type, "departments", "name", "所属「{}」")
        self._load(session, by_type, "usage_requests", "receipt_number", "利用申出 {}")
        self._load(session, by_type, "counterparties", "name", "取引先「{}」")
        for user_id, user in self.users.items():
            self.subjects[("staff_users", str(user_id))] = f"{user.name} さん"

    def _load(self, session: Session, by_type: dict[str, set[str]], name: str, column: str, text: str) -> None:
        ids = _ints(by_type.get(name, set()))
        if not ids or name not in Base.metadata.tables:
            return
        table = _table(name)
        for row in session.execute(select(table.c.id, table.c[column]).where(table.c.id.in_(ids))):
            self.subjects[(name, str(row[0]))] = text.format(row[1])


def _ints(values: set[str]) -> set[int]:
    return {int(v) for v in values if v.isascii() and v.isdigit() and len(v) < 19}


def _row(event: AuditEvent, names: _Names) -> EventRow:
    details = event.details if isinstance(event.details, dict) else {}
    user = names.users.get(event.actor_user_id) if event.actor_user_id else None
    actor = _actor_name(event, user)
    role = labels.ROLE_LABELS.get(str(details.get("actor_role") or (user.role if user else "")), "")
    if not role:
        role = ACTOR_TYPES.get(event.actor_type, "")
    department = str(details.get("actor_department") or (user.department if user else ""))
    target = _target(event, names, details)
    contract_id = int(event.subject_id) if event.subject_type == "contracts" and event.subject_id.isdigit() \
        and (event.subject_type, event.subject_id) in names.subjects else None
    return EventRow(
        id=event.id, occurred_at=event.occurred_at, actor=actor, role=role, department=department,
        kind=labels.kind(event.action), sentence=labels.sentence(event.action, actor=actor, target=target),
        details=labels.details_text(details), target=target, ip=event.ip, user_agent=event.user_agent,
        contract_id=contract_id)


def _actor_name(event: AuditEvent, user: Any) -> str:
    if user is not None:
        return str(user.name)
    if event.actor_type == "system":  # "system", or the command that acted, e.g. "flask backup"
        label = event.actor_label
        return f"システム（{label}）" if label and label != "system" else "システム"
    if event.actor_type == "signer":
        return f"署名者 {event.actor_label}".strip()
    if event.actor_type == "anonymous":
        return f"{event.actor_label}（未登録のアドレス）" if event.actor_label else "外部の利用者"
    if event.actor_type == "sso":
        return f"{event.actor_label}（組織のアカウント）"
    return event.actor_label or "不明な利用者"


def _target(event: AuditEvent, names: _Names, details: dict[str, Any]) -> str:
    if not event.subject_type:
        return ""
    known = names.subjects.get((event.subject_type, event.subject_id))
    if known:
        return known
    if event.subject_type == "contracts":
        number = details.get("number")
        return f"契約 {number}" if number else f"契約（番号 {event.subject_id}、削除済み）"
    if event.subject_type == "staff_users":
        return f"職員（番号 {event.subject_id}）"
    if event.subject_type in ("backup", "backup_runs"):  # a backup by its name, or its run with the name
        name = event.subject_id if event.subject_type == "backup" else details.get("name")
        return f"「{name}」" if name else f"（番号 {event.subject_id}）"
    return f"{SUBJECT_NAMES.get(event.subject_type, '記録')}（番号 {event.subject_id}）"
