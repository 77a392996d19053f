"""The revocations of the built-in PKI: the record every CRL is issued from.

A row is never changed or deleted: a revocation is final (RFC 5280 §3.3), and its time is
the moment the certificate stopped being trustworthy, not the time a CRL was issued.
"""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.types import intpk, utc_datetime


class CertificateRevocation(Base):
    """One revoked certificate of the built-in PKI."""

    __tablename__ = "certificate_revocations"

    id: Mapped[intpk]
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)  # lower-case hexadecimal
    subject: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(32), default="unspecified")  # x509.ReasonFlags name
    revoked_at: Mapped[utc_datetime]
    recorded_at: Mapped[utc_datetime]
    recorded_by: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")
