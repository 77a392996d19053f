"""How people see dates and amounts: JST, 和暦 and 金1,234,567円 (R28, R29). Data stays ISO/UTC."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask

from portal.clock import JST

# (first day, era name); 令和 starts 2019-05-01, 平成 1989-01-08.
ERAS = [
    (date(2019, 5, 1), "令和"),
    (date(1989, 1, 8), "平成"),
    (date(1926, 12, 25), "昭和"),
]


def wareki(value: date | datetime | None) -> str:
    """令和7年8月1日 style; the first year of an era is 元年."""
    if value is None:
        return ""
    day = value.astimezone(JST).date() if isinstance(value, datetime) else value
    for start, name in ERAS:
        if day >= start:
            year = day.year - start.year + 1
            year_text = "元" if year == 1 else str(year)
            return f"{name}{year_text}年{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


def jst(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(JST).strftime(fmt) if value else ""


def jst_wareki(value: datetime | None, *, seconds: bool = False) -> str:
    """令和8年12月2日 14:05 (JST); with seconds 令和8年12月2日 14:05:09."""
    if value is None:
        return ""
    local = value.astimezone(JST)
    return f"{wareki(local)} {local:%H:%M:%S}" if seconds else f"{wareki(local)} {local:%H:%M}"


def yen(amount: int | None) -> str:
    return "" if amount is None else f"金{amount:,}円"


def filesize(size: int | None) -> str:
    """Bytes as people read them: 「812 KB」, 「1.4 MB」."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(wareki=wareki, jst=jst, jst_wareki=jst_wareki, yen=yen, filesize=filesize)
