"""Recompute the normalised counterparty names: 異体字 and hyphen/長音 variants now fold

Why: 「髙橋建設」 was not found by 「高橋」, nor 「ケ－エス」 by 「ケーエス」. normalize_name() now folds
the 異体字 of portal/counterparties/itaiji.tsv and every dash to one form; the stored normalised
names (contracts, counterparties, the old 取引先 of metadata corrections) are recomputed so that
stored values and queries fold the same way. The substring indexes follow: PostgreSQL's pg_trgm
index is maintained by the UPDATE itself; SQLite's FTS5 table is rebuilt from contracts.

Downgrade recomputes the names the way the previous normalize_name() did.

Revision ID: 0025_itaiji_names
Revises: 0024_usage_request_jv
Create Date: 2026-12-03 07:00:00
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = '0025_itaiji_names'
down_revision = '0024_usage_request_jv'
branch_labels = None
depends_on = None

# (table, the column as written, the normalised column, an extra condition)
COLUMNS = [
    ("contracts", "counterparty_name", "counterparty_name_normalized", ""),
    ("counterparties", "name", "name_normalized", ""),
    ("metadata_corrections", "old_value", "old_normalized", "field = 'counterparty_name'"),
]
_BATCH = 1000


def upgrade() -> None:
    from portal.counterparties.normalize import normalize_name

    _recompute(normalize_name)


def downgrade() -> None:
    _recompute(_previous_normalize_name)


def _recompute(normalize: Callable[[str], str]) -> None:
    bind = op.get_bind()
    for table, written, normalized, condition in COLUMNS:
        where = f" WHERE {condition}" if condition else ""
        rows = bind.execute(sa.text(f"SELECT id, {written}, {normalized} FROM {table}{where}")).all()  # noqa: S608
        recomputed = ((row[0], normalize(row[1])[:200], row[2]) for row in rows)
        changes = [{"id": row_id, "value": value} for row_id, value, stored in recomputed if value != stored]
        update = sa.text(f"UPDATE {table} SET {normalized} = :value WHERE id = :id")  # noqa: S608
        for start in range(0, len(changes), _BATCH):
            bind.execute(update, changes[start:start + _BATCH])
    if bind.dialect.name == "sqlite" and bind.execute(sa.text(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'contracts_fts'")).first():
        bind.execute(sa.text("INSERT INTO contracts_fts(contracts_fts) VALUES ('rebuild')"))


_PREVIOUS_LEGAL_FORMS = {
    "(株)": "株式会社", "(有)": "有限会社", "(合)": "合同会社", "(資)": "合資会社", "(名)": "合名会社",
    "(社)": "社団法人", "(財)": "財団法人", "(医)": "医療法人", "(学)": "学校法人", "(福)": "社会福祉法人",
    "(特非)": "特定非営利活動法人",
}


def _previous_normalize_name(name: str) -> str:
    """normalize_name() before this revision: NFKC, legal forms, hiragana → katakana, no spaces, casefold."""
    text = unicodedata.normalize("NFKC", name or "")
    for short, long in _PREVIOUS_LEGAL_FORMS.items():
        text = text.replace(short, long)
    text = "".join(chr(ord(c) + 0x60) if 0x3041 <= ord(c) <= 0x3096 else c for c in text)
    return re.sub(r"\s+", "", text).casefold()
