from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, str_enum_type
from portal.formatting import wareki
from portal.types import UTCDateTime, email_str, intpk, utc_datetime


class Role(StrEnum):
    ADMIN = "admin"  # users, departments, settings
    STAFF = "staff"  # creates and sends contracts (担当者)
    APPROVER = "approver"  # the agency-side signer, e.g. 契約担当者
    AUDITOR = "auditor"  # read-only

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.ADMIN: "管理者",
    Role.STAFF: "担当者",
    Role.APPROVER: "承認者（契約担当者）",
    Role.AUDITOR: "監査担当（閲覧のみ）",
}


class Department(Base):
    """An organisational unit: 本庁の課, 県民局, 出先事務所 … Contracts are scoped to one."""

    __tablename__ = "departments"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(16), unique=True)  # used in 契約番号
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), default="本庁")
    is_active: Mapped[bool] = mapped_column(default=True)  # inactive: kept for its contracts, offered nowhere
    go_live_date: Mapped[date | None] = mapped_column(Date)  # 電子契約の導入日: no electronic sending before it
    contact_phone: Mapped[str] = mapped_column(String(30), default="")  # shown to vendors in mails and pages
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[utc_datetime]

    users: Mapped[list[StaffUser]] = relationship(back_populates="department")

    def sending_refusal(self, today: date) -> str | None:
        """Why a contract of this department cannot be sent electronically today, if it cannot."""
        if self.go_live_date is not None and today < self.go_live_date:
            return f"電子契約の導入日（{wareki(self.go_live_date)}）より前のため送信できません。"
        return None


class StaffUser(Base):
    """An agency account. Password (argon2) and TOTP are both required to log in."""

    __tablename__ = "staff_users"

    id: Mapped[intpk]
    email: Mapped[email_str] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[Role] = mapped_column(str_enum_type(Role))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret_sealed: Mapped[str | None] = mapped_column(String(200))  # AES-GCM under the master key
    totp_pending_sealed: Mapped[str | None] = mapped_column(String(200))  # shown during enrolment, not yet confirmed
    totp_last_counter: Mapped[int | None]  # the last accepted 30 s step: a code is never accepted twice
    mfa_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_active: Mapped[bool] = mapped_column(default=True)
    # Stored in the session at login and compared on every request: raising it ends every session of the user.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[utc_datetime]

    department: Mapped[Department] = relationship(back_populates="users", lazy="joined")
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    # flask-login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_mfa_enrolled(self) -> bool:
        return self.mfa_enrolled_at is not None

    def has_role(self, *roles: Role) -> bool:
        return self.role == Role.ADMIN or self.role in roles


class RecoveryCode(Base):
    """One-time MFA recovery code, stored as an argon2 hash; used_at set on use."""

    __tablename__ = "recovery_codes"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[StaffUser] = relationship(back_populates="recovery_codes")


class AccountToken(Base):
    """One-time link for first-run setup or a user's enrolment (set password + TOTP).

    Only the SHA-256 of the token is stored.
    """

    __tablename__ = "account_tokens"

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # setup | enrol
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    created_at: Mapped[utc_datetime]
    expires_at: Mapped[utc_datetime]
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiTokenScope(StrEnum):
    WRITE = "write"  # everything the user's role allows
    READ = "read"  # GET only

    @property
    def label(self) -> str:
        return "読み書き" if self is ApiTokenScope.WRITE else "読み取り専用"


class ApiToken(Base):
    """A bearer token for the JSON API; acts as its user with that user's role. Only the hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    scope: Mapped[ApiTokenScope] = mapped_column(str_enum_type(ApiTokenScope), default=ApiTokenScope.WRITE,
                                                 server_default=ApiTokenScope.WRITE.value)
    created_at: Mapped[utc_datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: tokens made before expiry existed
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    user: Mapped[StaffUser] = relationship(lazy="joined", foreign_keys=[user_id])
    created_by: Mapped[StaffUser | None] = relationship(foreign_keys=[created_by_id])

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
