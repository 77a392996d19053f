"""Indexes and the table that serve the 電帳法 search (the columns are the contracts package's).

Ordered paging walks (transaction_date, id), within a department when the actor is scoped to one.
A staff member's amount range walks (department_id, amount, id), an auditor's is sorted inside
(amount, transaction_date, id); 締結日時 has its own order index.
The substring search on the normalised counterparty name first looks in `search_counterparty_names`,
the distinct normalised names the contracts carry (kept by triggers, see portal/search/fulltext.py),
and then takes the contracts with those names; the trigram index (pg_trgm GIN / SQLite FTS5) is the
fallback for a needle that matches too many names to list.
"""

from __future__ import annotations

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.contracts.models import Contract
from portal.db import Base
from portal.types import intpk

DATE_ORDER = Index("ix_contracts_date_id", Contract.transaction_date, Contract.id)
DEPARTMENT_DATE_ORDER = Index("ix_contracts_department_date_id", Contract.department_id, Contract.transaction_date,
                              Contract.id)
COMPLETED_ORDER = Index("ix_contracts_completed_id", Contract.completed_at, Contract.id)
# The contracts of the names a counterparty needle matched, within a department, with the date and
# amount ranges tested inside the index (counted without reading the rows) and the page's order
# sorted there (PostgreSQL reads only the rows shown, service._page_rows).
COUNTERPARTY_DATE = Index("ix_contracts_counterparty_date_amount_id", Contract.counterparty_name_normalized,
                          Contract.department_id, Contract.transaction_date, Contract.amount, Contract.id)
DEPARTMENT_AMOUNT = Index("ix_contracts_department_amount_id", Contract.department_id, Contract.amount, Contract.id)
# An amount range in date order: the amounts in range are sorted by date inside the index.
AMOUNT_DATE = Index("ix_contracts_amount_date_id", Contract.amount, Contract.transaction_date, Contract.id)


class CounterpartyName(Base):
    """A normalised counterparty name that at least one contract carries (or once carried).

    Never deleted: a name no contract carries any more only costs a row and matches nothing.
    """

    __tablename__ = "search_counterparty_names"

    id: Mapped[intpk]
    name_normalized: Mapped[str] = mapped_column(String(200), unique=True)
