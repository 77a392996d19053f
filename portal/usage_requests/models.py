"""UsageRequest: one submitted 電子契約利用申出書 (別記様式). Never edited; a correction is a new request."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import Department, StaffUser
from portal.counterparties.models import Counterparty, SigningAuthority
from portal.db import Base, str_enum_type
from portal.types import UTCDateTime, email_str, intpk, utc_datetime


class UsageRequestStatus(StrEnum):
    AWAITING_EMAIL = "awaiting_email"  # the signing authority has not opened the confirmation link yet
    PENDING = "pending"  # 確認待ち: confirmed, waiting for staff
    ACCEPTED = "accepted"  # 受付済: counterparty and signing authority registered
    RETURNED = "returned"  # 差戻し: sent back to the submitter with a reason

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]

    @property
    def is_accepted(self) -> bool:
        return self is UsageRequestStatus.ACCEPTED

    @property
    def is_returned(self) -> bool:
        return self is UsageRequestStatus.RETURNED

    @property
    def css_class(self) -> str:
        return f"status-{self.value}"


STATUS_LABELS = {
    UsageRequestStatus.AWAITING_EMAIL: "メール確認前",
    UsageRequestStatus.PENDING: "確認待ち",
    UsageRequestStatus.ACCEPTED: "受付済",
    UsageRequestStatus.RETURNED: "差戻し",
}


class Channel(StrEnum):
    """How the form reached the agency (the 別記様式 allows e-mail and post besides the portal)."""

    WEB = "web"
    MAIL = "mail"
    POST = "post"

    @property
    def label(self) -> str:
        return CHANNEL_LABELS[self]


CHANNEL_LABELS = {Channel.WEB: "ポータル", Channel.MAIL: "電子メール（職員入力）", Channel.POST: "郵送（職員入力）"}


class UsageRequest(Base):
    __tablename__ = "usage_requests"

    id: Mapped[intpk]
    receipt_number: Mapped[str] = mapped_column(String(20), unique=True)  # 受付番号
    status: Mapped[UsageRequestStatus] = mapped_column(str_enum_type(UsageRequestStatus), index=True)
    channel: Mapped[Channel] = mapped_column(str_enum_type(Channel))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)  # 提出先
    form_date: Mapped[date]  # the 年月日 written on the form

    # The 別記様式, field by field.
    address: Mapped[str] = mapped_column(String(300))  # 住所(所在地)
    company_name: Mapped[str] = mapped_column(String(200))  # 商号(名称); for a JV: its 代表構成員
    # 共同企業体 (JV): its name and its members, one per line; the authority is the representative's (R10).
    jv_name: Mapped[str] = mapped_column(String(200), default="")
    jv_members: Mapped[str] = mapped_column(Text, default="")
    representative: Mapped[str] = mapped_column(String(200))  # 代表者職・氏名
    contact_person: Mapped[str] = mapped_column(String(200))  # 担当者職・氏名
    contact_phone: Mapped[str] = mapped_column(String(40))  # 連絡先 電話番号 (NFKC)
    contact_email: Mapped[email_str]  # 連絡先 メールアドレス: receipts and returns go here
    contract_name: Mapped[str] = mapped_column(String(200))  # 契約業務名
    authority_title: Mapped[str] = mapped_column(String(100))  # 契約締結権限者 役職
    authority_name: Mapped[str] = mapped_column(String(100))  # 契約締結権限者 氏名
    authority_email: Mapped[email_str]  # 契約締結権限者 メールアドレス (no free mail, R11)

    submitted_at: Mapped[utc_datetime]
    confirm_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    confirm_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))  # mail/post entry
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    return_reason: Mapped[str] = mapped_column(Text, default="")
    counterparty_id: Mapped[int | None] = mapped_column(ForeignKey("counterparties.id"), index=True)
    signing_authority_id: Mapped[int | None] = mapped_column(ForeignKey("signing_authorities.id"))
    pdf_key: Mapped[str | None] = mapped_column(String(64))  # the accepted form as A4 PDF, in storage
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    # 差戻し → correction: the returned request carries a one-time link (hashed) to a pre-filled form;
    # the corrected request points at the one it corrects.
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("usage_requests.id"), index=True)
    correction_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    correction_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    correction_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    department: Mapped[Department] = relationship(lazy="joined")
    entered_by: Mapped[StaffUser | None] = relationship(foreign_keys=[entered_by_id])
    reviewed_by: Mapped[StaffUser | None] = relationship(foreign_keys=[reviewed_by_id])
    counterparty: Mapped[Counterparty | None] = relationship()
    signing_authority: Mapped[SigningAuthority | None] = relationship()
    corrects: Mapped[UsageRequest | None] = relationship(remote_side="UsageRequest.id", foreign_keys=[corrects_id])

    @property
    def is_jv(self) -> bool:
        return bool(self.jv_name)

    @property
    def jv_member_list(self) -> list[str]:
        return [line.strip() for line in self.jv_members.splitlines() if line.strip()]

    @property
    def counterparty_name(self) -> str:
        """The contracting party: the JV itself, else the company."""
        return self.jv_name or self.company_name
