"""Cells of the CSV files people open in Excel: text that would start a formula is written as text.

A counterparty named `=HYPERLINK("http://evil.example","請求書")` must arrive in the cell as those characters,
not as a live link or a calculation (CSV injection). A leading apostrophe is what Excel itself uses to mark
a cell as text; it is added only to text columns, so amounts and dates stay numbers.
"""

from __future__ import annotations

# Characters that make a spreadsheet read a cell as a formula, also in their full-width forms (Japanese IMEs).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def text_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_LEADS) else text
