"""Webhook endpoints, events and their delivery.

enqueue_event() writes the event and one delivery per subscribed endpoint in the caller's
transaction (as the mail outbox does), so an event exists exactly when its change committed.
deliver_due() runs in the worker: each delivery is claimed with a conditional UPDATE (two workers
never both send it), POSTed with an HMAC-SHA256 signature, and retried with exponential backoff
until WEBHOOK_GIVE_UP_HOURS after the event, when it is marked failed for the admins' page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, record
from portal.clock import JST
from portal.errors import DomainError, NotFound
from portal.storage import crypto
from portal.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)

log = logging.getLogger(__name__)
SECRET_CONTEXT = b"webhook-secret"
SIGNATURE_HEADER = "X-Keiyaku-Signature"
TIMESTAMP_HEADER = "X-Keiyaku-Timestamp"
MAX_URL = 2000
MAX_DESCRIPTION = 200
USER_AGENT = "keiyaku-portal-webhook/1"


class InvalidEndpoint(DomainError):
    pass


# ---------------------------------------------------------------- what the payload reads (no imports of
# the feature packages that call enqueue_event: they depend on webhooks, not the other way round)


class _Document(Protocol):
    position: int
    filename: str

    @property
    def current(self) -> Any: ...


class _Contract(Protocol):
    id: int
    number: str
    business_name: str
    status: Any
    documents: Any
    department: Any


# ---------------------------------------------------------------- endpoints


def _check_url(url: str) -> str:
    url = url.strip()
    if not url:
        raise InvalidEndpoint("送信先 URL を入力してください。")
    if len(url) > MAX_URL:
        raise InvalidEndpoint(f"送信先 URL は{MAX_URL}文字以内で入力してください。")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise InvalidEndpoint("送信先 URL に空白や制御文字は使えません。")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidEndpoint("送信先 URL は http:// または https:// で始めてください。")
    if not parts.hostname:
        raise InvalidEndpoint("送信先 URL にホスト名がありません。")
    if parts.username or parts.password:
        raise InvalidEndpoint("送信先 URL に利用者名やパスワードは含めないでください（署名で認証します）。")
    try:
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        raise InvalidEndpoint("送信先 URL のポート番号が正しくありません。") from None
    return url


def _check_events(events: Iterable[str]) -> list[str]:
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in WebhookEventType._value2member_map_]
    if unknown:
        raise InvalidEndpoint(f"不明なイベントです: {', '.join(unknown)[:200]}")
    if not chosen:
        raise InvalidEndpoint("送信するイベントを一つ以上選んでください。")
    return chosen


def _check_description(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidEndpoint(f"説明は{MAX_DESCRIPTION}文字以内で入力してください。")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidEndpoint("説明に制御文字は使えません。")
    return text


def _check_secret(secret: str) -> str:
    if not 16 <= len(secret) <= 200 or not all(33 <= ord(c) <= 126 for c in secret):
        raise InvalidEndpoint("シークレットは16〜200文字の英数字・記号（空白なし）で指定してください。")
    return secret


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _seal(secret: str) -> str:
    key = crypto.master_key_from_hex(current_app.config["MASTER_KEY"])
    return crypto.seal(key, secret.encode(), SECRET_CONTEXT).hex()


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    key = crypto.master_key_from_hex(current_app.config["MASTER_KEY"])
    return crypto.open_sealed(key, bytes.fromhex(endpoint.secret_sealed), SECRET_CONTEXT).decode()


def _actor(user: Any) -> Actor:
    return Actor.staff(user) if user is not None else SYSTEM


def create_endpoint(session: Session, *, url: str, events: Iterable[str], description: str = "",
                    secret: str = "", actor: Any, now: datetime) -> tuple[WebhookEndpoint, str]:
    """Returns (endpoint, secret); the secret is shown to the admin once. Raises InvalidEndpoint."""
    url, chosen, description = _check_url(url), _check_events(events), _check_description(description)
    secret = _check_secret(secret) if secret else new_secret()
    endpoint = WebhookEndpoint(url=url, events=chosen, description=description, secret_sealed=_seal(secret),
                               is_active=True, created_at=now, updated_at=now,
                               created_by_id=actor.id if actor is not None else None)
    session.add(endpoint)
    session.flush()
    record(session, actor=_actor(actor), action=AuditAction.WEBHOOK_ENDPOINT_CREATED, subject=endpoint, now=now,
           url=url, events=chosen)
    return endpoint, secret


def update_endpoint(session: Session, endpoint: WebhookEndpoint, *, url: str, events: Iterable[str],
                    description: str, is_active: bool, actor: Any, now: datetime) -> None:
    endpoint.url, endpoint.events = _check_url(url), _check_events(events)
    endpoint.description, endpoint.is_active, endpoint.updated_at = _check_description(description), is_active, now
    record(session, actor=_actor(actor), action=AuditAction.WEBHOOK_ENDPOINT_UPDATED, subject=endpoint, now=now,
           url=endpoint.url, events=endpoint.events, active=is_active)


def rotate_secret(session: Session, endpoint: WebhookEndpoint, *, actor: Any, now: datetime) -> str:
    secret = new_secret()
    endpoint.secret_sealed, endpoint.updated_at = _seal(secret), now
    record(session, actor=_actor(actor), action=AuditAction.WEBHOOK_ENDPOINT_UPDATED, subject=endpoint, now=now,
           change="secret-rotated")
    return secret


def delete_endpoint(session: Session, endpoint: WebhookEndpoint, *, actor: Any, now: datetime) -> None:
    record(session, actor=_actor(actor), action=AuditAction.WEBHOOK_ENDPOINT_DELETED, subject=endpoint, now=now,
           url=endpoint.url)
    session.delete(endpoint)


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("Webhook の送信先が見つかりません。")
    return endpoint


def list_endpoints(session: Session) -> list[tuple[WebhookEndpoint, dict[DeliveryStatus, int]]]:
    """Each endpoint with its delivery counts by status."""
    endpoints = list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))
    counts: dict[int, dict[DeliveryStatus, int]] = {e.id: dict.fromkeys(DeliveryStatus, 0) for e in endpoints}
    rows = session.execute(select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count())
                           .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.status)).tuples()
    for endpoint_id, status, count in rows:
        counts.setdefault(endpoint_id, dict.fromkeys(DeliveryStatus, 0))[status] = count
    return [(e, counts[e.id]) for e in endpoints]


def recent_deliveries(session: Session, endpoint: WebhookEndpoint | None = None, *,
                      status: DeliveryStatus | None = None, limit: int = 100) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if endpoint is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return list(session.scalars(query))


def retry_delivery(session: Session, delivery_id: int, *, actor: Any, now: datetime) -> WebhookDelivery:
    """An admin asks for one more attempt of a failed delivery (after the receiver was repaired)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound("配信記録が見つかりません。")
    if not delivery.status.can_retry:
        raise DomainError("失敗した配信だけを再送できます。")
    delivery.status, delivery.next_attempt_at = DeliveryStatus.PENDING, now
    record(session, actor=_actor(actor), action=AuditAction.WEBHOOK_DELIVERY_RETRIED, subject=delivery.endpoint,
           now=now, delivery_id=delivery.id, event_id=delivery.event.event_id)
    return delivery


# ---------------------------------------------------------------- events


def contract_payload(contract: _Contract, party: Any = None) -> dict[str, Any]:
    """What receivers learn about a contract: identifiers, status and the documents' SHA-256 — never a
    signing or download link, a token or a signer's contact details."""
    data: dict[str, Any] = {"contract": {
        "id": contract.id, "number": contract.number, "business_name": contract.business_name,
        "department": contract.department.code, "status": str(getattr(contract.status, "value", contract.status)),
        "documents": [{"n": d.position, "filename": d.filename, "sha256": d.current.sha256}
                      for d in contract.documents],
    }}
    if party is not None:
        data["party"] = {"position": party.position, "role": str(getattr(party.role, "value", party.role)),
                         "signed_at": party.signed_at.astimezone(JST).isoformat() if party.signed_at else None}
    return data


def usage_request_payload(usage_request: Any) -> dict[str, Any]:
    return {"usage_request": {
        "id": usage_request.id, "receipt_number": usage_request.receipt_number,
        "company_name": usage_request.company_name,
        "status": str(getattr(usage_request.status, "value", usage_request.status)),
        "department": usage_request.department.code if getattr(usage_request, "department", None) else None,
        "confirmed_at": usage_request.confirmed_at.astimezone(JST).isoformat()
        if getattr(usage_request, "confirmed_at", None) else None,
    }}


def enqueue_event(session: Session, event: WebhookEventType | str,
                  subject: Mapping[str, Any] | Any, *, now: datetime, party: Any = None) -> WebhookEvent | None:
    """Write `event` in the caller's transaction with one delivery per active endpoint that wants it.

    `subject` is a contract (payload built by contract_payload, with `party` for contract.signed), a
    usage request, or a ready payload mapping. Returns None (nothing written) when no endpoint wants it.
    """
    event_type = WebhookEventType(event)
    endpoints = [e for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.is_active))
                 if e.wants(event_type)]
    if not endpoints:
        return None
    if isinstance(subject, Mapping):
        payload = dict(subject)
    elif event_type is WebhookEventType.USAGE_REQUEST_CONFIRMED:
        payload = usage_request_payload(subject)
    else:
        payload = contract_payload(subject, party)
    row = WebhookEvent(event_id=str(uuid.uuid4()), type=event_type, payload=payload, occurred_at=now)
    session.add(row)
    session.flush()
    for endpoint in endpoints:
        session.add(WebhookDelivery(event_id=row.id, endpoint_id=endpoint.id, status=DeliveryStatus.PENDING,
                                    attempts=0, created_at=now, next_attempt_at=now, last_error=""))
    session.flush()
    return row


def event_body(event: WebhookEvent) -> bytes:
    """The exact bytes POSTed (and signed) for an event."""
    body = {"id": event.event_id, "type": event.type.value,
            "occurred_at": event.occurred_at.astimezone(JST).isoformat(), "data": event.payload}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """X-Keiyaku-Signature: "sha256=" + hex HMAC-SHA256(secret, "<timestamp>." + body)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# ---------------------------------------------------------------- delivery


def _stale_after() -> timedelta:
    return timedelta(seconds=max(600, 3 * int(current_app.config["WEBHOOK_TIMEOUT_SECONDS"])))


def _due(now: datetime) -> Any:
    return or_((WebhookDelivery.status == DeliveryStatus.PENDING) & (WebhookDelivery.next_attempt_at <= now),
               (WebhookDelivery.status == DeliveryStatus.SENDING)
               & (WebhookDelivery.claimed_at < now - _stale_after()))


def claim(session: Session, delivery_id: int, *, now: datetime) -> bool:
    """Take one due delivery for this worker; False if another worker has it or it is no longer due.

    A single conditional UPDATE: of two workers racing for the row, exactly one sees rowcount 1.
    """
    result = session.execute(update(WebhookDelivery)
                             .where(WebhookDelivery.id == delivery_id, _due(now))
                             .values(status=DeliveryStatus.SENDING, claimed_at=now,
                                     attempts=WebhookDelivery.attempts + 1)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


def deliver_due(session: Session, *, now: datetime | None = None, limit: int = 20) -> int:
    """Deliver what is due (run by the worker); returns how many the receivers accepted.

    No transaction stays open during an HTTP call: claim (commit), read, POST, record (commit).
    """
    moment = now or clock.now()
    ids = list(session.scalars(
        select(WebhookDelivery.id).join(WebhookEndpoint)
        .where(_due(moment), WebhookEndpoint.is_active).order_by(WebhookDelivery.id).limit(limit)))
    session.commit()
    delivered = 0
    for delivery_id in ids:
        if not claim(session, delivery_id, now=moment):
            session.rollback()
            continue
        session.commit()
        delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
        assert delivery is not None
        request = _request(delivery)
        attempts, occurred_at, claimed_at = delivery.attempts, delivery.event.occurred_at, delivery.claimed_at
        session.commit()  # end the read before the network call (SQLite: the next write starts fresh)
        status, error = _post(request)
        values = _outcome(status, error, attempts=attempts, occurred_at=occurred_at)
        # Conditional: if this claim went stale and another worker took the row, its outcome stands.
        session.execute(update(WebhookDelivery)
                        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.claimed_at == claimed_at,
                               WebhookDelivery.status == DeliveryStatus.SENDING)
                        .values(**values).execution_options(synchronize_session=False))
        session.commit()
        delivered += values["status"] is DeliveryStatus.DELIVERED
        if values["status"] is DeliveryStatus.FAILED:
            log.warning("webhook delivery %s to %s given up: %s", delivery_id, request.full_url, values["last_error"])
    return delivered


def _request(delivery: WebhookDelivery) -> urllib.request.Request:
    endpoint, event = delivery.endpoint, delivery.event
    body = event_body(event)
    timestamp = int(clock.now().timestamp())
    return urllib.request.Request(endpoint.url, data=body, method="POST", headers={  # noqa: S310  (http/https only)
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Keiyaku-Event": event.type.value,
        "X-Keiyaku-Event-Id": event.event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(endpoint_secret(endpoint), timestamp, body),
    })


def _post(request: urllib.request.Request) -> tuple[int | None, str]:
    """(HTTP status or None, error text)."""
    try:
        with _OPENER.open(request, timeout=float(current_app.config["WEBHOOK_TIMEOUT_SECONDS"])) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except Exception as exc:  # any failure of one delivery is that delivery's, never the worker's
        return None, f"{type(exc).__name__}: {exc}"[:2000]


def _outcome(status: int | None, error: str, *, attempts: int, occurred_at: datetime) -> dict[str, Any]:
    config = current_app.config
    finished = clock.now()
    if status is not None and 200 <= status < 300:
        return {"status": DeliveryStatus.DELIVERED, "delivered_at": finished, "last_status_code": status,
                "last_error": ""}
    give_up_at = occurred_at + timedelta(hours=float(config["WEBHOOK_GIVE_UP_HOURS"]))
    delay = min(float(config["WEBHOOK_RETRY_BASE_SECONDS"]) * 2 ** (attempts - 1),
                float(config["WEBHOOK_RETRY_MAX_SECONDS"]))
    next_attempt = finished + timedelta(seconds=delay)
    values: dict[str, Any] = {"last_status_code": status, "last_error": error or f"HTTP {status}"}
    if next_attempt > give_up_at:
        return {**values, "status": DeliveryStatus.FAILED}
    return {**values, "status": DeliveryStatus.PENDING, "next_attempt_at": next_attempt}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A receiver answers itself: a redirect is a failed attempt, never followed to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)
