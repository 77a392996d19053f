"""The log of a contract is kept as long as the contract: deleting it after retention deletes its
events too, and the deletion's event (the tombstone) lists their positions and hashes, so the chain
still verifies — also against a checkpoint taken before."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import chain
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
from portal.contracts.models import Contract
from portal.preservation import service
from tests.audit.helpers import EVENTS, append_events, chain_rows, flask_audit, tampering
from tests.conftest import reread
from tests.search.conftest import World, world  # noqa: F401  (fixture)

AFTER_RETENTION = datetime(2036, 3, 31, 15, 0, tzinfo=UTC)  # 2036-04-01 00:00 JST


def _contract(session: Session, number: str) -> Contract:
    contract = session.scalar(select(Contract).where(Contract.number == number))
    assert contract is not None
    return contract


def _log_about(app: Flask, session: Session, contract: Contract, count: int) -> None:
    with app.app_context():
        for number in range(count):
            record(session, actor=Actor.staff(contract.created_by), action=AuditAction.CONTRACT_REVIEWED,
                   subject=contract, number=number)
            append_events(app, 1, label=f"other{number}")  # interleaved with events about others
        session.commit()


def test_deletion_after_retention_keeps_a_tombstone_and_the_chain_verifies(app: Flask, session: Session,
                                                                          world: World) -> None:  # noqa: F811
    contract = _contract(session, "A-2025-0001")
    contract_id = contract.id
    _log_about(app, session, contract, 3)
    assert flask_audit(app, "checkpoint").exit_code == 0
    before = {row.chain_seq: row.event_hash for row in chain_rows(session)
              if (row.subject_type, row.subject_id) == ("contracts", str(contract_id))}
    assert len(before) == 3

    with app.app_context():
        service.delete_after_retention(session, reread(session).get(Contract, contract_id), reason="保存期間満了",
                                       actor=world.admin, now=AFTER_RETENTION)
        session.commit()

    rows = chain_rows(session)
    about = [row for row in rows if (row.subject_type, row.subject_id) == ("contracts", str(contract_id))]
    assert [row.action for row in about] == [AuditAction.CONTRACT_DELETED_AFTER_RETENTION.value]
    assert dict(map(tuple, about[0].details[chain.DELETED_KEY])) == before
    result = flask_audit(app, "verify")
    assert result.exit_code == 0, result.output
    assert f"通番 {rows[-1].chain_seq} まで" in result.output
    assert len(rows) == rows[-1].chain_seq - 3


def test_events_deleted_without_a_tombstone_are_still_detected(app: Flask, session: Session,
                                                              world: World) -> None:  # noqa: F811
    contract = _contract(session, "A-2025-0001")
    _log_about(app, session, contract, 2)
    with tampering(app) as connection:
        connection.execute(EVENTS.delete().where(EVENTS.c.subject_type == "contracts",
                                                 EVENTS.c.subject_id == str(contract.id)))
    result = flask_audit(app, "verify")
    assert result.exit_code == 1
    assert "が削除されています" in result.output


def test_a_tombstone_listing_made_up_hashes_does_not_hide_a_deletion(app: Flask, session: Session,
                                                                    world: World) -> None:  # noqa: F811
    contract = _contract(session, "A-2025-0001")
    _log_about(app, session, contract, 1)
    victim = next(row for row in chain_rows(session) if row.subject_id == str(contract.id))
    with app.app_context():
        service.delete_after_retention(session, reread(session).get(Contract, contract.id), reason="満了",
                                       actor=world.admin, now=AFTER_RETENTION)
        session.commit()
    tombstone = chain_rows(session)[-1]
    with tampering(app) as connection:  # the intruder edits the list to cover another deletion
        connection.execute(EVENTS.update().where(EVENTS.c.id == tombstone.id).values(
            details={**tombstone.details, chain.DELETED_KEY: [[victim.chain_seq, "f" * 64]]}))
    result = flask_audit(app, "verify")
    assert result.exit_code == 1
    assert f"通番 {victim.chain_seq} の操作ログ" in result.output
