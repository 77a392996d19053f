"""The search form: GET, no CSRF (it changes nothing), read through criteria.parse_criteria()."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SearchField, SelectField, SelectMultipleField

from portal.contracts.models import STATUS_LABELS
from portal.search.criteria import MAX_SEARCH_TEXT, SORT_KEYS, AmountBasis, InvalidCriteria
from portal.text import MaxLength

LIMIT = MaxLength(MAX_SEARCH_TEXT)  # enforced by parse_criteria; here it gives the inputs their maxlength


class SearchForm(FlaskForm):
    class Meta:
        csrf = False

    date_from = SearchField("取引年月日（から）",
                            validators=[LIMIT], render_kw={"placeholder": "2025-08-01 / 令和7年8月1日 / 令和8年度"})
    date_to = SearchField("取引年月日（まで）",
                            validators=[LIMIT], render_kw={"placeholder": "2026-03-31 / 令和8年3月31日 / 令和8年度"})
    amount_min = SearchField("金額（以上）",
                            validators=[LIMIT], render_kw={"placeholder": "1,000,000", "inputmode": "numeric"})
    amount_max = SearchField("金額（以下）",
                            validators=[LIMIT], render_kw={"placeholder": "5,000,000", "inputmode": "numeric"})
    amount_basis = RadioField("金額の基準", choices=[(b.value, b.label) for b in AmountBasis],
                              default=AmountBasis.TAX_INCLUDED.value)
    counterparty = SearchField("取引先",
                            validators=[LIMIT], render_kw={"placeholder": "㈱けいやく / ケイヤク商事"})
    business_name = SearchField("業務名", validators=[LIMIT])
    number = SearchField("契約番号", validators=[LIMIT])
    contract_type = SelectField("契約の種類", choices=[("", "すべて")], validate_choice=False)
    status = SelectMultipleField("状態", choices=[(s.value, label) for s, label in STATUS_LABELS.items()])
    department = SelectField("所属", choices=[("", "すべて")])
    history = BooleanField("訂正前の値も検索する")
    paper_originals = BooleanField("ZIP に紙契約の未署名原本を含めない", false_values=("", "mark"))
    sort = SelectField("並び順", choices=list(SORT_KEYS.items()), default="date")
    order = SelectField("順序", choices=[("desc", "降順"), ("asc", "昇順")], default="desc")

    def show_errors(self, error: InvalidCriteria) -> None:
        """Put each parse error under its field (the input itself is kept)."""
        for key, message in error.errors.items():
            field = getattr(self, key, None)
            if field is not None:
                field.errors = [*list(field.errors or []), message]
