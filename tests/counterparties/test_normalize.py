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


@pytest.mark.parametrize(("written", "typed"), [
    ("髙橋建設株式会社", "高橋建設"), ("山﨑工務店", "山崎工務店"), ("嵜山商事", "崎山商事"),
    ("齋藤電機", "斉藤電機"), ("齊藤電機", "斎藤電機"), ("渡邊設備", "渡辺設備"), ("渡邉設備", "渡辺設備"),
    ("澤田造園", "沢田造園"), ("濱田運送", "浜田運送"), ("濵田運送", "浜田運送"), ("𠮷田印刷", "吉田印刷"),
    ("德山産業", "徳山産業"), ("國分建設", "国分建設"),
])
def test_itaiji_fold_to_one_form(written, typed):
    assert normalize_name(written) == normalize_name(typed) or normalize_name(typed) in normalize_name(written)


def test_different_characters_are_not_variants():
    """籐 (rattan) is not a form of 藤 (wisteria): 籐家具 and 藤家具 stay apart."""
    assert normalize_name("籐家具店") != normalize_name("藤家具店")
    assert normalize_name("薗田") != normalize_name("園田")


@pytest.mark.parametrize("dash", list("‐-‑–—―ー－ｰ−"))
def test_hyphen_and_long_vowel_variants(dash):
    assert normalize_name(f"ケ{dash}エス産業") == normalize_name("ケーエス産業")
    assert normalize_name(f"ABC{dash}Tech") == normalize_name("abc-tech")


def test_variation_selectors_are_ignored():
    assert normalize_name("辻\U000e0100本組") == normalize_name("辻本組")


def test_the_table_is_well_formed():
    """Every variant maps to one form; no form is itself a variant; NFKC leaves all of them alone
    (so the table is applied to what NFKC produced)."""
    import unicodedata

    from portal.counterparties.normalize import itaiji_table

    table = itaiji_table()
    assert len(table) >= 60
    for variant, canonical in table.items():
        assert len(variant) == len(canonical) == 1
        assert canonical not in table, canonical
        assert unicodedata.normalize("NFKC", variant) == variant
    assert "籐" not in table
    assert table["髙"] == "高"


@pytest.mark.parametrize("hostile", [
    "\x00\x1b[31m髙橋\u202e", "<script>alert(1)</script>", "=HYPERLINK(\"x\")", "髙" * 100_000, "",
    "\ud800", "\U0010ffff",
])
def test_hostile_names_do_not_break_it(hostile):
    result = normalize_name(hostile)
    assert isinstance(result, str)
    assert not any(c.isspace() for c in result)
