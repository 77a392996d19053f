"""enqueue() in the caller's transaction; deliver_pending() after commit, with retries and backoff.

An SMTP outage loses nothing: a failed attempt leaves the row pending with a later next_attempt_at.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import threading
from datetime import datetime, timedelta
from email.headerregistry import Address
from typing import Any

from flask import current_app, render_template
from flask_mail import Message, sanitize_address
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.urls import external_url

log = logging.getLogger(__name__)
STALE_CLAIM = timedelta(minutes=10)
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
    """Render mail/<template>/{subject,body}.txt and add it to the outbox in the caller's transaction."""
    moment = now or clock.now()
    config = current_app.config
    full_context = {
        "agency_name": config["AGENCY_NAME"],
        "service_name": config["SERVICE_NAME"],
        "public_base_url": config["PUBLIC_BASE_URL"],
        "help_url": external_url("home.help"),
        "contact_phone": config["CONTACT_PHONE"],
        "contact_hours": config["CONTACT_HOURS"],
        "contact_email": config["CONTACT_EMAIL"],
        "contact_form_url": config["CONTACT_FORM_URL"],
        **context,
    }
    subject = render_template(f"mail/{template}/subject.txt", **full_context).strip()
    # Every mail ends with where to get help (困ったときは) and the agency's contact details.
    body = render_template(f"mail/{template}/body.txt", **full_context).rstrip("\n") + "\n"
    body += render_template("mail/_footer.txt", **full_context)
    message = OutboxMessage(
        template=template,
        recipient=to,
        recipient_name=to_name,
        subject=" ".join(subject.split()),
        body=body,
        status=OutboxStatus.PENDING if config["MAIL_SERVER"] else OutboxStatus.HELD,
        created_at=moment,
        next_attempt_at=moment,
    )
    session.add(message)
    session.flush()
    return message


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
        messages = list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))
        try:
            smtp = _open_smtp(config)
        except (OSError, smtplib.SMTPException) as exc:
            for message in messages:
                _record_failure(message, exc, config)
            session.commit()
            return 0
        try:
            for message in messages:
                try:
                    mail = _build(message, config)
                    smtp.sendmail(sanitize_address(mail.sender), [sanitize_address(a) for a in mail.send_to],
                                  mail.as_bytes())
                except (OSError, smtplib.SMTPException) as exc:
                    _record_failure(message, exc, config)
                else:
                    message.status = OutboxStatus.SENT
                    message.sent_at = clock.now()
                    message.attempts += 1
                    sent += 1
                session.commit()
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                log.warning("SMTP connection did not close cleanly")
    return sent


def _open_smtp(config: Any) -> smtplib.SMTP:
    """flask-mail builds the message; the connection is ours so that it has a timeout."""
    host, port, timeout = config["MAIL_SERVER"], int(config["MAIL_PORT"]), config["MAIL_TIMEOUT"]
    smtp_class = smtplib.SMTP_SSL if config["MAIL_USE_SSL"] else smtplib.SMTP
    smtp = smtp_class(host, port, timeout=timeout)
    if config["MAIL_USE_TLS"]:
        smtp.starttls()
    if config["MAIL_USERNAME"] and config["MAIL_PASSWORD"]:
        smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
    return smtp


def _record_failure(message: OutboxMessage, exc: Exception, config: Any) -> None:
    message.attempts += 1
    message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if message.attempts >= config["MAIL_MAX_ATTEMPTS"]:
        message.status = OutboxStatus.FAILED
        return
    delay = config["MAIL_RETRY_BASE_SECONDS"] * 2 ** (message.attempts - 1)
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = clock.now() + timedelta(seconds=min(delay, 6 * 3600))


def _build(message: OutboxMessage, config: Any) -> Message:
    recipient = message.recipient
    if message.recipient_name:
        recipient = str(Address(display_name=message.recipient_name, addr_spec=message.recipient))
    mail = Message(
        subject=message.subject,
        recipients=[recipient],
        body=message.body,
        sender=config["MAIL_DEFAULT_SENDER"],
        charset="utf-8",
    )
    mail.extra_headers = {"X-Portal-Outbox-Id": str(message.id)}
    return mail


def retry_now(session: Session, message: OutboxMessage, now: datetime) -> None:
    """Put a failed message back in the queue (admin action)."""
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = now


def smtp_reachable(timeout: float = 2.0) -> bool:
    config = current_app.config
    try:
        with socket.create_connection((config["MAIL_SERVER"], int(config["MAIL_PORT"])), timeout=timeout):
            return True
    except OSError:
        return False
