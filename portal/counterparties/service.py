"""Create and look up counterparties; a new signing authority retires the previous one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.auth.models import StaffUser
from portal.counterparties.models import Counterparty, SigningAuthority
from portal.counterparties.normalize import normalize_name
from portal.errors import DomainError, NotFound
from portal.text import CONTROL_CHARACTERS_MESSAGE, has_control_characters


def find_by_name(session: Session, name: str) -> Counterparty | None:
    return session.scalar(select(Counterparty).where(Counterparty.name_normalized == normalize_name(name)))


def upsert_counterparty(session: Session, *, name: str, now: datetime, **fields: str) -> Counterparty:
    """Find the counterparty by its normalised name, or create it; update the given fields."""
    counterparty = find_by_name(session, name)
    if counterparty is None:
        counterparty = Counterparty(name=name.strip(), name_normalized=normalize_name(name), created_at=now,
                                    updated_at=now)
        session.add(counterparty)
    for key, value in fields.items():
        setattr(counterparty, key, value)
    counterparty.updated_at = now
    session.flush()
    return counterparty


def set_signing_authority(session: Session, counterparty: Counterparty, *, title: str, name: str, email: str,
                          source: str, now: datetime) -> SigningAuthority:
    """Make this person the current authority; an identical current one is kept as is."""
    current = counterparty.current_authority
    if current and (current.title, current.name, current.email.lower()) == (title, name, email.lower()):
        return current
    if current:
        current.retired_at = now
    authority = SigningAuthority(counterparty=counterparty, title=title, name=name, email=email, source=source,
                                 created_at=now)
    session.add(authority)
    session.flush()
    return authority


def search(session: Session, text: str, limit: int = 20) -> list[Counterparty]:
    """Partial match on the normalised name, for pickers."""
    needle = normalize_name(text)
    query = select(Counterparty).where(Counterparty.name_normalized.contains(needle, autoescape=True))
    return list(session.scalars(query.order_by(Counterparty.name).limit(limit)))


# ---------------------------------------------------------------- staff pages and 電子契約を希望しない

REASON_LIMIT = 500


class AlreadyChanged(DomainError):
    """Someone else recorded (or withdrew) the wish first, or the page was stale."""

    status_code = 409


class InvalidReason(DomainError):
    pass


def get(session: Session, counterparty_id: int) -> Counterparty:
    """Raises NotFound."""
    counterparty = session.get(Counterparty, counterparty_id)
    if counterparty is None:
        raise NotFound("取引先が見つかりません。")
    return counterparty


def list_for_staff(session: Session, text: str = "", limit: int = 200) -> list[Counterparty]:
    """All counterparties (agency-wide registry), or those whose normalised name contains `text`."""
    query = select(Counterparty)
    needle = normalize_name(text)
    if needle:
        query = query.where(Counterparty.name_normalized.contains(needle, autoescape=True))
    return list(session.scalars(query.order_by(Counterparty.name_normalized, Counterparty.id).limit(limit)))


def checked_reason(reason: str, *, what: str) -> str:
    """The reason, stripped; raises InvalidReason if empty, too long or with line breaks/control characters."""
    text = (reason or "").strip()
    if not text:
        raise InvalidReason(f"{what}を入力してください。")
    if len(text) > REASON_LIMIT:
        raise InvalidReason(f"{what}は{REASON_LIMIT}文字以内で入力してください。")
    if has_control_characters(text):
        raise InvalidReason(f"{what}に{CONTROL_CHARACTERS_MESSAGE}")
    return text


def record_declined(session: Session, counterparty: Counterparty, reason: str, *, actor: StaffUser,
                    now: datetime, request: RequestInfo) -> Counterparty:
    """Record that the vendor does not want e-contracts (電子契約を希望しない): new contracts go on paper.

    One conditional UPDATE decides between concurrent clicks. Raises InvalidReason, AlreadyChanged.
    """
    text = checked_reason(reason, what="電子契約を希望しない理由")
    changed = session.execute(
        update(Counterparty)
        .where(Counterparty.id == counterparty.id, Counterparty.declined_e_contract.is_(False))
        .values(declined_e_contract=True, declined_at=now, declined_by_id=actor.id, declined_reason=text,
                updated_at=now)
        .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    session.expire(counterparty)
    if not changed:
        raise AlreadyChanged("この取引先は、すでに「電子契約を希望しない」と記録されています。"
                             "画面を再読み込みしてください。")
    record(session, actor=Actor.staff(actor), action=AuditAction.COUNTERPARTY_DECLINED_E_CONTRACT,
           subject=counterparty, ip=request.ip, user_agent=request.user_agent, now=now, reason=text,
           name=counterparty.name)
    return counterparty


def withdraw_declined(session: Session, counterparty: Counterparty, reason: str, *, actor: StaffUser,
                      now: datetime, request: RequestInfo) -> Counterparty:
    """Undo 電子契約を希望しない (the vendor now agrees); the earlier reason stays in the log.

    Raises InvalidReason, AlreadyChanged.
    """
    text = checked_reason(reason, what="取り消す理由")
    previous = counterparty.declined_reason
    changed = session.execute(
        update(Counterparty)
        .where(Counterparty.id == counterparty.id, Counterparty.declined_e_contract.is_(True))
        .values(declined_e_contract=False, declined_at=None, declined_by_id=None, declined_reason="",
                updated_at=now)
        .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    session.expire(counterparty)
    if not changed:
        raise AlreadyChanged("この取引先には「電子契約を希望しない」の記録がありません。画面を再読み込みしてください。")
    record(session, actor=Actor.staff(actor), action=AuditAction.COUNTERPARTY_DECLINE_WITHDRAWN,
           subject=counterparty, ip=request.ip, user_agent=request.user_agent, now=now, reason=text,
           previous_reason=previous, name=counterparty.name)
    return counterparty
