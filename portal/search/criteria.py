"""Search criteria parsed from a query string: the screen, the exports and the JSON API share it.

Every filter is optional and they combine with AND (電帳法施行規則 2条6項6号: 取引年月日, 取引金額
and 取引先, with ranges, in any combination).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from portal.contracts.models import ContractStatus
from portal.errors import DomainError
from portal.parsing import InvalidDate, parse_amount, parse_date_span
from portal.text import too_long_message


class AmountBasis(StrEnum):
    TAX_INCLUDED = "incl"
    TAX_EXCLUDED = "excl"

    @property
    def label(self) -> str:
        return "税込" if self is AmountBasis.TAX_INCLUDED else "税抜"


SORT_KEYS = {
    "date": "取引年月日",
    "amount": "金額",
    "counterparty": "取引先",
    "business": "業務名",
    "number": "契約番号",
    "completed": "締結日時",
}


# What the search screen and its exports show when no 状態 is chosen: drafts and cancelled contracts
# are work in progress or void, not records of a transaction; a user asks for them by ticking them.
SCREEN_STATUSES = tuple(s for s in ContractStatus if s not in (ContractStatus.DRAFT, ContractStatus.CANCELLED))


class InvalidCriteria(DomainError):
    """A filter could not be read; `errors` maps the query-string key to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class SearchCriteria:
    date_from: date | None = None
    date_to: date | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    amount_basis: AmountBasis = AmountBasis.TAX_INCLUDED
    counterparty: str = ""
    business_name: str = ""
    number: str = ""
    contract_type: str = ""
    statuses: tuple[ContractStatus, ...] = ()
    department_id: int | None = None
    include_history: bool = False  # also match values replaced by a metadata correction
    sort: str = "date"
    descending: bool = True
    page: int = 1
    per_page: int = 50
    # Keyset paging: the (value in the sort order, id) of the row the page starts after / ends before,
    # and the total counted on the first page, carried by the page links instead of recounting
    # (「1000+」 when only counted up to the limit).
    after: tuple[Any, int] | None = None
    before: tuple[Any, int] | None = None
    total: int | None = None
    total_is_lower_bound: bool = False
    texts: dict[str, str] = field(default_factory=dict, compare=False)  # the raw input, for the form

    def with_page(self, page: int) -> SearchCriteria:
        return replace(self, page=page, after=None, before=None)



MAX_SEARCH_TEXT = 200
SEARCH_LABELS = {"date_from": "取引年月日（から）", "date_to": "取引年月日（まで）", "amount_min": "金額（以上）",
                 "amount_max": "金額（以下）", "counterparty": "取引先", "business_name": "業務名",
                 "number": "契約番号", "contract_type": "契約の種類"}


def parse_criteria(args: Mapping[str, Any], *, per_page: int = 50, max_per_page: int = 500,
                   default_statuses: tuple[ContractStatus, ...] = ()) -> SearchCriteria:
    """Read the query-string keys date_from, date_to, amount_min, amount_max, amount_basis (incl|excl),
    counterparty, business_name, number, status (repeatable or comma-separated), department, history,
    sort, order (asc|desc), page, per_page. Without any status, `default_statuses` apply (the screen
    passes SCREEN_STATUSES; the API none, i.e. every status).

    Raises InvalidCriteria listing every key that could not be read (dates in ISO or 和暦).
    """
    get = args.get
    texts = {key: str(get(key) or "").strip() for key in (
        "date_from", "date_to", "amount_min", "amount_max", "counterparty", "business_name", "number",
        "contract_type")}
    errors: dict[str, str] = {
        key: too_long_message(SEARCH_LABELS[key], MAX_SEARCH_TEXT) for key, value in texts.items()
        if len(value) > MAX_SEARCH_TEXT}
    if errors:
        raise InvalidCriteria(errors)
    date_from = _date_bound(texts["date_from"], "date_from", 0, errors)
    date_to = _date_bound(texts["date_to"], "date_to", 1, errors)
    if date_from and date_to and date_from > date_to:
        errors["date_to"] = "取引年月日の「まで」が「から」より前になっています。"
    amount_min = _amount(texts["amount_min"], "amount_min", errors)
    amount_max = _amount(texts["amount_max"], "amount_max", errors)
    if amount_min is not None and amount_max is not None and amount_min > amount_max:
        errors["amount_max"] = "金額の上限が下限より小さくなっています。"
    basis_text = str(get("amount_basis") or AmountBasis.TAX_INCLUDED.value)
    basis = AmountBasis(basis_text) if basis_text in AmountBasis._value2member_map_ else AmountBasis.TAX_INCLUDED
    statuses = _statuses(args, errors) or default_statuses
    department_id = _positive_int(get("department"), "department", errors)
    sort = str(get("sort") or "date")
    page = _positive_int(get("page"), "page", errors) or 1
    size = min(_positive_int(get("per_page"), "per_page", errors) or per_page, max_per_page)
    sort = sort if sort in SORT_KEYS else "date"
    after, before = _cursor(get("after"), sort, errors), _cursor(get("before"), sort, errors)
    total_text = str(get("total") or "")
    lower_bound = total_text.endswith("+")
    total = _positive_int(total_text[:-1] if lower_bound and len(total_text) > 1 else get("total"), "total", errors,
                          minimum=0)
    if errors:
        raise InvalidCriteria(errors)
    return SearchCriteria(
        date_from=date_from, date_to=date_to, amount_min=amount_min, amount_max=amount_max, amount_basis=basis,
        counterparty=texts["counterparty"], business_name=texts["business_name"], number=texts["number"],
        contract_type=texts["contract_type"],
        statuses=statuses, department_id=department_id,
        include_history=str(get("history") or "") in ("1", "on", "true"),
        sort=sort, descending=str(get("order") or "desc") != "asc",
        page=page, per_page=size, after=after, before=None if after else before, total=total,
        total_is_lower_bound=lower_bound and total is not None, texts=texts,
    )


_CURSOR_ID = re.compile(r"\d{1,18}")
_AMOUNT = re.compile(r"-?\d{1,18}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00")


def _cursor(value: Any, sort: str, errors: dict[str, str]) -> tuple[Any, int] | None:
    """「2026-04-01.123」, 「1100000.123」, 「株式会社ケイヤク商事.123」, 「2026-04-01T03:00:00+00:00.123」,
    「null.123」 (no 締結日時) from a page link: the value in the sort order and the id of the row a page
    continues from (service.Page.cursor writes them)."""
    if value in (None, ""):
        return None
    text = str(value)
    head, _, tail = text.rpartition(".")
    if _CURSOR_ID.fullmatch(tail) and len(head) <= MAX_SEARCH_TEXT:
        try:
            if sort == "date" and _DATE.fullmatch(head):
                return date.fromisoformat(head), int(tail)
            if sort == "amount" and _AMOUNT.fullmatch(head):
                return int(head), int(tail)
            if sort == "completed" and head == "null":
                return None, int(tail)
            if sort == "completed" and _UTC_TIME.fullmatch(head):
                return datetime.fromisoformat(head), int(tail)
            if sort in ("counterparty", "business", "number") and not any(
                    unicodedata.category(c) == "Cc" for c in head):
                return head, int(tail)
        except ValueError:
            pass
    errors["page"] = "ページの指定を読み取れませんでした。最初のページから表示し直してください。"
    return None


def _date_bound(text: str, key: str, end: int, errors: dict[str, str]) -> date | None:
    if not text:
        return None
    try:
        return parse_date_span(text)[end]
    except InvalidDate as exc:
        errors[key] = exc.message
        return None


def _amount(text: str, key: str, errors: dict[str, str]) -> int | None:
    if not text:
        return None
    try:
        return parse_amount(text)
    except ValueError:
        errors[key] = f"金額「{text}」は円単位の数字で入力してください（例: 1,100,000）。"
        return None


def _statuses(args: Mapping[str, Any], errors: dict[str, str]) -> tuple[ContractStatus, ...]:
    raw = args.getlist("status") if hasattr(args, "getlist") else [args.get("status") or ""]
    values = [v.strip() for item in raw for v in str(item).split(",") if v.strip()]
    known = ContractStatus._value2member_map_
    unknown = [v for v in values if v not in known]
    if unknown:
        errors["status"] = f"状態 {', '.join(unknown)} はありません。"
    return tuple(ContractStatus(v) for v in values if v in known)


def _positive_int(value: Any, key: str, errors: dict[str, str], *, minimum: int = 1) -> int | None:
    if value in (None, ""):
        return None
    text = str(value)
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else minimum - 1
    if number < minimum:
        errors[key] = f"{key} には {minimum} 以上の整数を指定してください。"
        return None
    return number
