"""Webhook endpoints registered by admins, the events written with each change, one delivery per pair."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, str_enum_type
from portal.types import UTCDateTime, intpk, utc_datetime


class WebhookEventType(StrEnum):
    CONTRACT_SENT = "contract.sent"
    CONTRACT_SIGNED = "contract.signed"  # one event per party that signed
    CONTRACT_COMPLETED = "contract.completed"
    CONTRACT_DECLINED = "contract.declined"
    CONTRACT_PAPER = "contract.paper"
    CONTRACT_CANCELLED = "contract.cancelled"
    USAGE_REQUEST_CONFIRMED = "usage_request.confirmed"

    @property
    def label(self) -> str:
        return EVENT_LABELS[self]


EVENT_LABELS = {
    WebhookEventType.CONTRACT_SENT: "署名依頼の送信",
    WebhookEventType.CONTRACT_SIGNED: "署名（当事者ごと）",
    WebhookEventType.CONTRACT_COMPLETED: "締結",
    WebhookEventType.CONTRACT_DECLINED: "差し戻し",
    WebhookEventType.CONTRACT_PAPER: "紙契約へ移行",
    WebhookEventType.CONTRACT_CANCELLED: "取消",
    WebhookEventType.USAGE_REQUEST_CONFIRMED: "電子契約利用申出書の受付（メール確認済み）",
}


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for (another) attempt
    SENDING = "sending"  # claimed by one worker
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # given up after WEBHOOK_GIVE_UP_HOURS

    @property
    def label(self) -> str:
        return {"pending": "送信待ち", "sending": "送信中", "delivered": "送信済み", "failed": "失敗"}[self.value]

    @property
    def is_waiting(self) -> bool:
        return self is DeliveryStatus.PENDING

    @property
    def can_retry(self) -> bool:
        """An admin may ask for one more attempt (after repairing the receiver)."""
        return self is DeliveryStatus.FAILED


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[intpk]
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON)  # WebhookEventType values
    secret_sealed: Mapped[str] = mapped_column(Text)  # AES-GCM under the instance master key (needed to sign)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[utc_datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    updated_at: Mapped[utc_datetime]

    def wants(self, event_type: WebhookEventType) -> bool:
        return self.is_active and event_type.value in self.events


class WebhookEvent(Base):
    """What happened, written in the transaction of the change (an outbox); its body is fixed then."""

    __tablename__ = "webhook_events"

    id: Mapped[intpk]
    event_id: Mapped[str] = mapped_column(String(36), unique=True)  # UUID sent to receivers, for de-duplication
    type: Mapped[WebhookEventType] = mapped_column(str_enum_type(WebhookEventType), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the `data` member of the body
    occurred_at: Mapped[utc_datetime]


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "endpoint_id"),)

    id: Mapped[intpk]
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    status: Mapped[DeliveryStatus] = mapped_column(str_enum_type(DeliveryStatus), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[utc_datetime]
    next_attempt_at: Mapped[utc_datetime] = mapped_column(index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None]
    last_error: Mapped[str] = mapped_column(Text, default="")

    event: Mapped[WebhookEvent] = relationship(lazy="joined")
    endpoint: Mapped[WebhookEndpoint] = relationship()
