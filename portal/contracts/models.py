"""Contract envelopes: metadata, documents with every stored revision, the signers in order, and the
links sent to them (signature requests, download links). Statuses change only in portal.contracts.lifecycle."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import Department, StaffUser
from portal.counterparties.models import Counterparty, SigningAuthority
from portal.db import Base, str_enum_type
from portal.text import is_control_character
from portal.types import UTCDateTime, email_str, intpk, utc_datetime, yen


class ContractStatus(StrEnum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"  # 決裁 confirmed over the current documents, not sent yet
    AWAITING_COUNTERPARTY = "awaiting_counterparty"
    AWAITING_AGENCY = "awaiting_agency"
    COMPLETING = "completing"  # everyone has signed; the worker is finalizing (B-LTA, certificate)
    COMPLETED = "completed"
    DECLINED = "declined"
    PAPER = "paper"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]

    @property
    def is_open(self) -> bool:
        """Still being prepared or signed: documents may not be final yet."""
        return self in OPEN_STATUSES

    @property
    def is_signing(self) -> bool:
        return self in (ContractStatus.AWAITING_COUNTERPARTY, ContractStatus.AWAITING_AGENCY)

    @property
    def awaits_approval(self) -> bool:
        """Documents uploaded or being uploaded, 決裁 not confirmed yet."""
        return self in (ContractStatus.DRAFT, ContractStatus.AWAITING_APPROVAL)

    @property
    def is_completing(self) -> bool:
        return self is ContractStatus.COMPLETING

    @property
    def is_completed(self) -> bool:
        return self is ContractStatus.COMPLETED

    @property
    def is_paper(self) -> bool:
        return self is ContractStatus.PAPER

    @property
    def css_class(self) -> str:
        """The badge's CSS class, e.g. status-completed."""
        return f"status-{self.value}"


STATUS_LABELS = {
    ContractStatus.DRAFT: "下書き",
    ContractStatus.AWAITING_APPROVAL: "承認待ち",
    ContractStatus.APPROVED: "承認済み（送信待ち）",
    ContractStatus.AWAITING_COUNTERPARTY: "署名待ち(相手方)",
    ContractStatus.AWAITING_AGENCY: "署名待ち(庁内)",
    ContractStatus.COMPLETING: "締結処理中",
    ContractStatus.COMPLETED: "締結済み",
    ContractStatus.DECLINED: "差し戻し",
    ContractStatus.PAPER: "紙契約へ移行",
    ContractStatus.CANCELLED: "取消",
}
OPEN_STATUSES = frozenset(
    {
        ContractStatus.DRAFT,
        ContractStatus.AWAITING_APPROVAL,
        ContractStatus.APPROVED,
        ContractStatus.AWAITING_COUNTERPARTY,
        ContractStatus.AWAITING_AGENCY,
        ContractStatus.COMPLETING,
    }
)


class PartyRole(StrEnum):
    COUNTERPARTY = "counterparty"  # the vendor's 契約締結権限者, signs through an e-mail link
    AGENCY = "agency"  # a staff user with the approver role, signs logged in

    @property
    def label(self) -> str:
        return "相手方" if self is PartyRole.COUNTERPARTY else "庁内"


class PartyStatus(StrEnum):
    WAITING = "waiting"  # an earlier signer has not signed yet
    REQUESTED = "requested"  # asked to sign now
    SIGNED = "signed"
    DECLINED = "declined"

    @property
    def label(self) -> str:
        return {"waiting": "順番待ち", "requested": "署名依頼中", "signed": "署名済み", "declined": "差し戻し"}[
            self.value
        ]


# How a signer proved who they were (Party.auth_methods), with the names the certificate prints.
AUTH_EMAIL_LINK = "email_link"
AUTH_ACCESS_CODE = "access_code"
AUTH_PASSWORD = "password"  # noqa: S105 - the name of a method, not a secret
AUTH_TOTP = "totp"
AUTH_LABELS = {
    AUTH_EMAIL_LINK: "メール認証（署名依頼メールのリンク）",
    AUTH_ACCESS_CODE: "アクセスコード",
    AUTH_PASSWORD: "パスワード",
    AUTH_TOTP: "ワンタイムパスワード（TOTP）",
}


# How the counterparty gave its prior 承諾 to contracting electronically (Contract.consent_method).
CONSENT_METHODS = ("承諾書（書面）", "電子メール", "電子契約利用申出書", "その他")


class RevisionKind(StrEnum):
    ORIGINAL = "original"  # as uploaded
    SIGNED = "signed"  # after one party's approval signature (PAdES B-T)
    FINAL = "final"  # after completion (PAdES B-LTA)
    ARCHIVE_TIMESTAMP = "archive_timestamp"  # a renewed archive timestamp (portal.preservation.renewal)


class Contract(Base):
    """One envelope (契約): what is agreed, with whom, and how far signing has got."""

    __tablename__ = "contracts"

    id: Mapped[intpk]
    number: Mapped[str] = mapped_column(String(40), unique=True)  # 契約番号: department code-year-serial
    business_name: Mapped[str] = mapped_column(String(200))  # 業務名
    contract_type: Mapped[str] = mapped_column(String(50), default="", index=True)  # 契約の種類 (CONTRACT_TYPES)
    # The counterparty's prior 承諾 to e-contracting, where the type needs it (工事: 建設業法 19条3項).
    consent_by: Mapped[str] = mapped_column(String(200), default="")  # who consented (name, title)
    consent_on: Mapped[date | None] = mapped_column(Date)
    consent_method: Mapped[str] = mapped_column(String(100), default="")  # how: 承諾書, 電子メール …
    # 変更契約 (R16): the completed contract this one amends; the original itself is never changed.
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"), index=True)
    amendment_reason: Mapped[str] = mapped_column(Text, default="")
    # 「この契約を複製して作成」: the contract this draft started from (after a 差し戻し, for next year).
    copied_from_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    counterparty_id: Mapped[int | None] = mapped_column(ForeignKey("counterparties.id"), index=True)
    counterparty_name: Mapped[str] = mapped_column(String(200))  # 取引先, as written
    # An administrator's reason for contracting with a 取引先 that has no accepted 利用申出書 (R10).
    counterparty_override_reason: Mapped[str] = mapped_column(Text, default="")
    counterparty_name_normalized: Mapped[str] = mapped_column(String(200), index=True)
    amount: Mapped[yen] = mapped_column(index=True)  # 税込, integer yen
    tax_amount: Mapped[yen]  # うち消費税及び地方消費税額
    transaction_date: Mapped[date] = mapped_column(Date, index=True)  # 取引年月日
    term_start: Mapped[date | None] = mapped_column(Date)
    term_end: Mapped[date | None] = mapped_column(Date)
    auto_renewal: Mapped[bool] = mapped_column(default=False)
    paper_required_by_law: Mapped[bool] = mapped_column(default=False)
    council_approval_required: Mapped[bool] = mapped_column(default=False)  # 議会の議決
    planned_conclusion_date: Mapped[date] = mapped_column(Date)  # 締結予定日: links expire after it
    access_code_hash: Mapped[str | None] = mapped_column(String(200))  # argon2; told to the vendor separately
    approval_reference: Mapped[str] = mapped_column(String(100), default="")  # 決裁番号・日付
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_digest: Mapped[str] = mapped_column(String(64), default="")  # documents_digest() when approved
    status: Mapped[ContractStatus] = mapped_column(str_enum_type(ContractStatus), index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")  # why declined / paper / cancelled
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[utc_datetime]
    updated_at: Mapped[utc_datetime]
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))  # who sent it (the certificate)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    certificate_key: Mapped[str | None] = mapped_column(String(64))  # 合意締結証明書 in the store
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))

    department: Mapped[Department] = relationship(lazy="joined")
    counterparty: Mapped[Counterparty | None] = relationship()
    amends: Mapped[Contract | None] = relationship(remote_side="Contract.id", back_populates="amendments",
                                                   foreign_keys=[amends_id])
    amendments: Mapped[list[Contract]] = relationship(back_populates="amends", order_by="Contract.id",
                                                      foreign_keys=[amends_id])
    copied_from: Mapped[Contract | None] = relationship(remote_side="Contract.id", foreign_keys=[copied_from_id],
                                                        back_populates="copies")
    copies: Mapped[list[Contract]] = relationship(back_populates="copied_from", order_by="Contract.id",
                                                  foreign_keys=[copied_from_id])
    created_by: Mapped[StaffUser] = relationship(foreign_keys=[created_by_id])
    approved_by: Mapped[StaffUser | None] = relationship(foreign_keys=[approved_by_id])
    sent_by: Mapped[StaffUser | None] = relationship(foreign_keys=[sent_by_id])
    documents: Mapped[list[ContractDocument]] = relationship(
        back_populates="contract", order_by="ContractDocument.position", cascade="all, delete-orphan"
    )
    parties: Mapped[list[Party]] = relationship(
        back_populates="contract", order_by="Party.position", cascade="all, delete-orphan"
    )

    @property
    def tax_excluded_amount(self) -> int:
        return self.amount - self.tax_amount

    @property
    def current_party(self) -> Party | None:
        """The signer whose turn it is, if signing is under way."""
        return next((p for p in self.parties if p.status == PartyStatus.REQUESTED), None)

    @property
    def has_access_code(self) -> bool:
        return bool(self.access_code_hash)

    @property
    def has_consent(self) -> bool:
        return bool(self.consent_by and self.consent_on and self.consent_method)


class ContractDocument(Base):
    """One PDF of the envelope, in order; its bytes live in revisions."""

    __tablename__ = "contract_documents"
    __table_args__ = (UniqueConstraint("contract_id", "position"),)

    id: Mapped[intpk]
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    position: Mapped[int]
    filename: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(100), default="", server_default="")  # shown to signers; "" = stem
    page_count: Mapped[int]
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[utc_datetime]

    contract: Mapped[Contract] = relationship(back_populates="documents")
    uploaded_by: Mapped[StaffUser] = relationship()
    revisions: Mapped[list[DocumentRevision]] = relationship(
        back_populates="document", order_by="DocumentRevision.number", cascade="all, delete-orphan"
    )

    @property
    def original(self) -> DocumentRevision:
        return self.revisions[0]

    @property
    def current(self) -> DocumentRevision:
        return self.revisions[-1]

    @property
    def display_title(self) -> str:
        """The title staff gave it, else the file name without its extension."""
        stem = self.filename.rsplit(".", 1)[0] if "." in self.filename.lstrip(".") else self.filename
        return self.title or stem or self.filename

    def download_name(self, revision: DocumentRevision | None = None) -> str:
        """`<契約番号>_<title>.pdf`, with 「_署名済」 when `revision` carries a signature."""
        revision = revision or self.original
        signed = "_署名済" if revision.kind is not RevisionKind.ORIGINAL else ""
        name = f"{self.contract.number}_{self.display_title}{signed}.pdf"
        # a name from before file names were checked may still hold a bidirectional override
        return "".join("_" if ch in '\\/:*?"<>|' else ch for ch in name if not is_control_character(ch))


class DocumentRevision(Base):
    """Stored bytes of one state of a document. Never changed: a signature adds a revision."""

    __tablename__ = "contract_document_revisions"
    __table_args__ = (UniqueConstraint("document_id", "number"),)

    id: Mapped[intpk]
    document_id: Mapped[int] = mapped_column(ForeignKey("contract_documents.id"), index=True)
    number: Mapped[int]  # 1 = original
    kind: Mapped[RevisionKind] = mapped_column(str_enum_type(RevisionKind))
    storage_key: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int]
    party_id: Mapped[int | None] = mapped_column(ForeignKey("contract_parties.id"))  # whose signature
    # genTime of the newest RFC 3161 token in the file (pades.latest_timestamp_time), read when a final or
    # archive-timestamp revision is stored: the search export's 「タイムスタンプ時刻」.
    timestamp_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[utc_datetime]

    document: Mapped[ContractDocument] = relationship(back_populates="revisions")


class CertificateRevision(Base):
    """Stored bytes of one state of a contract's 合意締結証明書. Never changed: 1 is what completion made,
    each archive-timestamp renewal adds one. Contract.certificate_key / certificate_sha256 name the newest."""

    __tablename__ = "contract_certificate_revisions"
    __table_args__ = (UniqueConstraint("contract_id", "number"),)

    id: Mapped[intpk]
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    number: Mapped[int]
    kind: Mapped[RevisionKind] = mapped_column(str_enum_type(RevisionKind))  # final, then archive_timestamp
    storage_key: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int | None]  # unknown for certificates stored before this table
    timestamp_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # newest RFC 3161 genTime in the file
    created_at: Mapped[utc_datetime]

    contract: Mapped[Contract] = relationship()


class Party(Base):
    """A signer in the envelope's order: the vendor's authority or the agency approver."""

    __tablename__ = "contract_parties"
    __table_args__ = (UniqueConstraint("contract_id", "position"),)

    id: Mapped[intpk]
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    position: Mapped[int]  # signing order, 1 first
    role: Mapped[PartyRole] = mapped_column(str_enum_type(PartyRole))
    organization: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(100), default="")
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[email_str]
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    # The registered 契約締結権限者 this signer is (R10), or why another person signs instead (R11).
    signing_authority_id: Mapped[int | None] = mapped_column(ForeignKey("signing_authorities.id"))
    signer_override_reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[PartyStatus] = mapped_column(str_enum_type(PartyStatus))
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_ip: Mapped[str] = mapped_column(String(64), default="")
    signed_user_agent: Mapped[str] = mapped_column(Text, default="")
    auth_methods: Mapped[list[str]] = mapped_column(JSON, default=list)  # e.g. ["email_link", "access_code"]
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    reminders_sent: Mapped[list[Any]] = mapped_column(JSON, default=list)  # days-before already reminded

    contract: Mapped[Contract] = relationship(back_populates="parties")
    staff_user: Mapped[StaffUser | None] = relationship()
    signing_authority: Mapped[SigningAuthority | None] = relationship()

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.organization, self.title, self.name) if part)


class RequestStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    DECLINED = "declined"
    CANCELLED = "cancelled"  # contract cancelled, switched to paper, or the link was re-issued
    # A reminder sent a newer link; this one still opens the signer's current request while it is
    # their turn (a vendor with the page open when the reminder goes out can still finish).
    SUPERSEDED = "superseded"


class SignatureRequest(Base):
    """The e-mail link of one counterparty signer (the token is stored only hashed)."""

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


class DownloadLink(Base):
    """A link sent with the completion mail; valid DOWNLOAD_LINK_DAYS (default 14)."""

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


class ContractNumberCounter(Base):
    """The last serial handed out per department and 年度 (April to March): see contracts/numbering.py."""

    __tablename__ = "contract_number_counters"

    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(primary_key=True)  # 2026 = 令和8年度 (2026-04-01 to 2027-03-31)
    last_serial: Mapped[int] = mapped_column(default=0)


class PageImage(Base):
    """A rendered page of a stored PDF, itself stored encrypted in the document store.

    Keyed by the PDF's SHA-256: the bytes of a revision never change, so neither does the image.
    """

    __tablename__ = "page_images"
    __table_args__ = (UniqueConstraint("sha256", "page_index", "width"),)

    id: Mapped[intpk]
    sha256: Mapped[str] = mapped_column(String(64))
    page_index: Mapped[int]  # 0-based
    width: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    created_at: Mapped[utc_datetime]
