"""The operation log as a hash chain: every event holds SHA-256 of its canonical content, which
includes the previous event's hash, so an event edited, deleted or inserted breaks the chain.

Canonical content: the stored fields of HASHED_FIELDS as JSON with sorted keys, no spaces,
UTF-8 (ensure_ascii off), occurred_at as UTC ISO 8601 with microseconds — read back from the
database, so that what is hashed is what is stored. The position (chain_seq) is not hashed: the
links fix the order, and verify() counts positions itself.

Appending: record() only adds the row. When the transaction commits, the rows it added get their
position and hashes under the lock of the head row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
write lock, which the portal takes at the first write), so processes append in one order and the
lock is held only for the commit itself. On PostgreSQL a trigger (migration 0018) allows exactly
this one update of a row whose hash is still empty, and no other UPDATE or DELETE.

Retention: delete_for_retention() deletes a deleted contract's events through the one path the
trigger allows, and returns their [position, hash]; the caller records them in the tombstone
event, through which verify() walks over the gaps (docs/audit.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from portal.audit.actions import AuditAction
from portal.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from portal.clock import JST

GENESIS = "0" * 64
HASHED_FIELDS = ("id", "occurred_at", "action", "actor_type", "actor_user_id", "actor_label", "subject_type",
                 "subject_id", "ip", "user_agent", "details", "prev_hash")
# Events whose details["deleted_audit_events"] lists the [position, hash] of the events they replace.
TOMBSTONE_ACTIONS = frozenset({AuditAction.CONTRACT_DELETED_AFTER_RETENTION.value})
DELETED_KEY = "deleted_audit_events"

_events = cast(Table, AuditEvent.__table__)
_head = cast(Table, AuditChainHead.__table__)
_checkpoints = cast(Table, AuditCheckpoint.__table__)
_ROW = [_events.c[name] for name in (*HASHED_FIELDS, "chain_seq", "event_hash")]
_UNCHAINED = "portal.audit.unchained"
_BATCH = 500


def canonical(row: Mapping[Any, Any]) -> bytes:
    """The bytes hashed for an event: its HASHED_FIELDS as sorted-key JSON, occurred_at in UTC."""
    content = {name: row[name] for name in HASHED_FIELDS}
    content["occurred_at"] = row["occurred_at"].astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def event_hash(row: Mapping[Any, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


# -- appending ---------------------------------------------------------------------------------------

@event.listens_for(Session, "after_flush")
def _note_new_events(session: Session, _context: Any) -> None:
    ids = [obj.id for obj in session.new if isinstance(obj, AuditEvent)]
    if ids:
        session.info.setdefault(_UNCHAINED, set()).update(ids)


@event.listens_for(Session, "before_commit")
def _chain_before_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released: the head is locked only when the whole transaction commits
    if _UNCHAINED not in session.info and not any(isinstance(obj, AuditEvent) for obj in session.new):
        return
    session.flush()
    ids = session.info.pop(_UNCHAINED, set())
    if ids:
        append(session, sorted(ids))


@event.listens_for(Session, "after_transaction_end")
def _forget_unchained(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the whole transaction ended (a savepoint's rows may still commit)
        session.info.pop(_UNCHAINED, None)


# Built once: a commit that writes audit rows runs these, and building them costs more than running them.
_NEW_ROWS = (select(*_ROW).where(_events.c.id.in_(bindparam("ids", expanding=True)), _events.c.event_hash.is_(None))
             .order_by(_events.c.id))
_SET_CHAIN = update(_events).where(_events.c.id == bindparam("row_id")).values(
    chain_seq=bindparam("chain_seq"), prev_hash=bindparam("prev_hash"), event_hash=bindparam("event_hash"))
_LOCK_HEAD = select(_head.c.seq, _head.c.event_hash).where(_head.c.id == 1).with_for_update()
_SET_HEAD = update(_head).where(_head.c.id == 1).values(seq=bindparam("seq"), event_hash=bindparam("head_hash"))
_LAST_CHAINED = (select(_events.c.chain_seq, _events.c.event_hash).where(_events.c.chain_seq.is_not(None))
                 .order_by(_events.c.chain_seq.desc()).limit(1))


def append(session: Session, ids: Iterable[int]) -> int:
    """Give the events `ids` (inserted in this transaction, not yet chained) their positions and hashes.

    Called when the transaction commits; locks the head row until then. Returns the new head position.
    """
    connection = session.connection()
    head_seq, head_hash = _lock_head(session)
    id_list = list(ids)
    for start in range(0, len(id_list), _BATCH):
        rows = connection.execute(_NEW_ROWS, {"ids": id_list[start:start + _BATCH]}).mappings()
        updates = []
        for row in rows:
            head_seq += 1
            digest = event_hash({**row, "prev_hash": head_hash})
            updates.append({"row_id": row["id"], "chain_seq": head_seq, "prev_hash": head_hash, "event_hash": digest})
            head_hash = digest
        if not updates:
            continue
        connection.execute(_SET_CHAIN, updates)
        for values in updates:
            obj = session.identity_map.get(session.identity_key(AuditEvent, values["row_id"]))
            if obj is not None:
                for name in ("chain_seq", "prev_hash", "event_hash"):
                    set_committed_value(obj, name, values[name])
    connection.execute(_SET_HEAD, {"seq": head_seq, "head_hash": head_hash})
    return head_seq


def _lock_head(session: Session) -> tuple[int, str]:
    connection = session.connection()
    row = connection.execute(_LOCK_HEAD).first()
    if row is None:  # a fresh or emptied database: start from the last chained event, if any
        last = connection.execute(_LAST_CHAINED).first()
        values = {"id": 1, "seq": last[0] if last else 0, "event_hash": last[1] if last else GENESIS}
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        connection.execute(insert(_head).values(values).on_conflict_do_nothing())
        row = connection.execute(_LOCK_HEAD).one()
    return int(row[0]), str(row[1])


def head(session: Session) -> tuple[int, str]:
    """The committed head: (position, hash) of the last event; (0, GENESIS) for an empty log."""
    row = session.execute(select(_head.c.seq, _head.c.event_hash).where(_head.c.id == 1)).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


# -- retention ---------------------------------------------------------------------------------------

def delete_for_retention(session: Session, subject_type: str, subject_id: str) -> list[list[Any]]:
    """Delete every event about one subject (a contract deleted after its retention period).

    Returns [position, hash] of each chained event deleted, for the tombstone event's
    details[DELETED_KEY], which the caller records in the same transaction. On PostgreSQL the
    trigger allows these deletions only while portal.audit_retention is on, for this statement.
    """
    session.flush()
    rows = session.execute(select(_events.c.id, _events.c.chain_seq, _events.c.event_hash).where(
        _events.c.subject_type == subject_type, _events.c.subject_id == subject_id)
        .order_by(_events.c.chain_seq)).all()
    if not rows:
        return []
    is_postgresql = session.get_bind().dialect.name == "postgresql"
    if is_postgresql:
        session.execute(text("SELECT set_config('portal.audit_retention', 'on', true)"))
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), _BATCH):
        session.execute(delete(_events).where(_events.c.id.in_(ids[start:start + _BATCH])))
    if is_postgresql:
        session.execute(text("SELECT set_config('portal.audit_retention', 'off', true)"))
    for row_id in ids:
        obj = session.identity_map.get(session.identity_key(AuditEvent, row_id))
        if obj is not None:
            session.expunge(obj)
    return [[row[1], row[2]] for row in rows if row[1] is not None]


# -- verification ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """The first thing found wrong, in Japanese, with the event and the checkpoint concerned."""

    kind: str  # altered | deleted | inserted | rewritten | truncated | checkpoint
    message: str
    event_id: int | None = None
    position: int | None = None
    checkpoint_id: int | None = None


@dataclass(frozen=True)
class Verification:
    events: int  # rows read
    positions: int  # chain length, events deleted after retention included
    head_hash: str
    checkpoints: int
    problem: Problem | None

    @property
    def is_ok(self) -> bool:
        return self.problem is None

    @property
    def summary(self) -> str:
        if self.problem is not None:
            return self.problem.message
        return (f"操作ログ {self.events} 件（通番 {self.positions} まで）とチェックポイント {self.checkpoints} 件を"
                "検証しました。改ざんは見つかりませんでした。")


# Says what is wrong with a checkpoint's timestamp token for its head hash, or None when it is sound.
TokenCheck = Callable[[bytes, bytes], str | None]


@dataclass
class _Checkpoint:
    id: int
    head_seq: int
    head_hash: str
    timestamped_at: datetime
    token_problem: str | None

    def label(self) -> str:
        moment = self.timestamped_at.astimezone(JST)
        return f"チェックポイント #{self.id}（{moment:%Y-%m-%d %H:%M} JST、通番 {self.head_seq}）"


class _Found(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def verify(session: Session, *, check_token: TokenCheck | None = None, batch: int = 2000) -> Verification:
    """Walk the chain from the first event and check every checkpoint; stop at the first problem.

    Reads one snapshot (REPEATABLE READ on PostgreSQL; SQLite's read transaction) in a transaction
    of its own, rolled back before returning: call it on a session not in a transaction.
    """
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    try:
        return _Walk(session, check_token, batch).run()
    finally:
        session.rollback()


class _Walk:
    def __init__(self, session: Session, check_token: TokenCheck | None, batch: int) -> None:
        self.session = session
        self.batch = batch
        self.tombstoned = self._tombstoned()
        self.all_checkpoints = [
            _Checkpoint(row.id, row.head_seq, row.head_hash, row.timestamped_at,
                        check_token(row.timestamp_token, bytes.fromhex(row.head_hash)) if check_token else None)
            for row in session.execute(select(_checkpoints).order_by(_checkpoints.c.head_seq, _checkpoints.c.id))
        ]
        # A checkpoint whose token does not vouch for its head proves nothing; it is reported last.
        self.checkpoints = [checkpoint for checkpoint in self.all_checkpoints if not checkpoint.token_problem]
        self.position, self.prev, self.before_prev = 0, GENESIS, ""
        self.events, self.last_id = 0, None
        self.checkpoint_events: dict[int, tuple[Any, Any, int]] = {}  # checkpoint id -> (seq, hash, event id)
        self.next_checkpoint = 0

    def _tombstoned(self) -> dict[int, tuple[str, int]]:
        """position -> (hash, position of the tombstone) for events deleted after retention.

        Only tombstones whose own content still matches their hash count.
        """
        found: dict[int, tuple[str, int]] = {}
        rows = self.session.execute(select(*_ROW).where(_events.c.action.in_(TOMBSTONE_ACTIONS),
                                                        _events.c.chain_seq.is_not(None))).mappings()
        for row in rows:
            if event_hash(row) != row["event_hash"]:
                continue
            for position, digest in (row["details"] or {}).get(DELETED_KEY, []):
                if isinstance(position, int) and isinstance(digest, str) and position < row["chain_seq"]:
                    found[position] = (digest, row["chain_seq"])
        return found

    def run(self) -> Verification:
        try:
            self._walk()
            self._after_walk()
        except _Found as found:
            return self._result(found.problem)
        return self._result(None)

    def _result(self, problem: Problem | None) -> Verification:
        return Verification(self.events, self.position, self.prev, len(self.all_checkpoints), problem)

    def _walk(self) -> None:
        query = select(*_ROW).where(_events.c.chain_seq.is_not(None)).order_by(_events.c.chain_seq)
        result = self.session.execute(query, execution_options={"yield_per": self.batch}).mappings()
        try:
            for row in result:
                self.events += 1
                self._skip_tombstoned(row)
                if row["prev_hash"] != self.prev:
                    self._broken_link(row)
                digest = event_hash(row)
                if digest != row["event_hash"]:
                    raise self._found("altered", row["chain_seq"], row["id"],
                                      f"ID {row['id']}（通番 {row['chain_seq']}）の操作ログが改ざんされています"
                                      "（内容が記録されたハッシュと一致しません）。")
                self._advance(row["chain_seq"], digest)
                if row["action"] == AuditAction.AUDIT_CHECKPOINT_CREATED.value:
                    details = row["details"] or {}
                    checkpoint_id = details.get("checkpoint_id")
                    if isinstance(checkpoint_id, int):
                        self.checkpoint_events[checkpoint_id] = (details.get("head_seq"), details.get("head_hash"),
                                                                 row["id"])
                self.last_id = row["id"]
        finally:
            result.close()  # a server-side cursor on PostgreSQL, also when a problem ends the walk

    def _skip_tombstoned(self, row: Mapping[Any, Any]) -> None:
        while self.position + 1 < row["chain_seq"]:
            missing = self.position + 1
            entry = self.tombstoned.get(missing)
            if entry is None:
                where = f"ID {self.last_id} と ID {row['id']} の間" if self.last_id else f"ID {row['id']} の前"
                raise self._found("deleted", missing, None,
                                  f"通番 {missing} の操作ログ（{where}）が削除されています。")
            self._advance(missing, entry[0])

    def _broken_link(self, row: Mapping[Any, Any]) -> None:
        if self.last_id is not None and row["prev_hash"] == self.before_prev:
            raise self._found("inserted", self.position, self.last_id,
                              f"ID {self.last_id}（通番 {self.position}）の操作ログは後から挿入されたものです"
                              f"（次の ID {row['id']} はその前の操作ログに連なっています）。")
        before = f"ID {self.last_id}（通番 {self.position}）" if self.last_id else "先頭"
        raise self._found("deleted", self.position + 1, row["id"],
                          f"{before} と ID {row['id']} の間で連鎖が切れています: 間の操作ログが削除されたか、"
                          f"{before} が書き換えられています。")

    def _advance(self, position: int, digest: str) -> None:
        self.position, self.before_prev, self.prev = position, self.prev, digest
        while (self.next_checkpoint < len(self.checkpoints)
               and self.checkpoints[self.next_checkpoint].head_seq <= position):
            checkpoint = self.checkpoints[self.next_checkpoint]
            if checkpoint.head_seq == position and checkpoint.head_hash != digest:
                raise _Found(Problem(
                    "rewritten", f"通番 {position} までの操作ログが、{checkpoint.label()} の記録と異なります"
                    "（途中の操作ログが書き換えられ、ハッシュが計算し直されています）。",
                    self.last_id, position, checkpoint.id))
            self.next_checkpoint += 1

    def _after_walk(self) -> None:
        for checkpoint in self.checkpoints:
            if checkpoint.head_seq > self.position:
                after = f"ID {self.last_id}（通番 {self.position}）より後" if self.last_id else "すべて"
                raise _Found(Problem(
                    "truncated", f"通番 {self.position + 1} 以降の操作ログ（{after}、"
                    f"{checkpoint.head_seq - self.position} 件以上）が削除されています。"
                    f"{checkpoint.label()} が通番 {checkpoint.head_seq} までを記録しています。",
                    None, self.position + 1, checkpoint.id))
        head_seq, _head_hash = head(self.session)
        if head_seq > self.position:
            raise self._found("truncated", self.position + 1, None,
                              f"通番 {self.position + 1} 以降の操作ログが削除されています"
                              f"（連鎖の先頭は通番 {head_seq} と記録されています）。")
        stray = self.session.execute(select(_events.c.id, _events.c.occurred_at).where(
            _events.c.chain_seq.is_(None)).order_by(_events.c.id).limit(1)).first()
        if stray is not None:
            raise self._found("inserted", None, stray[0],
                              f"ID {stray[0]}（{stray[1].astimezone(JST):%Y-%m-%d %H:%M} JST）の操作ログは"
                              "連鎖に含まれていません（後から挿入されたものです）。")
        if head_seq < self.position:
            raise self._found("inserted", self.position, self.last_id,
                              f"通番 {head_seq + 1} 以降の操作ログ（ID {self.last_id} まで）は連鎖の先頭より後に"
                              "挿入されたものです。")
        self._check_checkpoints()

    def _check_checkpoints(self) -> None:
        by_id = {checkpoint.id: checkpoint for checkpoint in self.all_checkpoints}
        for checkpoint_id, (seq, digest, event_id) in sorted(self.checkpoint_events.items()):
            checkpoint = by_id.get(checkpoint_id)
            if checkpoint is None or (checkpoint.head_seq, checkpoint.head_hash) != (seq, digest):
                raise _Found(Problem("checkpoint", f"チェックポイント #{checkpoint_id} が削除または書き換えられています"
                                     f"（ID {event_id} の操作ログが作成を記録しています）。",
                                     event_id, seq, checkpoint_id))
        for checkpoint in self.all_checkpoints:
            if checkpoint.token_problem:
                raise _Found(Problem("checkpoint", f"{checkpoint.label()} のタイムスタンプを確認できません: "
                                     f"{checkpoint.token_problem}", None, checkpoint.head_seq, checkpoint.id))

    def _found(self, kind: str, position: int | None, event_id: int | None, message: str) -> _Found:
        """The problem, naming the first checkpoint whose timestamped head covers its position."""
        proof = next((c for c in self.checkpoints if position is not None and c.head_seq >= position), None)
        if proof is not None:
            message += f" {proof.label()} がこの時点の連鎖を証明しています。"
        else:
            message += " この範囲はまだチェックポイントに含まれていません。"
        return _Found(Problem(kind, message, event_id, position, proof.id if proof else None))
