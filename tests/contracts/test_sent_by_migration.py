"""Migration 0018 gives contracts already sent their sender, from the latest 'staff:contract:sent' audit event."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from portal.db import make_engine
from portal.migrate import alembic_config

NOW = "2026-12-01 00:00:00"
STAFF = text("INSERT INTO staff_users (id, email, name, title, role, department_id, failed_attempts, is_active,"
             " created_at) VALUES (:id, :email, :name, '', 'staff', 1, 0, 1, :now)")
CONTRACT = text("INSERT INTO contracts (id, number, business_name, department_id, counterparty_name,"
                " counterparty_name_normalized, amount, tax_amount, transaction_date, auto_renewal,"
                " paper_required_by_law, council_approval_required, planned_conclusion_date, approval_reference,"
                " approved_digest, status, status_reason, created_by_id, created_at, updated_at, sent_at)"
                " VALUES (:id, :number, '業務', 1, '株式会社A', 'A', 1100, 100, '2026-12-01', 0, 0, 0, '2026-12-20',"
                " '', '', :status, '', 1, :now, :now, :sent_at)")
SENT = text("INSERT INTO audit_events (occurred_at, action, actor_type, actor_user_id, actor_label, subject_type,"
            " subject_id, ip, user_agent, details) VALUES (:now, 'staff:contract:sent', 'staff', :user, '',"
            " 'contracts', :contract, '', '', '{}')")


def test_existing_contracts_take_their_sender_from_the_audit_log(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0017_outbox_masked_links")
        connection.execute(text("INSERT INTO departments (id, code, name, kind, is_active, created_at)"
                                " VALUES (1, 'KEI', '契約課', '本庁', 1, :now)"), {"now": NOW})
        for user_id in (1, 2):
            connection.execute(STAFF, {"id": user_id, "email": f"u{user_id}@pref.example.jp", "name": f"職員{user_id}",
                                       "now": NOW})
        connection.execute(CONTRACT, {"id": 1, "number": "KEI-R8-0001", "status": "completed", "now": NOW,
                                      "sent_at": NOW})
        connection.execute(CONTRACT, {"id": 2, "number": "KEI-R8-0002", "status": "draft", "now": NOW,
                                      "sent_at": None})
        # sent by 1, returned to draft, sent again by 2: the latest sender counts
        for user_id in (1, 2):
            connection.execute(SENT, {"now": NOW, "user": user_id, "contract": "1"})
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0019_contract_sent_by")
        senders = dict(connection.execute(text("SELECT id, sent_by_id FROM contracts")).all())
    engine.dispose()
    assert senders == {1: 2, 2: None}
