"""Create and look up counterparties; a new signing authority retires the previous one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.counterparties.models import Counterparty, SigningAuthority
from portal.counterparties.normalize import normalize_name


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
