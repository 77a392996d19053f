"""Streamed exports of a result set (R24): CSV for Excel, and a ZIP of the PDFs with that CSV.

Both are generators: rows are read in batches and files one at a time, so memory stays flat
however many contracts match.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Iterator

from portal import spreadsheet
from portal.contracts.models import ContractStatus
from portal.formatting import jst
from portal.search.service import ExportRow
from portal.spreadsheet import text_cell
from portal.storage import StorageError, TamperedFile
from portal.text import safe_filename

# 電帳法 一括ダウンロード: the columns the issue lists, in this order.
CERTIFICATE_NAME = "合意締結証明書.pdf"
PAPER_MARK = "未署名原本（紙契約へ移行）_"  # a paper contract's stored file was never signed electronically
CSV_COLUMNS = ["取引年月日", "金額(税込)", "税額", "金額(税抜)", "取引先", "業務名", "契約番号", "ファイル名",
               "SHA-256", "締結日時", "タイムスタンプ時刻", "契約の種類", "状態", "変更前の契約番号"]
_CHUNK_ROWS = 500


def csv_line(row: ExportRow) -> list[str]:
    return [
        row.transaction_date.isoformat(), str(row.amount), str(row.tax_amount), str(row.tax_excluded_amount),
        text_cell(row.counterparty_name), text_cell(row.business_name), text_cell(row.number),
        text_cell(row.filename), row.sha256 or "",
        jst(row.completed_at, "%Y-%m-%dT%H:%M:%S+09:00"), jst(row.timestamp_at, "%Y-%m-%dT%H:%M:%S+09:00"),
        text_cell(row.contract_type), row.status.label if row.status else "", text_cell(row.amends_number),
    ]


def stream_csv(rows: Iterable[ExportRow]) -> Iterator[bytes]:
    """UTF-8 with BOM (Excel opens it as UTF-8), CRLF line ends, dates in ISO 8601 (JST)."""
    return spreadsheet.stream_csv(CSV_COLUMNS, (csv_line(row) for row in rows), chunk_rows=_CHUNK_ROWS)


class _Pipe(io.RawIOBase):
    """An unseekable sink: zipfile then writes data descriptors, and we hand the bytes on as they come."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def zip_entry_name(row: ExportRow) -> str:
    safe = safe_filename(row.filename or "").replace("/", "_").replace("\\", "_")
    folder = safe_filename(row.number).replace("/", "_").replace("\\", "_")
    if row.status is ContractStatus.PAPER:
        safe = PAPER_MARK + safe
    return f"{folder}/{safe}"


def read_certificate_row(row: ExportRow) -> bytes:
    """The 合意締結証明書 of a row's contract, checked. Raises StorageError, TamperedFile."""
    from portal.contracts.documents import certificate_owner
    from portal.storage import get_store

    if not (row.certificate_key and row.certificate_sha256):
        raise StorageError(f"no certificate for {row.number}")
    return get_store().get(row.certificate_key, owner=certificate_owner(row.contract_id), sha256=row.certificate_sha256)


def read_row(row: ExportRow) -> bytes:
    """The stored file of a row, checked against its owner and SHA-256. Raises StorageError, TamperedFile."""
    from portal.contracts.documents import read_stored_revision

    if not (row.storage_key and row.document_id and row.revision_number and row.sha256):
        raise StorageError(f"no stored file for {row.number}")
    return read_stored_revision(row.storage_key, contract_id=row.contract_id, document_id=row.document_id,
                                number=row.revision_number, sha256=row.sha256)


def stream_zip(rows: Iterable[ExportRow], read: Callable[[ExportRow], bytes] = read_row, *,
               read_certificate: Callable[[ExportRow], bytes] = read_certificate_row,
               csv_name: str = "一覧.csv", omit_paper_originals: bool = False) -> Iterator[bytes]:
    """The PDFs under <契約番号>/<ファイル名> with each completed contract's <契約番号>/合意締結証明書.pdf,
    then the CSV of the same rows. A paper contract's stored files (the unsigned originals) are named
    「未署名原本（紙契約へ移行）_…」, or left out with `omit_paper_originals` (the CSV still lists them).

    A file that cannot be read (missing, or altered on disk: TamperedFile) is left out and listed
    in 読み込みエラー.txt, so an export never hides a damaged record.
    """
    pipe = _Pipe()
    lines: list[ExportRow] = []
    errors: list[str] = []
    seen: set[str] = set()
    certified: set[int] = set()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED) as archive:  # PDFs are compressed already
        for row in rows:
            lines.append(row)
            if row.certificate_key and row.contract_id not in certified:
                certified.add(row.contract_id)
                name = f"{zip_entry_name(row).rsplit('/', 1)[0]}/{CERTIFICATE_NAME}"
                seen.add(name)
                try:
                    data = read_certificate(row)
                except TamperedFile:
                    errors.append(f"{row.number} {CERTIFICATE_NAME}: "
                                  "保存データの整合性検査に失敗しました（改ざんの可能性）")
                except StorageError:
                    errors.append(f"{row.number} {CERTIFICATE_NAME}: 保存データが見つかりません")
                else:
                    with archive.open(zipfile.ZipInfo(name, date_time=_zip_time(row)), mode="w") as entry:
                        entry.write(data)
                    yield pipe.take()
            if not row.storage_key or (omit_paper_originals and row.status is ContractStatus.PAPER):
                continue
            name = zip_entry_name(row)
            if name in seen:
                name = f"{name.removesuffix('.pdf')}_{len(seen)}.pdf"
            seen.add(name)
            try:
                data = read(row)
            except TamperedFile:
                errors.append(f"{row.number} {row.filename}: 保存データの整合性検査に失敗しました（改ざんの可能性）")
                continue
            except StorageError:
                errors.append(f"{row.number} {row.filename}: 保存データが見つかりません")
                continue
            with archive.open(zipfile.ZipInfo(name, date_time=_zip_time(row)), mode="w") as entry:
                entry.write(data)
            yield pipe.take()
        archive.writestr(csv_name, b"".join(stream_csv(lines)))
        if errors:
            archive.writestr("読み込みエラー.txt", ("\r\n".join(errors) + "\r\n").encode())
    yield pipe.take()


def _zip_time(row: ExportRow) -> tuple[int, int, int, int, int, int]:
    moment = row.completed_at
    if moment is None:
        return (row.transaction_date.year, row.transaction_date.month, row.transaction_date.day, 0, 0, 0)
    from portal.clock import JST

    local = moment.astimezone(JST)
    return (local.year, local.month, local.day, local.hour, local.minute, local.second)
