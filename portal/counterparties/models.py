from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.types import UTCDateTime, email_str, intpk, utc_datetime

if TYPE_CHECKING:
    from portal.auth.models import StaffUser


class Counterparty(Base):
    """A company or body the agency contracts with (取引先)."""

    __tablename__ = "counterparties"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(200))  # 商号(名称), as written
    name_normalized: Mapped[str] = mapped_column(String(200), index=True)  # see normalize.normalize_name
    address: Mapped[str] = mapped_column(String(300), default="")  # 住所(所在地)
    representative: Mapped[str] = mapped_column(String(200), default="")  # 代表者職・氏名
    contact_person: Mapped[str] = mapped_column(String(200), default="")  # 担当者職・氏名
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    declined_e_contract: Mapped[bool] = mapped_column(default=False)  # 電子契約を希望しない
    # Who recorded the wish, when and why (staff, from the vendor's word); cleared when withdrawn.
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    declined_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    declined_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[utc_datetime]
    updated_at: Mapped[utc_datetime]

    authorities: Mapped[list[SigningAuthority]] = relationship(
        back_populates="counterparty", order_by="SigningAuthority.id"
    )
    declined_by: Mapped[StaffUser | None] = relationship("StaffUser")

    @property
    def current_authority(self) -> SigningAuthority | None:
        current = [a for a in self.authorities if a.retired_at is None]
        return current[-1] if current else None

    @property
    def is_registered(self) -> bool:
        """An accepted 利用申出書 named its 契約締結権限者: contracts may be made with it (R10)."""
        return self.current_authority is not None


class SigningAuthority(Base):
    """契約締結権限者: the person whose e-mail receives signature requests. Replaced, never edited."""

    __tablename__ = "signing_authorities"

    id: Mapped[intpk]
    counterparty_id: Mapped[int] = mapped_column(ForeignKey("counterparties.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))  # 役職
    name: Mapped[str] = mapped_column(String(100))  # 氏名
    email: Mapped[email_str]
    source: Mapped[str] = mapped_column(String(32), default="usage_request")  # usage_request | staff
    created_at: Mapped[utc_datetime]
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    counterparty: Mapped[Counterparty] = relationship(back_populates="authorities")
