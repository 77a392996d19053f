"""Name normalisation for counterparty search (R23, 電帳法 search by 取引先).

"㈱ｹｲﾔｸ 商事", "(株)けいやく商事" and "株式会社ケイヤク商事" all become "株式会社ケイヤク商事" without
spaces, so a partial match on the normalised column finds every variant.
"""

from __future__ import annotations

import re
import unicodedata

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


def normalize_name(name: str) -> str:
    """NFKC (width), legal forms spelled out, hiragana → katakana, no spaces, case folded."""
    text = unicodedata.normalize("NFKC", name or "")
    for short, long in LEGAL_FORMS.items():
        text = text.replace(short, long)
    text = "".join(
        chr(ord(c) + _KATAKANA_OFFSET) if _HIRAGANA_START <= ord(c) <= _HIRAGANA_END else c for c in text
    )
    return _SPACES.sub("", text).casefold()
