"""Which contracts may be made electronically (R12).

Practice of the prefectures and cities that e-contract (e.g. 岡山県「電子契約運用について」): contracts
that law requires on paper, terms over 10 years, no fixed term or automatic renewal, contracts that
need the council's approval, and counterparties that do not want it stay on paper.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

PAPER_BY_LAW = "法令等の規定により書面による契約書の作成が必要な契約は、電子契約の対象外です。"
NO_END_DATE = "契約期間の終了日がない（期間の定めのない）契約は、電子契約の対象外です。"
AUTO_RENEWAL = "自動更新条項が設けられた契約は、電子契約の対象外です。"
COUNCIL_APPROVAL = "議会の議決を要する契約は、電子契約の対象外です。"
COUNTERPARTY_DECLINED = "契約相手方が電子契約による締結を希望していないため、電子契約の対象外です。"


def term_plus_retention_too_long(limit: int, retention_years: int) -> str:
    return (f"契約期間と保存期間（{retention_years}年）の合計が{limit}年を超えるため、電子契約の対象外です。"
            "保存期間の設定または契約期間を確認してください。")


def consent_missing(contract_type: str) -> str:
    return (f"{contract_type}の契約は、電子契約によることについて相手方の事前の承諾（建設業法第19条第3項）を"
            "記録してから送信してください。承諾した方・承諾日・承諾の方法を入力します。")


def term_too_long(max_years: int) -> str:
    return f"契約期間が{max_years}年を超える契約は、電子契約の対象外です。"


class ContractTerms(Protocol):
    @property
    def term_start(self) -> date | None: ...
    @property
    def term_end(self) -> date | None: ...
    @property
    def auto_renewal(self) -> bool: ...
    @property
    def paper_required_by_law(self) -> bool: ...
    @property
    def council_approval_required(self) -> bool: ...


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def ineligibility_reasons(
    contract: ContractTerms, *, counterparty_declined: bool = False, max_term_years: int = 10,
    retention_years: int = 0, max_term_plus_retention_years: int = 0,
) -> list[str]:
    """One Japanese reason per rule the contract breaks; empty when it may be e-contracted.

    With max_term_plus_retention_years above 0, the record of a contract must also be disposable within
    that many years of the term's start: kept `retention_years` after the term ends (R12)."""
    reasons = []
    if contract.paper_required_by_law:
        reasons.append(PAPER_BY_LAW)
    if contract.term_end is None:
        reasons.append(NO_END_DATE)
    elif contract.term_start is not None and contract.term_end >= add_years(contract.term_start, max_term_years):
        # A term from 2026-04-01 to 2036-03-31 is exactly ten years; one more day is over.
        reasons.append(term_too_long(max_term_years))
    if (max_term_plus_retention_years > 0 and contract.term_start is not None and contract.term_end is not None
            and add_years(contract.term_end, retention_years)
            > add_years(contract.term_start, max_term_plus_retention_years)):
        reasons.append(term_plus_retention_too_long(max_term_plus_retention_years, retention_years))
    if contract.auto_renewal:
        reasons.append(AUTO_RENEWAL)
    if contract.council_approval_required:
        reasons.append(COUNCIL_APPROVAL)
    if counterparty_declined:
        reasons.append(COUNTERPARTY_DECLINED)
    return reasons
