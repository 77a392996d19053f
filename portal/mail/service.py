"""enqueue() in the caller's transaction; deliver_pending() after commit, with retries and backoff.

An SMTP outage loses nothing: a failed attempt leaves the row pending with a later next_attempt_at.
Any failure of one message (a header that cannot be built, a refused recipient) is that message's
failure: recorded, retried later, finally 「送信失敗」, and the messages behind it are still sent.

The stored copy of a mail never holds a working link: the body people can read has every link token
masked (portal.tokens.mask_tokens); the body as delivered is sealed under the master key until it is
handed to SMTP and then erased.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from flask import current_app, render_template
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, RequestInfo, record
from portal.errors import DomainError, NotFound
from portal.mail.message import OutboxConnection, OutboxMail
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.storage import crypto
from portal.text import single_line
from portal.tokens import first_token_hash, mask_tokens
from portal.urls import external_url

log = logging.getLogger(__name__)
STALE_CLAIM = timedelta(minutes=10)
SEAL_CONTEXT = b"outbox-body:"
_deliver_lock = threading.Lock()


def enqueue(
    session: Session,
    template: str,
    to: str,
    context: dict[str, Any],
    *,
    to_name: str = "",
    now: datetime | None = None,
) -> OutboxMessage:
    """Render mail/<template>/{subject,body}.txt and add it to the outbox in the caller's transaction.

    Links carrying a token are stored masked; the deliverable body is kept sealed until it is sent.
    """
    moment = now or clock.now()
    config = current_app.config
    # A contract's mail links to the help that names its department (/help?department=<code>).
    department_code = getattr(getattr(context.get("contract"), "department", None), "code", None)
    full_context = {
        "agency_name": config["AGENCY_NAME"],
        "service_name": config["SERVICE_NAME"],
        "public_base_url": config["PUBLIC_BASE_URL"],
        "help_url": external_url("home.help", **({"department": department_code} if department_code else {})),
        "contact_phone": config["CONTACT_PHONE"],
        "contact_hours": config["CONTACT_HOURS"],
        "contact_email": config["CONTACT_EMAIL"],
        "contact_form_url": config["CONTACT_FORM_URL"],
        **context,
    }
    subject = render_template(f"mail/{template}/subject.txt", **full_context)
    # Every mail ends with where to get help (困ったときは) and the agency's contact details.
    body = render_template(f"mail/{template}/body.txt", **full_context).rstrip("\n") + "\n"
    body += render_template("mail/_footer.txt", **full_context)
    message_id = make_msgid(domain=sender_domain(config))
    masked = mask_tokens(body)
    message = OutboxMessage(
        template=template,
        recipient=to,
        recipient_name=to_name,
        subject=mask_tokens(single_line(subject)),
        body=masked,
        body_sealed=_seal(body, message_id) if masked != body else None,
        message_id=message_id,
        link_token_hash=first_token_hash(body),
        status=OutboxStatus.PENDING if config["MAIL_SERVER"] else OutboxStatus.HELD,
        created_at=moment,
        next_attempt_at=moment,
    )
    session.add(message)
    session.flush()
    return message


def deliverable_body(message: OutboxMessage) -> str:
    """The body as it is handed to SMTP, working links included. Only the deliverer calls this."""
    if message.body_sealed is None:
        return message.body
    key = crypto.master_key_from_hex(current_app.config["MASTER_KEY"])
    sealed = bytes.fromhex(message.body_sealed)
    return crypto.open_sealed(key, sealed, SEAL_CONTEXT + message.message_id.encode()).decode()


def view_message(session: Session, message_id: int, *, viewer: Any, now: datetime,
                 request: RequestInfo) -> OutboxMessage:
    """Load a stored mail for the 送信メール page and log who opened it. Raises NotFound."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound("メールが見つかりません。")
    record(session, actor=Actor.staff(viewer), action=AuditAction.MAIL_VIEWED, subject=message, now=now,
           ip=request.ip, user_agent=request.user_agent, template=message.template, recipient=message.recipient)
    return message


def record_list_viewed(session: Session, *, viewer: Any, now: datetime, request: RequestInfo, count: int) -> None:
    """Log who opened the 送信メール list (recipients and subjects of the latest mails)."""
    record(session, actor=Actor.staff(viewer), action=AuditAction.MAIL_LIST_VIEWED, now=now, ip=request.ip,
           user_agent=request.user_agent, count=count)


class MailNotConfigured(DomainError):
    """Held mails cannot be sent while no SMTP server is configured."""

    status_code = 409


NOT_CONFIGURED = ("SMTPサーバーが設定されていないため送信できません。"
                  "SMTPサーバー（PORTAL_MAIL_SERVER）を設定してから送信してください。")


def send_held(session: Session, *, actor: Any, now: datetime, request: RequestInfo,
              message_id: int | None = None) -> int:
    """Hand held mails (made before SMTP was configured) to the deliverer: the one `message_id`, or all.

    Returns how many changed hands: 0 when there was nothing held, e.g. because the same button was
    pressed twice at once and the other press got there first (one conditional UPDATE decides).
    Each released mail gets an audit event. Raises MailNotConfigured while MAIL_SERVER is empty and
    NotFound for an unknown message.
    """
    if not current_app.config["MAIL_SERVER"]:
        raise MailNotConfigured(NOT_CONFIGURED)
    held = OutboxMessage.status == OutboxStatus.HELD
    if message_id is not None:
        if session.get(OutboxMessage, message_id) is None:
            raise NotFound("メールが見つかりません。")
        held = held & (OutboxMessage.id == message_id)
    released = session.execute(
        update(OutboxMessage).where(held).values(status=OutboxStatus.PENDING, next_attempt_at=now)
        .returning(OutboxMessage.id, OutboxMessage.template, OutboxMessage.recipient)
    ).all()
    for row in released:
        record(session, actor=Actor.staff(actor), action=AuditAction.MAIL_HELD_SENT, now=now, ip=request.ip,
               user_agent=request.user_agent, subject=(OutboxMessage.__tablename__, row.id),
               template=row.template, recipient=row.recipient, all_held=message_id is None)
    session.expire_all()
    return len(released)


def withdraw_link_mails(session: Session, token_hash: str, *, now: datetime, why: str) -> int:
    """Withdraw the mails not yet sent (held or waiting) whose link is the token `token_hash` names.

    Called where a signing link stops working (a newer link was sent, the contract closed), so that an
    administrator releasing held mails, or the deliverer after an SMTP outage, never hands a vendor a
    link that only says it was replaced. One conditional UPDATE: a mail the deliverer already claimed
    is delivered as it is. Each withdrawn mail gets an audit event. Returns how many were withdrawn.
    """
    if not token_hash:
        return 0
    withdrawn = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.link_token_hash == token_hash,
               OutboxMessage.status.in_([OutboxStatus.HELD, OutboxStatus.PENDING]))
        .values(status=OutboxStatus.WITHDRAWN, body_sealed=None, last_error=why[:4000])
        .returning(OutboxMessage.id, OutboxMessage.template, OutboxMessage.recipient)
    ).all()
    for row in withdrawn:
        record(session, actor=SYSTEM, action=AuditAction.MAIL_WITHDRAWN, now=now,
               subject=(OutboxMessage.__tablename__, row.id), template=row.template, recipient=row.recipient,
               why=why)
    return len(withdrawn)


def readable_body(message: OutboxMessage) -> str:
    """The stored body with link tokens masked, also for rows queued before bodies were stored masked."""
    return mask_tokens(message.body)


def _seal(body: str, message_id: str) -> str:
    key = crypto.master_key_from_hex(current_app.config["MASTER_KEY"])
    return crypto.seal(key, body.encode(), SEAL_CONTEXT + message_id.encode()).hex()


def sender_domain(config: Any) -> str:
    """The domain of the From address: Message-IDs are made in it (RFC 5322 §3.6.4)."""
    sender = config["MAIL_DEFAULT_SENDER"]
    address = sender[1] if isinstance(sender, tuple | list) else parseaddr(str(sender))[1]
    return (address or config["MAIL_FROM_ADDRESS"]).rpartition("@")[2] or "localhost"


def deliver_pending(now: datetime | None = None, limit: int = 50) -> int:
    """Send due outbox messages with their own database session; return how many were sent.

    Safe to call from several threads or processes: each message is claimed before sending.
    """
    if not current_app.config["MAIL_SERVER"]:
        return 0
    factory: sessionmaker[Session] = current_app.extensions["portal.session_factory"]
    with _deliver_lock:
        claimed = _claim_due(factory, now or clock.now(), limit)
        if not claimed:
            return 0
        return _send_claimed(factory, claimed)


def _claim_due(factory: sessionmaker[Session], now: datetime, limit: int) -> list[int]:
    with factory() as session, session.begin():
        due = (
            select(OutboxMessage.id)
            .where(
                or_(
                    (OutboxMessage.status == OutboxStatus.PENDING) & (OutboxMessage.next_attempt_at <= now),
                    (OutboxMessage.status == OutboxStatus.SENDING)
                    & (OutboxMessage.claimed_at < now - STALE_CLAIM),
                )
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(session.scalars(due))
        if ids:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(status=OutboxStatus.SENDING, claimed_at=now)
            )
    return ids


def _send_claimed(factory: sessionmaker[Session], ids: list[int]) -> int:
    config = current_app.config
    sent = 0
    with factory() as session:
        messages = list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))
                                        .order_by(OutboxMessage.id)))
        connection = OutboxConnection.from_config(config)
        try:
            connection.open()
        except Exception as exc:  # whatever the reason, these messages wait for the next attempt
            for message in messages:
                _record_failure(message, exc, config)
            session.commit()
            return 0
        try:
            for position, message in enumerate(messages):
                try:
                    connection.send(build(message, config, now=clock.now()))
                except Exception as exc:  # one message's failure never blocks the others
                    _record_failure(message, exc, config)
                    if not connection.recover():
                        for waiting in messages[position + 1:]:
                            _record_failure(waiting, exc, config)
                        session.commit()
                        break
                else:
                    _record_sent(message)
                    sent += 1
                session.commit()
        finally:
            connection.close()
    return sent


def _record_sent(message: OutboxMessage) -> None:
    message.status = OutboxStatus.SENT
    message.sent_at = clock.now()
    message.attempts += 1
    message.last_error = ""
    message.body_sealed = None  # handed to SMTP: the working links are no longer kept
    message.body = mask_tokens(message.body)  # rows queued before links were masked


def _record_failure(message: OutboxMessage, exc: Exception, config: Any) -> None:
    message.attempts += 1
    message.last_error = single_line(f"{type(exc).__name__}: {exc}")[:2000]
    log.warning("outbox message %s not delivered (attempt %s): %s", message.id, message.attempts,
                type(exc).__name__)
    if message.attempts >= config["MAIL_MAX_ATTEMPTS"]:
        message.status = OutboxStatus.FAILED
        message.body_sealed = None  # never delivered: nobody will need its links
        return
    delay = config["MAIL_RETRY_BASE_SECONDS"] * 2 ** (message.attempts - 1)
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = clock.now() + timedelta(seconds=min(delay, 6 * 3600))


def build(message: OutboxMessage, config: Any, *, now: datetime) -> OutboxMail:
    """The flask-mail Message for an outbox row; names and subject flattened to one line each."""
    name = single_line(message.recipient_name)
    recipient: str | tuple[str, str] = (name, message.recipient) if name else message.recipient
    mail = OutboxMail(
        subject=single_line(message.subject),
        recipients=[recipient],
        body=deliverable_body(message),
        sender=config["MAIL_DEFAULT_SENDER"],
        charset="utf-8",
        extra_headers={
            "Auto-Submitted": "auto-generated",  # RFC 3834: no vacation replies, no auto-forward loops
            "X-Portal-Outbox-Id": str(message.id),
        },
    )
    mail.msgId = message.message_id or make_msgid(domain=sender_domain(config))
    mail.date_header = format_datetime(now.astimezone(clock.JST))
    return mail

