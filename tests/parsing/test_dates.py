"""Dates typed by people: 年度 ranges, kanji numerals, and hostile input refused in Japanese."""

from __future__ import annotations

from datetime import date

import pytest

from portal.parsing import InvalidDate, parse_date, parse_date_span

FY2026 = (date(2026, 4, 1), date(2027, 3, 31))


@pytest.mark.parametrize("text", ["令和8年度", "R8年度", "r8年度", "2026年度", "２０２６年度", "令和 8 年度",
                                  "令和八年度", "FY2026", "二〇二六年度"])
def test_a_fiscal_year_is_april_to_march(text):
    assert parse_date_span(text) == FY2026


@pytest.mark.parametrize(("text", "expected"), [
    ("令和元年度", (date(2019, 4, 1), date(2020, 3, 31))),
    ("平成31年度", (date(2019, 4, 1), date(2020, 3, 31))),  # the same 年度, named by either era
    ("H30年度", (date(2018, 4, 1), date(2019, 3, 31))),
    ("昭和64年度", (date(1989, 4, 1), date(1990, 3, 31))),
])
def test_fiscal_years_across_the_era_boundary(text, expected):
    assert parse_date_span(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("令和八年十二月五日", date(2026, 12, 5)),
    ("令和元年五月一日", date(2019, 5, 1)),
    ("令和七年八月三十一日", date(2025, 8, 31)),
    ("平成三十一年四月三十日", date(2019, 4, 30)),
    ("二〇二六年四月一日", date(2026, 4, 1)),
    ("二千二十六年十月十日", date(2026, 10, 10)),
])
def test_kanji_numerals(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("平成32年度", "平成の期間"),
    ("令和0年度", "令和の期間"),
    ("令和八年十三月一日", "という日付はありません"),
    ("令和八年二月三十日", "という日付はありません"),
    ("9999年度", "という年度はありません"),
    ("0000年度", "という年度はありません"),
    ("年度", "読み取れません"),
    ("令和8年度末", "読み取れません"),
    ("きのう", "読み取れません"),
])
def test_what_cannot_be_read_is_refused_in_japanese(text, message):
    with pytest.raises(InvalidDate) as caught:
        parse_date_span(text)
    assert message in caught.value.message


@pytest.mark.parametrize("hostile", [
    "\x00\x07令和8年度\x1b[2J", "<script>alert('x')</script>", "=cmd|'/c calc'!A1", "令和" + "八" * 10_000 + "年度",
    "1" * 100_000, "\u202e度年8和令", "\ud800", "十" * 9, "十十", "百千年度", "R" + "9" * 50 + "年度",
])
def test_hostile_input_is_refused_with_a_short_clean_message(hostile):
    with pytest.raises(InvalidDate) as caught:
        parse_date_span(hostile)
    message = caught.value.message
    assert len(message) < 150
    assert not any(ord(c) < 0x20 or c in "\u202e\ud800" for c in message)
