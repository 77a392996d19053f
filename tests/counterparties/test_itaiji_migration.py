"""Migration 0025 recomputes the stored normalised names, so 「高橋」 finds a contract stored as 「髙橋建設」."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from portal.counterparties.normalize import normalize_name
from portal.db import make_engine
from portal.migrate import alembic_config
from tests.contracts.test_sent_by_migration import CONTRACT, NOW, STAFF

OLD = "髙橋建設株式会社"  # normalised before 0025: 髙 kept as it is
OLD_NORMALIZED = "髙橋建設株式会社"


def test_stored_names_are_recomputed_and_the_fts_index_follows(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0024_usage_request_jv")
        connection.execute(text("INSERT INTO departments (id, code, name, kind, is_active, created_at)"
                                " VALUES (1, 'KEI', '契約課', '本庁', 1, :now)"), {"now": NOW})
        connection.execute(STAFF, {"id": 1, "email": "u1@pref.example.jp", "name": "職員1", "now": NOW})
        connection.execute(CONTRACT, {"id": 1, "number": "KEI-R8-0001", "status": "completed", "now": NOW,
                                      "sent_at": NOW})
        connection.execute(text("UPDATE contracts SET counterparty_name = :name, counterparty_name_normalized = :norm"),
                           {"name": OLD, "norm": OLD_NORMALIZED})
        connection.execute(text("INSERT INTO counterparties (id, name, name_normalized, address, representative,"
                                " contact_person, contact_phone, contact_email, declined_e_contract, created_at,"
                                " updated_at) VALUES (1, 'ケーエス産業', 'ケーエス産業', '', '', '', '', '', 0,"
                                " :now, :now)"),
                           {"now": NOW})
        connection.execute(text("INSERT INTO metadata_corrections (contract_id, version, field, old_value,"
                                " new_value, old_normalized, reason, corrected_by_id, corrected_at) VALUES (1, 2,"
                                " 'counterparty_name', '渡邉設備', :new, '渡邉設備', '誤記', 1, :now)"),
                           {"new": OLD, "now": NOW})
        before = connection.execute(text("SELECT rowid FROM contracts_fts WHERE contracts_fts MATCH '\"高橋建設\"'"))
        assert before.all() == []
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0025_itaiji_names")
        contract = connection.execute(text("SELECT counterparty_name_normalized FROM contracts")).scalar()
        counterparty = connection.execute(text("SELECT name_normalized FROM counterparties")).scalar()
        corrected = connection.execute(text("SELECT old_normalized FROM metadata_corrections")).scalar()
        found = connection.execute(text("SELECT rowid FROM contracts_fts WHERE contracts_fts MATCH '\"高橋建設\"'"))
        assert found.scalars().all() == [1]
    assert contract == normalize_name(OLD) == "高橋建設株式会社"
    assert counterparty == normalize_name("ケ－エス産業") == "ケ-エス産業"
    assert corrected == normalize_name("渡辺設備")
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0024_usage_request_jv")
        assert connection.execute(text("SELECT counterparty_name_normalized FROM contracts")).scalar() == OLD_NORMALIZED
        assert connection.execute(text("SELECT name_normalized FROM counterparties")).scalar() == "ケーエス産業"
    engine.dispose()
