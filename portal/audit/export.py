"""The operation log as CSV for Excel: UTF-8 with BOM, CRLF, every text cell safe from formulas."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from portal import spreadsheet
from portal.audit.queries import EventRow
from portal.spreadsheet import text_cell

CSV_COLUMNS = ["日時（日本時間）", "操作者", "役割", "所属", "操作の種類", "内容", "詳細", "対象", "IP アドレス",
               "ユーザーエージェント", "記録番号"]
_CHUNK_ROWS = 500


def csv_line(row: EventRow) -> list[str]:
    return [row.time_jst, *(text_cell(value) for value in (
        row.actor, row.role, row.department, row.kind, row.sentence, row.details, row.target, row.ip,
        row.user_agent)), str(row.id)]


def stream_csv(rows: Iterable[EventRow]) -> Iterator[bytes]:
    return spreadsheet.stream_csv(CSV_COLUMNS, (csv_line(row) for row in rows), chunk_rows=_CHUNK_ROWS)
