"""The operation log as a hash chain: `flask audit verify` passes an untouched log and names the
first event edited, deleted, inserted or cut off, with the checkpoint that proves it."""

from __future__ import annotations

import hashlib
import itertools
import json
import re

from flask import Flask
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.audit import chain
from tests.audit.helpers import (
    CHECKPOINTS,
    EVENTS,
    HEAD,
    append_events,
    chain_rows,
    edit_details,
    flask_audit,
    tampering,
)

HOSTILE_DETAILS = {
    "quote": "\"'\\</script>", "emoji": "👩‍💼", "kanji": "髙﨑", "separator": "\u2028\u2029", "big": 2**62,
    "float": 0.1 + 0.2, "nested": {"b": [1, {"z": None, "a": True}], "a": ""}, "spaces": "  全角　",
}


def _checkpoint(app: Flask) -> int:
    result = flask_audit(app, "checkpoint")
    assert result.exit_code == 0, result.output
    match = re.search(r"チェックポイント #(\d+)", result.output)
    assert match, result.output
    return int(match.group(1))


def test_an_untouched_log_verifies_with_its_count(app: Flask, session: Session) -> None:
    append_events(app, 4, per_commit=2)
    from portal.audit.service import SYSTEM, record

    with app.app_context():
        record(session, actor=SYSTEM, action="system:test:hostile", **HOSTILE_DETAILS)
        session.commit()
    _checkpoint(app)
    append_events(app, 3)

    result = flask_audit(app, "verify")

    assert result.exit_code == 0, result.output
    assert "操作ログ 9 件（通番 9 まで）とチェックポイント 1 件" in result.output  # 4 + 1 + checkpoint event + 3
    rows = chain_rows(session)
    assert [row.chain_seq for row in rows] == list(range(1, 10))
    assert rows[0].prev_hash == chain.GENESIS
    assert all(later.prev_hash == earlier.event_hash for earlier, later in itertools.pairwise(rows))
    assert session.execute(select(HEAD.c.seq, HEAD.c.event_hash)).one() == (9, rows[-1].event_hash)


def test_the_canonical_form_is_sorted_key_json_of_the_stored_fields(app: Flask, session: Session) -> None:
    append_events(app, 1)
    row = chain_rows(session)[0]._mapping
    content = json.loads(chain.canonical(row))
    assert sorted(content) == sorted(chain.HASHED_FIELDS)
    assert content["occurred_at"].endswith("+00:00")
    assert content["prev_hash"] == chain.GENESIS
    assert hashlib.sha256(chain.canonical(row)).hexdigest() == row["event_hash"]


def test_edited_details_name_the_event_and_the_checkpoint(app: Flask, session: Session) -> None:
    append_events(app, 6)
    checkpoint_id = _checkpoint(app)
    append_events(app, 2)
    target = chain_rows(session)[3]

    edit_details(app, target.id, {**target.details, "number": 999})

    result = flask_audit(app, "verify")
    assert result.exit_code == 1, result.output
    assert f"ID {target.id}（通番 4）の操作ログが改ざんされています" in result.output
    assert f"チェックポイント #{checkpoint_id}" in result.output


def test_a_deleted_event_is_named_by_its_position_and_neighbours(app: Flask, session: Session) -> None:
    append_events(app, 6)
    checkpoint_id = _checkpoint(app)
    rows = chain_rows(session)

    with tampering(app) as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.id == rows[2].id))

    result = flask_audit(app, "verify")
    assert result.exit_code == 1, result.output
    assert f"通番 3 の操作ログ（ID {rows[1].id} と ID {rows[3].id} の間）が削除されています" in result.output
    assert f"チェックポイント #{checkpoint_id}" in result.output


def test_an_event_inserted_in_the_middle_is_named(app: Flask, session: Session) -> None:
    """The intruder shifts the later positions and gives the forged row a correct hash of its own."""
    append_events(app, 6)
    checkpoint_id = _checkpoint(app)
    rows = chain_rows(session)
    forged = {**{name: rows[2]._mapping[name] for name in chain.HASHED_FIELDS}, "details": {"forged": True},
              "prev_hash": rows[2].prev_hash}
    with tampering(app) as connection:
        forged["id"] = connection.execute(select(func.max(EVENTS.c.id))).scalar_one() + 100
        for row in reversed(rows[2:]):
            connection.execute(update(EVENTS).where(EVENTS.c.id == row.id).values(chain_seq=row.chain_seq + 1))
        connection.execute(insert(EVENTS).values(**forged, chain_seq=3, event_hash=chain.event_hash(forged)))

    result = flask_audit(app, "verify")
    assert result.exit_code == 1, result.output
    assert f"ID {forged['id']}（通番 3）の操作ログは後から挿入されたものです" in result.output
    assert f"チェックポイント #{checkpoint_id}" in result.output


def test_an_event_inserted_outside_the_chain_is_named(app: Flask, session: Session) -> None:
    append_events(app, 3)
    with tampering(app) as connection:
        forged_id = connection.execute(insert(EVENTS).values(
            occurred_at=clock.now(), action="staff:contract:sent", actor_type="staff", actor_label="x@example.jp",
            subject_type="contracts", subject_id="1", ip="", user_agent="", details={}).returning(EVENTS.c.id)
        ).scalar_one()

    result = flask_audit(app, "verify")
    assert result.exit_code == 1, result.output
    assert f"ID {forged_id}" in result.output
    assert "連鎖に含まれていません" in result.output


def test_the_last_events_cut_off_after_a_checkpoint_are_detected(app: Flask, session: Session) -> None:
    """The intruder deletes the newest rows (the checkpoint's own event among them) and rewinds the head."""
    append_events(app, 5)
    checkpoint_id = _checkpoint(app)  # covers positions 1-5; its event is position 6
    append_events(app, 2)
    rows = chain_rows(session)
    with tampering(app) as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.chain_seq > 3))
        connection.execute(update(HEAD).values(seq=3, event_hash=rows[2].event_hash))

    result = flask_audit(app, "verify")
    assert result.exit_code == 1, result.output
    assert f"通番 4 以降の操作ログ（ID {rows[2].id}（通番 3）より後、2 件以上）が削除されています" in result.output
    assert f"チェックポイント #{checkpoint_id}" in result.output
    assert "通番 5 までを記録しています" in result.output


def test_cut_off_after_the_last_checkpoint_is_caught_by_the_head(app: Flask, session: Session) -> None:
    append_events(app, 5)
    rows = chain_rows(session)
    with tampering(app) as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.chain_seq > 3))

    result = flask_audit(app, "verify")
    assert result.exit_code == 1, result.output
    assert "通番 4 以降の操作ログが削除されています（連鎖の先頭は通番 5 と記録されています）" in result.output
    assert rows[2].id


def test_a_chain_rehashed_after_an_edit_differs_from_the_checkpoint(app: Flask, session: Session) -> None:
    """An intruder who edits a row and recomputes every later hash still cannot match the timestamped head."""
    append_events(app, 4)
    checkpoint_id = _checkpoint(app)
    rows = chain_rows(session)
    previous = rows[0].event_hash
    with tampering(app) as connection:
        for row in rows[1:]:
            content = {**{name: row._mapping[name] for name in chain.HASHED_FIELDS}, "prev_hash": previous}
            if row.chain_seq == 2:
                content["details"] = {**row.details, "number": 42}
            digest = chain.event_hash(content)
            connection.execute(update(EVENTS).where(EVENTS.c.id == row.id).values(
                details=content["details"], prev_hash=previous, event_hash=digest))
            previous = digest
        connection.execute(update(HEAD).values(event_hash=previous))

    result = flask_audit(app, "verify")
    assert result.exit_code == 1, result.output
    assert f"通番 4 までの操作ログが、チェックポイント #{checkpoint_id}" in result.output
    assert "書き換えられ" in result.output


def test_a_deleted_checkpoint_is_named(app: Flask, session: Session) -> None:
    append_events(app, 2)
    first = _checkpoint(app)
    _checkpoint(app)
    with tampering(app) as connection:
        connection.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.id == first))

    result = flask_audit(app, "verify")
    assert result.exit_code == 1, result.output
    assert f"チェックポイント #{first} が削除または書き換えられています" in result.output


def test_a_checkpoint_whose_head_was_edited_no_longer_matches_its_timestamp(app: Flask, session: Session) -> None:
    append_events(app, 2)
    checkpoint_id = _checkpoint(app)
    with tampering(app) as connection:
        connection.execute(update(CHECKPOINTS).values(head_hash="f" * 64))

    result = flask_audit(app, "verify")
    assert result.exit_code == 1, result.output
    assert f"チェックポイント #{checkpoint_id}" in result.output


def test_a_savepoint_does_not_chain_early_and_a_rolled_back_one_leaves_no_gap(app: Flask, session: Session) -> None:
    from portal.audit.service import SYSTEM, record

    with app.app_context():
        with session.begin_nested():
            record(session, actor=SYSTEM, action="system:test:kept")
        assert session.execute(select(HEAD.c.seq)).scalar() in (None, 0)  # not locked or advanced yet
        try:
            with session.begin_nested():
                record(session, actor=SYSTEM, action="system:test:undone")
                session.flush()
                raise RuntimeError("undo")
        except RuntimeError:
            pass
        record(session, actor=SYSTEM, action="system:test:after")
        session.commit()

    assert [(row.chain_seq, row.action) for row in chain_rows(session)] == [
        (1, "system:test:kept"), (2, "system:test:after")]
    assert flask_audit(app, "verify").exit_code == 0
