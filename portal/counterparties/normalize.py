"""Name normalisation for counterparty search (R23, 電帳法 search by 取引先).

"㈱ｹｲﾔｸ 商事", "(株)けいやく商事" and "株式会社ケイヤク商事" all become "株式会社ケイヤク商事" without
spaces, so a partial match on the normalised column finds every variant. 異体字 (髙橋 → 高橋, from
itaiji.tsv) and the many hyphens and 長音 marks (‐ - ‑ – — ― ー － ｰ) fold to one form as well.

The stored columns (contracts.counterparty_name_normalized, counterparties.name_normalized,
metadata_corrections.old_normalized) hold this function's output: a change here needs a migration
that recomputes them (see migrations/versions/*_itaiji_names.py).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib.resources import files

# After NFKC, ㈱ → (株) and （株） → (株); spell the legal-form abbreviations out.
LEGAL_FORMS = {
    "(株)": "株式会社",
    "(有)": "有限会社",
    "(合)": "合同会社",
    "(資)": "合資会社",
    "(名)": "合名会社",
    "(社)": "社団法人",
    "(財)": "財団法人",
    "(医)": "医療法人",
    "(学)": "学校法人",
    "(福)": "社会福祉法人",
    "(特非)": "特定非営利活動法人",
}
_SPACES = re.compile(r"\s+")
_HIRAGANA_START, _HIRAGANA_END, _KATAKANA_OFFSET = 0x3041, 0x3096, 0x60
# What people and OCR type for a hyphen or a 長音 (after NFKC: － → -, ｰ → ー). Names write
# 「ケー・エス」 and 「ケ－エス」 for the same company, so they are one character here.
DASHES = "\u002d\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe63\u30fc\u2500\u2501\uff70\uff0d"
DASH = "-"
# Variation selectors (IVS, e.g. 辻 with one or two dots) carry a glyph choice, not a different name.
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


@cache
def itaiji_table() -> dict[str, str]:
    """Variant → the form stored, read from itaiji.tsv (see its header for the sources)."""
    table: dict[str, str] = {}
    text = files("portal.counterparties").joinpath("itaiji.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        canonical, variants, *_note = line.split("\t")
        for variant in variants.split():
            table[variant] = canonical
    return table


@cache
def _translation() -> dict[int, str]:
    mapping = {ord(variant): canonical for variant, canonical in itaiji_table().items()}
    mapping.update({ord(dash): DASH for dash in DASHES})
    mapping.update({code: chr(code + _KATAKANA_OFFSET) for code in range(_HIRAGANA_START, _HIRAGANA_END + 1)})
    return mapping


def normalize_name(name: str) -> str:
    """NFKC (width), legal forms spelled out, 異体字 and dashes folded, hiragana → katakana, no spaces,
    case folded."""
    text = _VARIATION_SELECTORS.sub("", unicodedata.normalize("NFKC", name or ""))
    for short, long in LEGAL_FORMS.items():
        text = text.replace(short, long)
    return _SPACES.sub("", text.translate(_translation())).casefold()
