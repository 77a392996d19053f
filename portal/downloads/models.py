"""Download links sent with the completion mail; valid DOWNLOAD_LINK_DAYS (default 14)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.contracts.models import Contract
from portal.db import Base
from portal.types import UTCDateTime, email_str, intpk, utc_datetime


class DownloadLink(Base):
    __tablename__ = "download_links"

    id: Mapped[intpk]
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    recipient: Mapped[email_str]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[utc_datetime]
    expires_at: Mapped[utc_datetime]
    download_count: Mapped[int] = mapped_column(default=0)
    last_downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    contract: Mapped[Contract] = relationship()

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at
