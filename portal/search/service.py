"""search_contracts(): the 電帳法 search, scoped to what the actor may see.

電子帳簿保存法施行規則 2条6項6号 (電子取引 via 4条1項): records must be searchable by 取引年月日,
取引金額 and 取引先, by date and amount ranges, and by any combination of two or more of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import operators
from sqlalchemy.sql.visitors import InternalTraversal

from portal.auth.models import Role, StaffUser
from portal.contracts.models import Contract, ContractDocument, ContractStatus, DocumentRevision, Party
from portal.counterparties.normalize import normalize_name
from portal.preservation.models import MetadataCorrection, VerificationResult
from portal.search import fulltext
from portal.search.criteria import AmountBasis, SearchCriteria
from portal.search.models import CounterpartyName

# Orders whose page links continue from a row (keyset): every order of the screen.
KEYSET_SORTS = frozenset({"date", "amount", "counterparty", "business", "number", "completed"})
# Orders with an index of their own but none within a department (SQLite would sort the
# department's rows, some 50,000 at a million contracts, rather than walk the order's index).
UNSCOPED_ORDERS = frozenset({"counterparty", "business", "number", "completed"})
# A needle matching more distinct names than this is not specific: the contracts are scanned in
# page order instead (they are found quickly) than listed by name.
MAX_MATCHED_NAMES = 2000
# Names carried by at least this many contracts are common: a page finds its rows sooner by walking
# the page order and testing the name than by taking every contract of those names and sorting
# them (the cost of the one grows with the matches, of the other with their rarity; bench/search.py).
COMMON_NAME_CONTRACTS = 5000


@dataclass(frozen=True)
class NameMatch:
    """The normalised names containing the counterparty needle (None: more than MAX_MATCHED_NAMES)."""

    needle: str
    names: list[str] | None
    is_common: bool = False  # at least COMMON_NAME_CONTRACTS contracts match: set by the count


@dataclass(frozen=True)
class Page:
    items: Sequence[Contract]
    total: int
    page: int
    per_page: int
    keyset: bool = False  # page links continue from a row (KEYSET_SORTS) and carry the total
    sort: str = "date"
    amount_basis: AmountBasis = AmountBasis.TAX_INCLUDED
    total_is_lower_bound: bool = False  # counted up to the limit only: there are more than `total`
    more: bool = False  # a row follows this page (how page links are offered when the total is a lower bound)

    @property
    def next_after(self) -> str | None:
        return self.cursor(self.items[-1]) if self.keyset and self.items and self.has_next else None

    @property
    def previous_before(self) -> str | None:
        return self.cursor(self.items[0]) if self.keyset and self.items and self.has_previous else None

    def cursor(self, contract: Contract) -> str:
        """「2026-04-01.123」: the row's value in the page's order and its id (criteria._cursor reads it);
        「null.123」 for a contract without 締結日時."""
        value = sort_value(contract, self.sort, self.amount_basis)
        text = "null" if value is None else value.isoformat() if isinstance(value, date) else value
        return f"{text}.{contract.id}"

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.more if self.total_is_lower_bound else self.page < self.pages

    @property
    def first_index(self) -> int:
        return 0 if not self.items else (self.page - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        return (self.page - 1) * self.per_page + len(self.items)


def sort_value(contract: Contract, sort: str, amount_basis: AmountBasis) -> Any:
    if sort == "amount":
        return contract.tax_excluded_amount if amount_basis is AmountBasis.TAX_EXCLUDED else contract.amount
    return {"date": contract.transaction_date, "counterparty": contract.counterparty_name_normalized,
            "business": contract.business_name, "number": contract.number,
            "completed": contract.completed_at}[sort]


@dataclass(frozen=True)
class ExportRow:
    """One line of the CSV: a document of a contract (a contract without documents gives one line)."""

    contract_id: int
    transaction_date: date
    amount: int
    tax_amount: int
    counterparty_name: str
    business_name: str
    number: str
    filename: str | None
    sha256: str | None
    storage_key: str | None
    document_id: int | None
    revision_number: int | None
    completed_at: datetime | None
    timestamp_at: datetime | None
    contract_type: str = ""
    status: ContractStatus | None = None
    amends_number: str | None = None  # 変更契約: the original's 契約番号
    certificate_key: str | None = None  # 合意締結証明書 of a completed contract
    certificate_sha256: str | None = None

    @property
    def tax_excluded_amount(self) -> int:
        return self.amount - self.tax_amount


def sees_everything(actor: StaffUser) -> bool:
    return actor.role in (Role.ADMIN, Role.AUDITOR)


def search_contracts(session: Session, criteria: SearchCriteria, *, actor: StaffUser,
                     count_limit: int | None = None) -> Page:
    """One page of the contracts matching every given filter, within the actor's scope.

    Staff and approvers see their department's contracts and those they sign; auditors and admins
    see all. With `count_limit`, at most that many rows are counted: past it the total is a lower
    bound (the screen shows 「1,000 件以上」) and the pages are offered one after another; without
    it (the API, the backup probes) the total is exact. A page past the end is clamped to the last.

    In the orders of KEYSET_SORTS a page reached by a page link continues from the row before it
    (deep pages cost what the first does), and the total comes with the link instead of being
    counted again. A page number without such a row (a bookmark) is reached by OFFSET.
    """
    match = _name_match(session, criteria)
    scopes = _scopes(session, actor)
    total, lower_bound = criteria.total or 0, criteria.total_is_lower_bound
    if criteria.total is None or (match is not None and match.names):
        # Listed names: the count (by their index) also tells whether they are common (NameMatch).
        probe = None if count_limit is None or not (match and match.names) else \
            max(count_limit, COMMON_NAME_CONTRACTS)
        counted, capped = _count(session, scopes, _filters(session, criteria, match=match), probe or count_limit)
        if match is not None and match.names:
            match = replace(match, is_common=counted >= COMMON_NAME_CONTRACTS)
        if criteria.total is None:
            total, lower_bound = (count_limit, True) if count_limit is not None and (
                capped or counted > count_limit) else (counted, False)
    filters = _filters(session, criteria, match=match, in_page_order=True)
    is_sqlite = session.get_bind().dialect.name == "sqlite"
    page_scopes = _scopes(session, actor, test_department=True) if is_sqlite and criteria.sort in UNSCOPED_ORDERS \
        else scopes
    # Rare names: their few contracts are taken by the names' index and sorted. SQLite would rather
    # walk an index in the page order (no sort) through a department's or a date range's rows, so
    # on SQLite the order is not one an index can give.
    sort_by_index = not (is_sqlite and match is not None and bool(match.names) and not match.is_common)
    keyset = criteria.sort in KEYSET_SORTS
    page = criteria.page if lower_bound else min(criteria.page, max(1, math.ceil(total / criteria.per_page)))
    offset, walk, cursor = (page - 1) * criteria.per_page, criteria, None
    if keyset and (criteria.after or criteria.before):
        cursor = criteria.after or criteria.before
        if not criteria.after:  # 前へ: walk back from the page's first row, then turn the rows round
            walk = replace(criteria, descending=not criteria.descending)
        offset, page = 0, criteria.page
    reverse = walk is not criteria
    # An amount range on SQLite: from a row on, the planner would walk the order's index through the
    # rows before the range's next matches (one in hundreds); the range's index and a sort find them at once.
    amount_drives = is_sqlite and (criteria.amount_min is not None or criteria.amount_max is not None) and \
        criteria.sort != "amount" and not (match is not None and match.names)
    runs = _runs(walk, cursor, by_index=sort_by_index, cursor_by_index=not amount_drives)
    rows = _page_rows(session, page_scopes, filters, runs, _order(walk, by_index=sort_by_index), criteria, offset)
    if not rows and lower_bound and offset:  # a bookmarked page number past the end
        exact, _ = _count(session, scopes, _filters(session, criteria, match=match), None)
        return search_contracts(session, replace(criteria.with_page(criteria.page), total=exact,
                                                 total_is_lower_bound=False), actor=actor)
    items, more = rows[:criteria.per_page], len(rows) > criteria.per_page
    if reverse:
        items.reverse()
        more = True  # the page this one was reached from
    return Page(items=items, total=total, page=page, per_page=criteria.per_page, keyset=keyset, sort=criteria.sort,
                amount_basis=criteria.amount_basis, total_is_lower_bound=lower_bound, more=more)


def _count(session: Session, scopes: list[list[ColumnElement[bool]]], filters: list[ColumnElement[bool]],
           limit: int | None) -> tuple[int, bool]:
    """(the number of matching rows, whether it is only a lower bound because more than `limit` match)."""
    total = 0
    for scope in scopes:
        query = select(literal(1)).select_from(Contract).where(*scope, *filters)
        if limit is not None:
            query = query.limit(limit + 1 - total)
        total += session.scalar(select(func.count()).select_from(query.subquery())) or 0
        if limit is not None and total > limit:
            return limit, True
    return total, False


def _page_rows(session: Session, scopes: list[list[ColumnElement[bool]]], filters: list[ColumnElement[bool]],
               runs: list[list[ColumnElement[bool]]], order: list[Any], criteria: SearchCriteria,
               offset: int) -> list[Contract]:
    """The page's rows and one more, when there is one (whether a next page exists)."""
    size = criteria.per_page + 1
    parts = [(rank, [*scope, *run]) for rank, run in enumerate(runs) for scope in scopes]
    if len(parts) == 1:
        conditions = [*parts[0][1], *filters]
        # The page's ids first: where an index holds the filters and the order (an amount range's
        # dates, the names' dates), the database sorts the matches inside it without reading them
        # (index-only), and then reads only the rows shown.
        page_ids = select(Contract.id).where(*conditions).order_by(*order).limit(size).offset(offset).subquery()
        return list(session.scalars(select(Contract).join(page_ids, page_ids.c.id == Contract.id).order_by(*order)))
    # Each scope (and run, see _runs) walks its own ordered index; only their first pages are merged
    # and sorted, run after run.
    sort_column = order[0].element
    selects = [select(Contract.id.label("id"), sort_column.label("k"), literal(rank).label("r"))
               .where(*conditions, *filters).order_by(*order).limit(offset + size).subquery()
               for rank, conditions in parts]
    merged = union_all(*(select(part.c.id, part.c.k, part.c.r) for part in selects)).subquery()
    outer = [merged.c.r, merged.c.k.desc(), merged.c.id.desc()] if _is_desc(order[0]) \
        else [merged.c.r, merged.c.k.asc(), merged.c.id.asc()]
    ids = list(session.scalars(select(merged.c.id).order_by(*outer).limit(size).offset(offset)))
    rows = {c.id: c for c in session.scalars(select(Contract).where(Contract.id.in_(ids)))}
    return [rows[i] for i in ids]


def _is_desc(clause: Any) -> bool:
    return getattr(clause, "modifier", None) is operators.desc_op


def _scopes(session: Session, actor: StaffUser, *, test_department: bool = False) -> list[list[ColumnElement[bool]]]:
    """What the actor may see, as disjoint alternatives that each keep an index order.

    `test_department`: the department is tested, not looked up by index (not_indexed, SQLite).

    `department = ? OR id IN (contracts the actor signs)` would make the database sort the whole
    department; the contracts of other departments that the actor signs are rare, so they are a
    second alternative only when there are any.
    """
    if sees_everything(actor):
        return [[]]
    department: Any = not_indexed(Contract.department_id) if test_department else Contract.department_id
    own = department == actor.department_id
    signs = select(Party.contract_id).where(Party.staff_user_id == actor.id)
    elsewhere = and_(Contract.department_id != actor.department_id, Contract.id.in_(signs))
    if session.scalar(select(exists().where(Party.staff_user_id == actor.id, Party.contract_id == Contract.id,
                                            Contract.department_id != actor.department_id))):
        return [[own], [elsewhere]]
    return [[own]]


def count_contracts(session: Session, criteria: SearchCriteria, *, actor: StaffUser) -> int:
    return session.scalar(select(func.count()).select_from(Contract).where(*_conditions(session, criteria, actor))) or 0


def export_rows(session: Session, criteria: SearchCriteria, *, actor: StaffUser,
                batch_size: int = 1000) -> Iterator[ExportRow]:
    """Every matching contract's documents in search order, read in batches (flat memory).

    The file is each document's current revision (the signed, timestamped one once completed);
    the timestamp time is the one read from the file when it was stored (completion, archive
    timestamp), else the one found by the latest batch verification of that revision, if any.
    """
    current = (
        select(DocumentRevision.document_id, func.max(DocumentRevision.number).label("number"))
        .group_by(DocumentRevision.document_id)
        .subquery()
    )
    amended = aliased(Contract)
    checked = (
        select(VerificationResult.revision_id, func.max(VerificationResult.timestamp_at).label("timestamp_at"))
        .group_by(VerificationResult.revision_id)
        .subquery()
    )
    query = (
        select(
            Contract.id, Contract.transaction_date, Contract.amount, Contract.tax_amount,
            Contract.counterparty_name, Contract.business_name, Contract.number,
            ContractDocument.filename, DocumentRevision.sha256, DocumentRevision.storage_key,
            ContractDocument.id, DocumentRevision.number, Contract.completed_at,
            func.coalesce(DocumentRevision.timestamp_at, checked.c.timestamp_at),
            Contract.contract_type, Contract.status, amended.number, Contract.certificate_key,
            Contract.certificate_sha256,
        )
        .outerjoin(amended, amended.id == Contract.amends_id)
        .outerjoin(ContractDocument, ContractDocument.contract_id == Contract.id)
        .outerjoin(current, current.c.document_id == ContractDocument.id)
        .outerjoin(DocumentRevision, and_(DocumentRevision.document_id == ContractDocument.id,
                                          DocumentRevision.number == current.c.number))
        .outerjoin(checked, checked.c.revision_id == DocumentRevision.id)
        .where(*_conditions(session, criteria, actor))
        .order_by(*_full_order(criteria), ContractDocument.position)
        .execution_options(yield_per=batch_size)
    )
    for row in session.execute(query):
        yield ExportRow(*row)


def _conditions(session: Session, criteria: SearchCriteria, actor: StaffUser) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not sees_everything(actor):
        signed_by_actor = select(Party.contract_id).where(Party.staff_user_id == actor.id)
        conditions.append(or_(Contract.department_id == actor.department_id, Contract.id.in_(signed_by_actor)))
    return conditions + _filters(session, criteria)


def _filters(session: Session, criteria: SearchCriteria, *, match: NameMatch | None = None,
             in_page_order: bool = False) -> list[ColumnElement[bool]]:
    """The criteria's conditions; `in_page_order` for the page's rows (not the count), see NameMatch."""
    conditions: list[ColumnElement[bool]] = []
    history = criteria.include_history
    if criteria.counterparty:
        match = match or _name_match(session, criteria)
    # SQLite's planner guesses that any date or amount range keeps few rows and takes that index
    # whatever the other conditions; the listed names' index holds dates and amounts itself. So on
    # SQLite the ranges are only tested when the names' index drives (the count, rare names), and
    # only the range of the page's own order may drive when the page order is walked (common names).
    names_listed = match is not None and bool(match.names) and session.get_bind().dialect.name == "sqlite"
    by_name = names_listed and not (in_page_order and match is not None and match.is_common)
    date_column = not_indexed(Contract.transaction_date) if names_listed and (
        by_name or criteria.sort != "date") else Contract.transaction_date
    amount_column = not_indexed(Contract.amount) if names_listed and (
        by_name or criteria.sort != "amount") else Contract.amount
    if criteria.date_from or criteria.date_to:
        conditions.append(_with_history(
            _between(date_column, criteria.date_from, criteria.date_to),
            "transaction_date", _between(MetadataCorrection.old_date, criteria.date_from, criteria.date_to),
            history))
    if criteria.amount_min is not None or criteria.amount_max is not None:
        conditions.append(_amount_condition(criteria, amount_column))
    if match is not None:
        conditions.append(_with_history(
            _counterparty_condition(session, match, in_page_order), "counterparty_name",
            MetadataCorrection.old_normalized.contains(match.needle, autoescape=True), history))
    if criteria.business_name:
        needle = criteria.business_name
        conditions.append(_with_history(
            Contract.business_name.contains(needle, autoescape=True), "business_name",
            MetadataCorrection.old_value.contains(needle, autoescape=True), history))
    if criteria.number:
        conditions.append(func.upper(Contract.number).contains(criteria.number.upper(), autoescape=True))
    if criteria.contract_type:
        conditions.append(Contract.contract_type == criteria.contract_type)
    if criteria.statuses:
        conditions.append(Contract.status.in_(criteria.statuses))
    if criteria.department_id:
        conditions.append(Contract.department_id == criteria.department_id)
    return conditions


class not_indexed(ColumnElement[Any]):  # noqa: N801 - reads like the SQL functions it sits among
    """A column the planner may test but not look up by: SQLite's unary plus; elsewhere the column."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012 - SQLAlchemy reads it

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(not_indexed)
def _compile_not_indexed(element: not_indexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(not_indexed, "sqlite")
def _compile_not_indexed_sqlite(element: not_indexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))


def _name_match(session: Session, criteria: SearchCriteria) -> NameMatch | None:
    if not criteria.counterparty:
        return None
    needle = normalize_name(criteria.counterparty)
    names = list(session.scalars(select(CounterpartyName.name_normalized)
                                 .where(CounterpartyName.name_normalized.contains(needle, autoescape=True))
                                 .limit(MAX_MATCHED_NAMES + 1)))
    if len(names) > MAX_MATCHED_NAMES:
        return NameMatch(needle, None)
    if not names:
        return NameMatch(needle, [])
    return NameMatch(needle, names)


def _counterparty_condition(session: Session, match: NameMatch, in_page_order: bool) -> ColumnElement[bool]:
    """The contracts whose normalised name contains the needle: by the names that contain it, or
    through the substring index when there are too many names to list."""
    if match.names is None:
        dialect = session.get_bind().dialect.name
        return fulltext.name_contains(Contract.id, Contract.counterparty_name_normalized, match.needle, dialect)
    if not match.names:
        return false()
    column: Any = Contract.counterparty_name_normalized
    walked = in_page_order and match.is_common
    if walked:
        column = column.concat("")  # not indexable: the planner walks the page order instead
    if session.get_bind().dialect.name == "postgresql":  # one parameter, not hundreds
        names = _names_array(match.names)
        if walked:
            return cast(ColumnElement[bool], column == any_(names))
        # Joined to the array's elements: for `= ANY` of a thousand names the planner costs every
        # index name by name (10-20 ms, longer than the search itself).
        return cast(ColumnElement[bool], column.in_(select(func.unnest(names))))
    return cast(ColumnElement[bool], column.in_(match.names))


_NAME_SEPARATOR = "\x1f"


def _names_array(names: list[str]) -> ColumnElement[Any]:
    """The names as a PostgreSQL array, sent as one string that the database splits: psycopg takes
    some 6 ms to write out an array of 1,500 names, longer than the query that reads it."""
    if any(_NAME_SEPARATOR in name for name in names):
        return literal(names, ARRAY(String))
    return func.string_to_array(literal(_NAME_SEPARATOR.join(names), String), literal(_NAME_SEPARATOR, String),
                                type_=ARRAY(String))


def _amount_condition(criteria: SearchCriteria, amount: Any) -> ColumnElement[bool]:
    # R22: the tax-exclusive amount is derived (税込 - 税額), so both bases search the same rows.
    if criteria.amount_basis is AmountBasis.TAX_EXCLUDED:
        return _between(Contract.amount - Contract.tax_amount, criteria.amount_min, criteria.amount_max)
    return _with_history(
        _between(amount, criteria.amount_min, criteria.amount_max), "amount",
        _between(MetadataCorrection.old_number, criteria.amount_min, criteria.amount_max),
        criteria.include_history)


def _between(column: Any, low: Any, high: Any) -> ColumnElement[bool]:
    parts = []
    if low is not None:
        parts.append(column >= low)
    if high is not None:
        parts.append(column <= high)
    return and_(*parts)


def _with_history(current: ColumnElement[bool], field: str, old: ColumnElement[bool],
                  include_history: bool) -> ColumnElement[bool]:
    if not include_history:
        return current
    corrected = exists().where(MetadataCorrection.contract_id == Contract.id, MetadataCorrection.field == field, old)
    return or_(current, corrected)


def _sort_column(criteria: SearchCriteria) -> Any:
    amount = Contract.amount - Contract.tax_amount if criteria.amount_basis is AmountBasis.TAX_EXCLUDED \
        else Contract.amount
    return {
        "date": Contract.transaction_date,
        "amount": amount,
        "counterparty": Contract.counterparty_name_normalized,
        "business": Contract.business_name,
        "number": Contract.number,
        "completed": Contract.completed_at,
    }[criteria.sort]


def _runs(criteria: SearchCriteria, cursor: tuple[Any, int] | None, *, by_index: bool,
          cursor_by_index: bool = True) -> list[list[ColumnElement[bool]]]:
    """The page order as runs of rows that each walk one index, with the condition that keeps the
    rows past `cursor` (the row the page continues from, in `criteria`'s direction), tested but not
    looked up by unless `cursor_by_index`.

    締結日時 is NULL until completion: those contracts come after every completion time in ascending
    order and before them in descending order (PostgreSQL's place for NULL, made explicit so that
    SQLite orders them alike), each run walking the (completed_at, id) index, which neither database
    could do for one order with NULL placed against its own default.
    """
    column, tie = _sort_column(criteria), cast(Any, Contract.id)

    def past(key: Any, value: Any) -> ColumnElement[bool]:
        return cast(ColumnElement[bool], key < value if criteria.descending else key > value)

    def past_cursor(value: Any, row_id: int) -> ColumnElement[bool]:
        key = tuple_(column, tie) if cursor_by_index else tuple_(not_indexed(column), not_indexed(tie))
        return past(key, tuple_(literal(value, column.type), literal(row_id)))

    if criteria.sort != "completed":
        return [[]] if cursor is None else [[past_cursor(*cursor)]]
    tested = column if by_index else not_indexed(column)
    done: list[ColumnElement[bool]] = [tested.is_not(None)]
    pending: list[ColumnElement[bool]] = [tested.is_(None)]
    runs = [pending, done] if criteria.descending else [done, pending]
    if cursor is None:
        return runs
    value, row_id = cursor
    if value is None:
        pending.append(past(tie, row_id))
    else:
        done.append(past_cursor(value, row_id))
    continuing = pending if value is None else done  # the run the cursor's row is in, and the runs after it
    return runs if runs[0] is continuing else runs[1:]


def _full_order(criteria: SearchCriteria) -> list[Any]:
    """The page order as one ORDER BY (exports, bench/search.py), NULL 締結日時 placed as _runs places it."""
    if criteria.sort != "completed":
        return _order(criteria)
    pending = Contract.completed_at.is_(None)
    return [pending.desc() if criteria.descending else pending.asc(), *_order(criteria)]


def _order(criteria: SearchCriteria, *, by_index: bool = True) -> list[Any]:
    column, tie = _sort_column(criteria), cast(Any, Contract.id)
    if not by_index:
        column, tie = not_indexed(column), not_indexed(tie)
    if criteria.descending:
        return [column.desc(), tie.desc()]
    return [column.asc(), tie.asc()]


def build_query(session: Session, criteria: SearchCriteria, actor: StaffUser) -> Select[tuple[Contract]]:
    """The unpaginated query, for callers that page or stream themselves (bench/search.py counts with it)."""
    return select(Contract).where(*_conditions(session, criteria, actor)).order_by(*_full_order(criteria))
