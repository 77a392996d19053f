"""Dates and amounts typed by people: ISO, slashes, 和暦; 「１１０万」. The formatters live in portal.formatting.

parse_date_span() returns the first and last day the text can mean, so "令和元年" in a 「から」 field
starts on 2019-05-01 and in a 「まで」 field ends on 2019-12-31; a full date gives the same day twice.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date

from portal.errors import DomainError

# (name, latin initial, first day, last day); 平成 ended 2019-04-30, 令和 began 2019-05-01.
ERAS = {
    "令和": ("R", date(2019, 5, 1), None),
    "平成": ("H", date(1989, 1, 8), date(2019, 4, 30)),
    "昭和": ("S", date(1926, 12, 25), date(1989, 1, 7)),
}
_ERA_BY_INITIAL = {initial: name for name, (initial, _first, _last) in ERAS.items()}

_WESTERN = re.compile(r"^(\d{4})(?:[-/.年](\d{1,2})(?:[-/.月](\d{1,2})日?)?月?)?年?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_JAPANESE = re.compile(r"^(令和|平成|昭和|[RHS])(元|\d{1,2})(?:[年.\-/](?:(\d{1,2})(?:[月.\-/](\d{1,2})日?)?月?)?)?$")


class InvalidDate(DomainError):
    """The text is not a date the portal understands."""


def parse_date(text: str) -> date:
    """One exact day. Raises InvalidDate, also when the text names a whole month or year."""
    first, last = parse_date_span(text)
    if first != last:
        raise InvalidDate(f"「{text}」は日付まで入力してください（例: 2025-08-01、令和7年8月1日）。")
    return first


def parse_date_span(text: str) -> tuple[date, date]:
    """First and last day meant by `text`: 2025-08-01, 2025/8/1, 20250801, 2025年8月, 令和7年8月1日,
    R7.8.1, 令和元年, H31.4.30 (full-width digits and spaces are fine).

    Raises InvalidDate with a message naming the problem (unknown format, no such day, a day
    outside its era such as 平成31年5月1日).
    """
    cleaned = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or "")).upper()
    if not cleaned:
        raise InvalidDate("日付を入力してください。")
    if match := _COMPACT.match(cleaned):
        compact = [int(g) for g in match.groups()]
        return _span(text, compact[0], compact[1], compact[2])
    if match := _WESTERN.match(cleaned):
        year_text, month_text, day_text = match.groups()
        return _span(text, int(year_text), int(month_text) if month_text else None, int(day_text) if day_text else None)
    if match := _JAPANESE.match(cleaned):
        era_text, year_text, month_text, day_text = match.groups()
        era = _ERA_BY_INITIAL.get(era_text, era_text)
        _initial, era_first, era_last = ERAS[era]
        era_year = 1 if year_text == "元" else int(year_text)
        if era_year < 1:
            raise InvalidDate(f"「{text}」の年が正しくありません。")
        first, last = _span(text, era_first.year + era_year - 1, _int(month_text), _int(day_text))
        if (era_last and first > era_last) or last < era_first:
            raise InvalidDate(f"「{text}」は{era}の期間（{_era_period(era)}）にありません。")
        return max(first, era_first), min(last, era_last) if era_last else last
    raise InvalidDate(f"「{text}」は日付として読み取れません。"
                      "2025-08-01、2025/8/1、令和7年8月1日、R7.8.1 の形で入力してください。")


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def _span(text: str, year: int, month: int | None, day: int | None) -> tuple[date, date]:
    try:
        if month is None:
            return date(year, 1, 1), date(year, 12, 31)
        if day is None:
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        exact = date(year, month, day)
    except ValueError:
        raise InvalidDate(f"「{text}」という日付はありません。") from None
    return exact, exact


def _era_period(era: str) -> str:
    _initial, first, last = ERAS[era]
    return f"{first.isoformat()}〜{last.isoformat() if last else ''}"


def parse_amount(text: str) -> int:
    """「1,100,000」「１１０万」「1100000円」 → 1100000. Raises ValueError."""
    cleaned = re.sub(r"[\s,、円¥￥金]", "", unicodedata.normalize("NFKC", text or ""))
    multiplier = 1
    for suffix, factor in (("億", 100_000_000), ("万", 10_000), ("千", 1_000)):
        if cleaned.endswith(suffix):
            cleaned, multiplier = cleaned[: -len(suffix)], factor
            break
    if not re.fullmatch(r"\d+(\.\d+)?", cleaned):
        raise ValueError(text)
    value = float(cleaned) * multiplier if "." in cleaned else int(cleaned) * multiplier
    if value != int(value):
        raise ValueError(text)
    return int(value)
