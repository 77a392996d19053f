"""Staff networks edited on the admin page, in addition to PORTAL_STAFF_ALLOWED_NETWORKS."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.types import intpk, utc_datetime


class StaffNetwork(Base):
    __tablename__ = "staff_networks"

    id: Mapped[intpk]
    cidr: Mapped[str] = mapped_column(String(64), unique=True)  # normalised, e.g. 10.20.0.0/16, 2001:db8::/48
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[utc_datetime]
