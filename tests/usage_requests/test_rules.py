"""Free-mail refusal (R11), e-mail syntax and phone numbers, as the 別記様式 asks."""

from __future__ import annotations

import pytest

from portal.config import DEFAULTS
from portal.usage_requests import rules

DEFAULT_DOMAINS = DEFAULTS["FREE_MAIL_DOMAINS"]


@pytest.mark.parametrize(
    "address",
    [
        "taro@gmail.com",
        "Taro@GMAIL.COM",  # case
        "taro@gmail.com.",  # trailing dot of a fully qualified name
        "taro@mail.yahoo.co.jp",  # subdomain
        "taro@ｇｍａｉｌ．ｃｏｍ",  # full-width, as a Japanese IME may type it
        "taro@gmail。com",  # ideographic full stop
        "taro@i.softbank.jp",
        "taro@gmx.de",  # "gmx.*"
        "taro@gmx.net",
        "taro@mail.gmx.co.uk",
        "taro@hotmail.co.jp",
        "taro@docomo.ne.jp",
    ],
)
def test_free_mail_variants_are_refused(address):
    assert rules.is_free_mail(address, DEFAULT_DOMAINS)


@pytest.mark.parametrize(
    "address",
    [
        "keiyaku@example.co.jp",
        "taro@notgmail.com",  # suffix, not a subdomain
        "taro@gmail.com.example.jp",
        "taro@gmx.example.co.jp",
        "taro@city.okayama.lg.jp",
        "taro@softbank.jp",  # i.softbank.jp is listed, its parent is not
    ],
)
def test_organisation_addresses_pass(address):
    assert not rules.is_free_mail(address, DEFAULT_DOMAINS)


def test_internationalised_domains_match_in_either_spelling():
    assert rules.is_free_mail("taro@例え.jp", ["xn--r8jz45g.jp"])
    assert rules.is_free_mail("taro@XN--R8JZ45G.JP", ["例え.jp"])
    assert rules.is_free_mail("taro@営業.例え.jp", ["例え.jp"])
    assert not rules.is_free_mail("taro@例え.jp", ["例.jp"])


def test_list_is_configurable_and_empty_list_refuses_nothing():
    assert rules.is_free_mail("a@freemail.example", ["FREEMAIL.example."])
    assert not rules.is_free_mail("a@gmail.com", [])
    assert not rules.is_free_mail("", DEFAULT_DOMAINS)


def test_check_signer_email_normalises_and_refuses():
    assert rules.check_signer_email("Taro@Example.CO.JP", domains=DEFAULT_DOMAINS) == "Taro@example.co.jp"
    with pytest.raises(rules.FreeMailRefused, match="フリーメールアドレスは登録できません"):
        rules.check_signer_email("taro@gmail.com", domains=DEFAULT_DOMAINS)
    with pytest.raises(rules.InvalidEmail, match="メールアドレスの形式"):
        rules.check_signer_email("taro@@example.jp", domains=DEFAULT_DOMAINS)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("０８６－２２４－２１１１", "086-224-2111"),
        ("086ー224ー2111", "086-224-2111"),  # katakana long vowel mark typed for a hyphen
        (" 090 1234 5678 ", "09012345678"),
        ("+81-86-224-2111", "+81-86-224-2111"),
    ],
)
def test_phone_numbers_are_nfkc_normalised(raw, normalized):
    assert rules.normalize_phone(raw) == normalized
    assert rules.is_valid_phone(raw)


@pytest.mark.parametrize("raw", ["abc", "086-224", "086--224-2111", "0862242111234567", ""])
def test_bad_phone_numbers_are_refused(raw):
    assert not rules.is_valid_phone(raw)
