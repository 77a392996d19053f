"""Signature requests: the e-mail link of one counterparty signer (token stored only hashed)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.contracts.models import Party
from portal.db import Base, str_enum_type
from portal.types import UTCDateTime, intpk, utc_datetime


class RequestStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    DECLINED = "declined"
    CANCELLED = "cancelled"  # contract cancelled, switched to paper, or the link was re-issued


class SignatureRequest(Base):
    __tablename__ = "signature_requests"

    id: Mapped[intpk]
    party_id: Mapped[int] = mapped_column(ForeignKey("contract_parties.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[RequestStatus] = mapped_column(str_enum_type(RequestStatus))
    created_at: Mapped[utc_datetime]
    expires_at: Mapped[utc_datetime]  # end of the planned conclusion date, JST
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_code_attempts: Mapped[int] = mapped_column(default=0)

    party: Mapped[Party] = relationship(lazy="joined")

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at
