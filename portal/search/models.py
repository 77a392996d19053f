"""Indexes that serve the 電帳法 search (the columns are the contracts package's).

Ordered paging walks (transaction_date, id), within a department when the actor is scoped to one.
The substring index on the normalised counterparty name is dialect-specific and lives in
portal/search/fulltext.py (pg_trgm GIN on PostgreSQL, an FTS5 trigram table on SQLite).
"""

from __future__ import annotations

from sqlalchemy import Index

from portal.contracts.models import Contract

DATE_ORDER = Index("ix_contracts_date_id", Contract.transaction_date, Contract.id)
DEPARTMENT_DATE_ORDER = Index("ix_contracts_department_date_id", Contract.department_id, Contract.transaction_date,
                              Contract.id)
