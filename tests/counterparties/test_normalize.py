import pytest

from portal.counterparties.normalize import normalize_name

CANONICAL = normalize_name("株式会社ケイヤク商事")


@pytest.mark.parametrize(
    "variant",
    ["株式会社ケイヤク商事", "㈱ケイヤク商事", "(株)ケイヤク商事", "（株）ケイヤク商事", "㈱ｹｲﾔｸ商事",
     "株式会社 けいやく 商事", "株式会社　ケイヤク商事"],
)
def test_variants_normalise_to_the_same_key(variant):
    assert normalize_name(variant) == CANONICAL


def test_limited_company_forms():
    assert normalize_name("㈲岡山工務店") == normalize_name("有限会社 岡山工務店")


def test_latin_width_and_case():
    assert normalize_name("ＡＢＣ Ｓｙｓｔｅｍｓ") == normalize_name("abc systems")
