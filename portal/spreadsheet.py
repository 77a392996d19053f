"""Cells of the CSV files people open in Excel: text that would start a formula is written as text.

A counterparty named `=HYPERLINK("http://evil.example","請求書")` must arrive in the cell as those characters,
not as a live link or a calculation (CSV injection). A leading apostrophe is what Excel itself uses to mark
a cell as text; it is added only to text columns, so amounts and dates stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

# Characters that make a spreadsheet read a cell as a formula, also in their full-width forms (Japanese IMEs).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def text_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_LEADS) else text


BOM = "\ufeff"


def stream_csv(header: Sequence[str], lines: Iterable[Sequence[str]], *, chunk_rows: int = 500) -> Iterator[bytes]:
    """UTF-8 with BOM (Excel opens it as UTF-8), CRLF line ends, handed on every `chunk_rows` rows (flat memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(header)
    for count, line in enumerate(lines, start=1):
        writer.writerow(line)
        if count % chunk_rows == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
