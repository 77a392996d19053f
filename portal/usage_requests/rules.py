"""Rules for the addresses and numbers on a 電子契約利用申出書, shared by forms, services and contracts.

The 別記様式 says 「フリーメールアドレスは不可とします。」: a signing authority must use an address
of their organisation (R11). is_free_mail() is the one place that decides it; the WTForms
validators below and other packages (contracts: the counterparty signer) call it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import idna
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from wtforms import Field, Form
from wtforms.validators import StopValidation, ValidationError

from portal.errors import DomainError

FREE_MAIL_MESSAGE = (
    "フリーメールアドレスは登録できません。所属する会社・団体のメールアドレスを入力してください。"
)
INVALID_EMAIL_MESSAGE = "メールアドレスの形式が正しくありません（例: keiyaku@example.co.jp）。"
INVALID_PHONE_MESSAGE = "電話番号は数字とハイフンで入力してください（例: 086-224-2111）。"

_PHONE = re.compile(r"^\+?[0-9]+(?:[-()][0-9]+|[0-9])*\)?$")
_PHONE_DASHES = str.maketrans({"ー": "-", "−": "-", "‐": "-", "‑": "-", "–": "-", "—": "-", "―": "-"})


class InvalidEmail(DomainError):
    """The address is not a syntactically valid e-mail address (or its domain does not exist)."""


class FreeMailRefused(DomainError):
    """The address belongs to a free-mail provider (R11)."""


def ascii_domain(domain: str) -> str:
    """Domain in its comparable form: NFKC/UTS-46 mapped, A-labels (punycode), lower case, no final dot.

    "ＧＭＡＩＬ.com.", "Gmail。com" and "gmail.com" all give "gmail.com"; "例え.jp" gives
    "xn--r8jz45g.jp". A domain idna refuses is only lower-cased, so it still compares sanely.
    """
    text = unicodedata.normalize("NFKC", domain or "").strip().rstrip(".").rstrip("。")
    try:
        encoded = idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError:
        encoded = text
    return encoded.lower().rstrip(".")


def domain_of(address: str) -> str:
    """The part after the last @ (the whole string when there is none)."""
    return (address or "").rpartition("@")[2]


def is_free_mail(address: str, domains: Iterable[str]) -> bool:
    """True when the address (or bare domain) is at, or below, one of the free-mail domains.

    Entries are domains ("gmail.com": also matches "mail.gmail.com") or a provider with any
    top-level part ("gmx.*": gmx.de, gmx.net, gmx.co.uk, mail.gmx.com). Case, a trailing dot,
    full-width characters and internationalised (Unicode or punycode) domains are all handled.
    """
    labels = ascii_domain(domain_of(address)).split(".")
    if not labels or labels == [""]:
        return False
    for entry in domains:
        pattern = (entry or "").strip()
        if not pattern:
            continue
        if pattern.endswith(".*"):
            if _matches_any_tld(labels, ascii_domain(pattern[:-2]).split(".")):
                return True
            continue
        wanted = ascii_domain(pattern).split(".")
        if labels[-len(wanted) :] == wanted:
            return True
    return False


def _matches_any_tld(labels: list[str], provider: list[str]) -> bool:
    # "gmx.*" stands for the provider's registrable name under a public suffix of at most two
    # labels (gmx.de, gmx.co.uk); anything before it is a subdomain of the provider.
    size = len(provider)
    for start in range(len(labels) - size):
        if labels[start : start + size] == provider and 1 <= len(labels) - start - size <= 2:
            return True
    return False


def normalize_email(address: str, *, check_dns: bool = False) -> str:
    """Return the address normalised by email-validator (domain lower-cased, Unicode kept readable).

    Raises InvalidEmail with a Japanese message when the syntax is wrong, or when check_dns is set
    and the domain cannot receive mail.
    """
    text = unicodedata.normalize("NFKC", address or "").strip()
    try:
        validated = validate_email(text, check_deliverability=check_dns)
    except EmailNotValidError:
        raise InvalidEmail(INVALID_EMAIL_MESSAGE) from None
    return str(validated.normalized)


def check_signer_email(address: str, *, domains: Iterable[str], check_dns: bool = False) -> str:
    """Normalise a signing authority's address and refuse free-mail domains.

    Raises InvalidEmail (syntax) or FreeMailRefused (R11).
    """
    normalized = normalize_email(address, check_dns=check_dns)
    if is_free_mail(normalized, domains):
        raise FreeMailRefused(FREE_MAIL_MESSAGE)
    return normalized


def normalize_phone(number: str) -> str:
    """Full-width digits and long dashes become ASCII (NFKC); spaces go. Raises nothing."""
    text = unicodedata.normalize("NFKC", number or "").translate(_PHONE_DASHES)
    return "".join(text.split())


def is_valid_phone(number: str) -> bool:
    """Digits with optional single hyphens or brackets, 10-13 digits (Japanese fixed/mobile, +81)."""
    text = normalize_phone(number)
    digits = sum(c.isdigit() for c in text)
    return bool(_PHONE.match(text)) and 10 <= digits <= 13


def configured_free_mail_domains() -> list[str]:
    """FREE_MAIL_DOMAINS of the current app."""
    return list(current_app.config.get("FREE_MAIL_DOMAINS") or [])


class EmailAddress:
    """WTForms validator: valid e-mail syntax (DNS only when EMAIL_CHECK_DNS), Japanese message."""

    def __init__(self, message: str = INVALID_EMAIL_MESSAGE) -> None:
        self.message = message

    def __call__(self, form: Form, field: Field) -> None:
        if not field.data:
            return
        try:
            normalize_email(field.data, check_dns=bool(current_app.config.get("EMAIL_CHECK_DNS")))
        except InvalidEmail:
            raise StopValidation(self.message) from None


class NotFreeMail:
    """WTForms validator refusing free-mail domains; the list defaults to FREE_MAIL_DOMAINS.

    Stops the chain: a free-mail address needs no further message about its syntax.
    """

    def __init__(self, domains: Iterable[str] | None = None, message: str = FREE_MAIL_MESSAGE) -> None:
        self.domains = list(domains) if domains is not None else None
        self.message = message

    def __call__(self, form: Form, field: Field) -> None:
        domains = self.domains if self.domains is not None else configured_free_mail_domains()
        if field.data and is_free_mail(str(field.data), domains):
            raise StopValidation(self.message)


class PhoneNumber:
    """WTForms validator for Japanese phone numbers after NFKC (全角 digits and hyphens accepted)."""

    def __init__(self, message: str = INVALID_PHONE_MESSAGE) -> None:
        self.message = message

    def __call__(self, form: Form, field: Any) -> None:
        if field.data and not is_valid_phone(field.data):
            raise ValidationError(self.message)
