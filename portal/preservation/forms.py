"""Forms: metadata correction, deletion after retention, retention policy, batch verification."""

from __future__ import annotations

from datetime import date as date_type

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional, ValidationError

from portal.parsing import InvalidDate, parse_date
from portal.text import MaxLength, SingleLine


class CorrectionForm(FlaskForm):
    """Empty fields are left as they are; only changed values become a new version."""

    transaction_date = StringField("取引年月日", validators=[Optional(), MaxLength(40)])
    amount = StringField("金額（税込）", validators=[Optional(), MaxLength(40)])
    tax_amount = StringField("うち消費税額", validators=[Optional(), MaxLength(40)])
    counterparty_name = StringField("取引先", validators=[Optional(), MaxLength(200), SingleLine()])
    business_name = StringField("業務名", validators=[Optional(), MaxLength(200), SingleLine()])
    reason = TextAreaField("訂正の理由", validators=[DataRequired("訂正の理由を入力してください。"), MaxLength(2000)])


class DeletionForm(FlaskForm):
    reason = TextAreaField("削除の理由", validators=[DataRequired("削除の理由を入力してください。"), MaxLength(2000)])


class RetentionForm(FlaskForm):
    department = SelectField("所属", choices=[("", "全所属（既定）")], validate_choice=False)
    contract_type = SelectField("契約の種類", choices=[("", "すべての種類")], validators=[Optional()])
    years = IntegerField("保存年数", validators=[InputRequired("保存年数を入力してください。"),
                                               NumberRange(min=1, max=100, message="保存年数は年単位の整数です。")])
    note = StringField("備考", validators=[Optional(), MaxLength(500)])


class _DateField(StringField):
    """A date typed in ISO or 和暦; .date holds the parsed value after validation."""

    date: date_type | None = None

    def pre_validate(self, form: FlaskForm) -> None:
        try:
            self.date = parse_date(self.data or "")
        except InvalidDate as exc:
            raise ValidationError(exc.message) from None


class VerificationForm(FlaskForm):
    period_from = _DateField("締結日（から）", validators=[MaxLength(40)], render_kw={"placeholder": "令和7年4月1日"})
    period_to = _DateField("締結日（まで）", validators=[MaxLength(40)], render_kw={"placeholder": "令和8年3月31日"})
