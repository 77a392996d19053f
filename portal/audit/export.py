"""The operation log as CSV for Excel: UTF-8 with BOM, CRLF, every text cell safe from formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from portal.audit.queries import EventRow
from portal.spreadsheet import text_cell

CSV_COLUMNS = ["日時（日本時間）", "操作者", "役割", "所属", "操作の種類", "内容", "詳細", "対象", "IP アドレス",
               "ユーザーエージェント", "記録番号"]
BOM = "\ufeff"
_CHUNK_ROWS = 500


def csv_line(row: EventRow) -> list[str]:
    return [row.time_jst, *(text_cell(value) for value in (
        row.actor, row.role, row.department, row.kind, row.sentence, row.details, row.target, row.ip,
        row.user_agent)), str(row.id)]


def stream_csv(rows: Iterable[EventRow]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(csv_line(row))
        if count % _CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
