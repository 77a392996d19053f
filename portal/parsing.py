"""Dates and amounts typed by people: ISO, slashes, 和暦; 「１１０万」. The formatters live in portal.formatting.

parse_date_span() returns the first and last day the text can mean, so "令和元年" in a 「から」 field
starts on 2019-05-01 and in a 「まで」 field ends on 2019-12-31; a full date gives the same day twice.
A 年度 (令和8年度, R8年度, 2026年度) is the fiscal year of 地方自治法 208条: 4月1日 to the next 3月31日.
Kanji numerals are read too (令和八年十二月五日, 二〇二六年).
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
_FISCAL_WESTERN = re.compile(r"^(?:(\d{4})年度|FY(\d{4}))$")
_FISCAL_JAPANESE = re.compile(r"^(令和|平成|昭和|[RHS])(元|\d{1,2})年度$")
_JAPANESE = re.compile(r"^(令和|平成|昭和|[RHS])(元|\d{1,2})(?:[年.\-/](?:(\d{1,2})(?:[月.\-/](\d{1,2})日?)?月?)?)?$")


_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}
_KANJI_NUMBER = re.compile(f"[{''.join(_KANJI_DIGITS)}{''.join(_KANJI_UNITS)}]+")
# 二千二十六, 三十一, 十二 (each unit once, in order); or digit by digit: 二〇二六.
_POSITIONAL = re.compile("(?:[一-九]?千)?(?:[一-九]?百)?(?:[一-九]?十)?[一-九]?".replace("一-九", "一二三四五六七八九"))
_DIGITWISE = re.compile("[〇零一二三四五六七八九]+")
_SHOWN_LENGTH = 30


class InvalidDate(DomainError):
    """The text is not a date the portal understands."""


def parse_date(text: str) -> date:
    """One exact day. Raises InvalidDate, also when the text names a whole month or year."""
    first, last = parse_date_span(text)
    if first != last:
        raise InvalidDate(f"「{_shown(text)}」は日付まで入力してください（例: 2025-08-01、令和7年8月1日）。")
    return first


def parse_date_span(text: str) -> tuple[date, date]:
    """First and last day meant by `text`: 2025-08-01, 2025/8/1, 20250801, 2025年8月, 令和7年8月1日,
    R7.8.1, 令和元年, H31.4.30 (full-width digits and spaces are fine).

    令和8年度, R8年度, 2026年度 (April 1 to March 31), and kanji numerals: 令和八年十二月五日.

    Raises InvalidDate with a message naming the problem (unknown format, no such day, a day
    outside its era such as 平成31年5月1日); the message quotes the input without control
    characters and cut to 30 characters.
    """
    cleaned = _KANJI_NUMBER.sub(_arabic, re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or "")).upper())
    text = _shown(text)
    if not cleaned:
        raise InvalidDate("日付を入力してください。")
    if fiscal := _fiscal_year(text, cleaned):
        return fiscal
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
                      "2025-08-01、2025/8/1、令和7年8月1日、R7.8.1、令和8年度 の形で入力してください。")


def _fiscal_year(text: str, cleaned: str) -> tuple[date, date] | None:
    """The 年度 named by `cleaned`, or None when it names none. Raises InvalidDate."""
    if match := _FISCAL_WESTERN.match(cleaned):
        year = int(match.group(1) or match.group(2))
    elif match := _FISCAL_JAPANESE.match(cleaned):
        era = _ERA_BY_INITIAL.get(match.group(1), match.group(1))
        _initial, era_first, era_last = ERAS[era]
        era_year = 1 if match.group(2) == "元" else int(match.group(2))
        year = era_first.year + era_year - 1
        # 平成31年度 and 令和元年度 are both FY2019: a 年度 belongs to an era when it begins in one of its years.
        if era_year < 1 or (era_last and year > era_last.year):
            raise InvalidDate(f"「{text}」は{era}の期間（{_era_period(era)}）にありません。")
    else:
        return None
    if not 1 <= year < date.max.year:
        raise InvalidDate(f"「{text}」という年度はありません。")
    return date(year, 4, 1), date(year + 1, 3, 31)


def _arabic(match: re.Match[str]) -> str:
    """十二 → 12, 二十五 → 25, 二千二十六 → 2026; 二〇二六 (digit by digit) → 2026; anything else
    (十十, 百千) is left as it is, and then fails to read as a date."""
    numeral = match.group(0)
    if _DIGITWISE.fullmatch(numeral):
        return "".join(str(_KANJI_DIGITS[c]) for c in numeral)
    if not _POSITIONAL.fullmatch(numeral):
        return numeral
    total = current = 0
    for c in numeral:
        if c in _KANJI_UNITS:
            total += (current or 1) * _KANJI_UNITS[c]
            current = 0
        else:
            current = current * 10 + _KANJI_DIGITS[c]
    return str(total + current)


def _shown(text: str) -> str:
    """The input as quoted in a message: no control or format characters, at most 30 characters."""
    visible = "".join(c for c in (text or "") if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))
    return visible if len(visible) <= _SHOWN_LENGTH else visible[:_SHOWN_LENGTH] + "…"


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
