from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, str_enum_type
from portal.types import UTCDateTime, intpk, utc_datetime


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for (another) delivery attempt
    SENDING = "sending"  # claimed by a deliverer
    SENT = "sent"
    HELD = "held"  # no SMTP server configured: kept for the 送信メール page
    FAILED = "failed"  # gave up after MAIL_MAX_ATTEMPTS
    WITHDRAWN = "withdrawn"  # not sent: the link it carries stopped working first (a newer link, or closed)

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {OutboxStatus.PENDING: "送信待ち", OutboxStatus.SENDING: "送信中", OutboxStatus.SENT: "送信済み",
           OutboxStatus.HELD: "保管（未送信）", OutboxStatus.FAILED: "送信失敗",
           OutboxStatus.WITHDRAWN: "取りやめ（リンク無効）"}


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"

    id: Mapped[intpk]
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(500))
    # What people may read (送信メール page): every link token masked. The body as delivered, with the
    # working links, is kept sealed under the master key only until it is handed to SMTP.
    body: Mapped[str] = mapped_column(Text)
    body_sealed: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255), default="", server_default="")  # kept over retries
    # hash_token() of the link token the body carries ("" for none): a mail not yet sent whose link has
    # stopped working is withdrawn instead of being delivered (portal.mail.service.withdraw_link_mails).
    link_token_hash: Mapped[str] = mapped_column(String(64), default="", server_default="", index=True)
    status: Mapped[OutboxStatus] = mapped_column(str_enum_type(OutboxStatus), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[utc_datetime]
    next_attempt_at: Mapped[utc_datetime] = mapped_column(index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
