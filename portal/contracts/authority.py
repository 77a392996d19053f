"""The usage request binds the contract (R10): its 取引先 is a registered counterparty and its signer is
the 契約締結権限者 the accepted 利用申出書 named. Another signer, or a 取引先 without an accepted
申出書, is an exception with a reason that is kept on the contract and in the operation log (R11).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from portal.auth.models import Role, StaffUser
from portal.contracts.eligibility import COUNTERPARTY_DECLINED
from portal.counterparties.models import Counterparty, SigningAuthority
from portal.errors import DomainError
from portal.text import CONTROL_CHARACTERS_MESSAGE, has_control_characters

REASON_LIMIT = 500
APPLY_HINT = ("取引先に電子契約利用申出書（/apply）を提出してもらい、「利用申出」の画面で受け付けてから"
              "契約を作成してください。")


class CounterpartyNotRegistered(DomainError):
    """The 取引先 has no accepted 利用申出書, so nobody is registered to sign for it."""


class SignerNotRegistered(DomainError):
    """The counterparty signer is not the registered authority and no reason was given."""


class CounterpartyDeclined(DomainError):
    """The vendor declined e-contracts (電子契約を希望しない): the contract is made on paper."""


@dataclass(frozen=True)
class Binding:
    """What create_draft() needs: the counterparty and, per the counterparty signer, its authority."""

    counterparty: Counterparty
    authority: SigningAuthority | None  # the registered authority, if the signer is that person
    signer_override_reason: str  # why another person signs ("" when the authority signs)
    counterparty_override_reason: str  # an administrator's reason for an unregistered 取引先


def declined_message(counterparty: Counterparty) -> str:
    return (f"取引先「{counterparty.name}」: {COUNTERPARTY_DECLINED}この契約は紙の契約書で締結してください"
            f"（記録の理由: {counterparty.declined_reason or '記載なし'}）。取引先が電子契約に同意した場合は、"
            "取引先の画面で「電子契約を希望しない」を取り消してから作成します。")


def checked_reason(reason: str, what: str) -> str:
    text = (reason or "").strip()
    if len(text) > REASON_LIMIT:
        raise SignerNotRegistered(f"{what}は{REASON_LIMIT}文字以内で入力してください。")
    if has_control_characters(text):
        raise SignerNotRegistered(f"{what}に{CONTROL_CHARACTERS_MESSAGE}")
    return text


def same_person(authority: SigningAuthority, *, title: str, name: str, email: str) -> bool:
    """The signer as entered is the registered authority (spaces around, e-mail case ignored)."""
    return ((authority.title.strip(), authority.name.strip(), authority.email.strip().lower())
            == (title.strip(), name.strip(), email.strip().lower()))


def bind(session: Session, *, counterparty: Counterparty, chosen: bool, signer_title: str, signer_name: str,
         signer_email: str, signer_override_reason: str, counterparty_override_reason: str,
         actor: StaffUser) -> Binding:
    """Check the contract's 取引先 and counterparty signer against the registry.

    `chosen` is True when staff picked the counterparty from the registry (the new-contract form, the
    API's counterparty_id): then it must have an accepted 申出書, unless an administrator gives a reason.
    A counterparty matched by name (API, older callers) may be unregistered; once it has an authority,
    the signer is bound to it all the same. Raises CounterpartyDeclined, CounterpartyNotRegistered,
    SignerNotRegistered.
    """
    if counterparty.declined_e_contract:
        raise CounterpartyDeclined(declined_message(counterparty))
    unregistered_reason = checked_reason(counterparty_override_reason, "申出書のない取引先とする理由")
    signer_reason = checked_reason(signer_override_reason, "別の署名者にする理由")
    authority = counterparty.current_authority
    if authority is None:
        if chosen and not (actor.has_role(Role.ADMIN) and unregistered_reason):
            raise CounterpartyNotRegistered(
                f"取引先「{counterparty.name}」には受付済みの電子契約利用申出書がないため、選択できません。{APPLY_HINT}"
                "（やむを得ない場合は、管理者が理由を入力して作成します。）")
        return Binding(counterparty, None, "", unregistered_reason if chosen else "")
    if same_person(authority, title=signer_title, name=signer_name, email=signer_email):
        return Binding(counterparty, authority, "", "")
    if not signer_reason:
        raise SignerNotRegistered(
            f"相手方の署名者が、利用申出書で登録された契約締結権限者（{authority.title} {authority.name}"
            f" {authority.email}）と異なります。"
            "別の署名者にする場合は、その理由を入力してください（操作ログに残ります）。")
    return Binding(counterparty, None, signer_reason, "")


def find_counterparty(session: Session, counterparty_id: int) -> Counterparty:
    """Raises CounterpartyNotRegistered for an unknown id (the picker offers only existing ones)."""
    found = session.get(Counterparty, counterparty_id)
    if found is None:
        raise CounterpartyNotRegistered("選択した取引先が見つかりません。取引先を選び直してください。")
    return found
