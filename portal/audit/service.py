"""record() is the only way to write the operation log; there is no update API, and events are deleted
only with their contract after its retention period, leaving a tombstone event (chain.delete_for_retention)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit import chain  # noqa: F401  (its listeners chain the events when a transaction commits)
from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who acted: a staff user, an external signer (by e-mail), the system or an anonymous visitor."""

    type: str
    label: str = ""
    user_id: int | None = None
    # A staff member's role and department at the time of the act (kept in the event's details).
    role: str = ""
    department: str = ""
    department_id: int | None = None

    @classmethod
    def staff(cls, user: Any) -> Actor:
        department = getattr(user, "department", None)
        return cls("staff", user.email, user.id, role=str(getattr(user, "role", "") or ""),
                   department=getattr(department, "name", "") or "", department_id=getattr(department, "id", None))

    def as_details(self) -> dict[str, Any]:
        """The actor's role and department as the event's details hold them (nothing for non-staff)."""
        if not self.role and self.department_id is None:
            return {}
        return {"actor_role": self.role, "actor_department": self.department,
                "actor_department_id": self.department_id}

    @classmethod
    def signer(cls, email: str) -> Actor:
        return cls("signer", email)


@dataclass(frozen=True)
class RequestInfo:
    """Where an action came from, as the audit log records it."""

    ip: str = ""
    user_agent: str = ""


SYSTEM = Actor("system", "system")
ANONYMOUS = Actor("anonymous")


def record(
    session: Session,
    *,
    actor: Actor,
    action: AuditAction | str,
    subject: Any = None,
    ip: str = "",
    user_agent: str = "",
    now: datetime | None = None,
    **details: Any,
) -> AuditEvent:
    """Add an audit row to the session's transaction, so it commits or rolls back with the change.

    When the transaction commits, the row gets its place in the hash chain (portal.audit.chain).
    """
    subject_type, subject_id = _describe(subject)
    if not ip and not user_agent:
        ip, user_agent = _current_request()
    event = AuditEvent(
        occurred_at=now or clock.now(),
        action=str(action),
        actor_type=actor.type,
        actor_user_id=actor.user_id,
        actor_label=actor.label[:254],
        subject_type=subject_type,
        subject_id=subject_id,
        ip=ip[:64],
        user_agent=user_agent[:1000],
        details={**actor.as_details(), **details},
    )
    session.add(event)
    return event


def client_ip(remote_addr: str | None) -> str:
    """The client's address as people write it: IPv4 seen through a dual-stack socket (::ffff:10.0.0.1) as IPv4."""
    try:
        address = ipaddress.ip_address((remote_addr or "").split("%", 1)[0])
    except ValueError:
        return remote_addr or ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def request_info() -> RequestInfo:
    """IP and user agent of the current request for the audit log (ProxyFix sets remote_addr)."""
    from flask import request

    return RequestInfo(ip=client_ip(request.remote_addr), user_agent=request.user_agent.string[:1000])


def _current_request() -> tuple[str, str]:
    """Where the HTTP request being served comes from, for an event whose caller passed neither IP nor
    user agent: no event written while serving a request lacks them (jobs and the CLI have none)."""
    from flask import has_request_context

    if not has_request_context():
        return "", ""
    info = request_info()
    return info.ip, info.user_agent


def events_for(session: Session, subject: Any) -> list[AuditEvent]:
    subject_type, subject_id = _describe(subject)
    query = (
        select(AuditEvent)
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == subject_id)
        .order_by(AuditEvent.id)
    )
    return list(session.scalars(query))


def _describe(subject: Any) -> tuple[str, str]:
    if subject is None:
        return "", ""
    if isinstance(subject, tuple):
        return str(subject[0]), str(subject[1])
    return getattr(subject, "__tablename__", type(subject).__name__), str(getattr(subject, "id", ""))
