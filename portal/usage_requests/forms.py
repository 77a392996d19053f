"""The 別記様式 as WTForms: the public form, the staff entry of a paper/e-mail form, the return reason."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, SelectField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from portal.text import CONTROL_CHARACTERS_MESSAGE, MaxLength, SingleLine, has_control_characters
from portal.usage_requests.models import Channel
from portal.usage_requests.rules import EmailAddress, NotFreeMail, PhoneNumber, normalize_phone

REQUIRED = "入力してください。"


def _too_long(limit: int) -> str:
    return f"{limit}文字以内で入力してください。"


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _text(label: str, limit: int, **kwargs: Any) -> StringField:
    return StringField(label, validators=[DataRequired(REQUIRED), Length(max=limit, message=_too_long(limit)),
                                          SingleLine()],
                       filters=[_strip], render_kw={"maxlength": limit, **kwargs.pop("render_kw", {})}, **kwargs)


def _email(label: str, *first: Any, **kwargs: Any) -> EmailField:
    # Checks in `first` run before the syntax check: "taro@gmail.com." is reported as free mail.
    return EmailField(label, validators=[DataRequired(REQUIRED), Length(max=254, message=_too_long(254)),
                                         *first, EmailAddress()],
                      filters=[_strip], render_kw={"maxlength": 254, "autocomplete": "email",
                                                   "spellcheck": "false"}, **kwargs)


class UsageRequestForm(FlaskForm):
    """Fields and labels of the 別記様式 (電子契約利用申出書), in its order."""

    department = SelectField("提出先（担当課）", validators=[InputRequired("提出先の担当課を選択してください。")],
                             coerce=str, validate_choice=False,
                             description="県の担当者から案内のあった課を選択してください。")
    address = _text("住所(所在地)", 300, render_kw={"autocomplete": "street-address"})
    company_name = _text("商号(名称)", 200, render_kw={"autocomplete": "organization"})
    representative = _text("代表者職・氏名", 200, description="例: 代表取締役 岡山 太郎")
    contact_person = _text("担当者職・氏名", 200, description="例: 営業部 主任 吉備 花子")
    contact_phone = TelField("電話番号", validators=[DataRequired(REQUIRED), Length(max=40, message=_too_long(40)),
                                                    PhoneNumber()],
                             filters=[normalize_phone],
                             render_kw={"maxlength": 40, "autocomplete": "tel", "inputmode": "tel"},
                             description="全角数字でも入力できます。例: 086-224-2111")
    contact_email = _email("メールアドレス", description="受付番号や審査結果のお知らせをお送りします。")
    contract_name = _text("契約業務名", 200, description="例: 令和8年度 庁舎清掃業務委託")
    authority_title = _text("役職", 100, description="例: 代表取締役、営業部長")
    authority_name = _text("氏名", 100)
    authority_email = _email(
        "メールアドレス",
        NotFreeMail(),
        description="電子契約の署名者として登録され、署名依頼メールが届きます。確認メールをお送りします。"
                    "フリーメールアドレスは不可とします。",
    )
    jv_name = StringField("共同企業体の名称（JVの場合のみ）", validators=[Optional(), MaxLength(200), SingleLine()],
                          filters=[_strip], description="例: 岡山・吉備特定建設工事共同企業体")
    jv_members = TextAreaField("構成員（1行に1社: 商号と代表者職・氏名）", validators=[Optional(), MaxLength(2000)],
                               filters=[_strip], render_kw={"rows": 3},
                               description="代表構成員を含めて、すべての構成員を記入してください。")

    def validate_jv_members(self, field: Any) -> None:
        lines = [line.strip() for line in (field.data or "").splitlines() if line.strip()]
        if self.jv_name.data and len(lines) < 2:
            raise ValidationError("共同企業体の構成員を2社以上、1行に1社ずつ入力してください。")
        if lines and not self.jv_name.data:
            raise ValidationError("構成員を入力する場合は、共同企業体の名称も入力してください。")
        if len(lines) > 20:
            raise ValidationError("構成員は20社までです。")
        for line in lines:
            if has_control_characters(line):
                raise ValidationError(f"構成員に{CONTROL_CHARACTERS_MESSAGE}")
            if len(line) > 200:
                raise ValidationError("構成員は1社200文字以内で入力してください。")

    # Honeypot: hidden from people (CSS and aria-hidden), filled in by form-spamming robots.
    website = StringField("ウェブサイト（入力しないでください）", validators=[MaxLength(500)], filters=[_strip],
                          render_kw={"tabindex": "-1", "autocomplete": "off"})

    #: Fields validated one by one while the person types (htmx).
    LIVE_FIELDS = (
        "department", "address", "company_name", "representative", "contact_person", "contact_phone",
        "contact_email", "contract_name", "authority_title", "authority_name", "authority_email",
    )

    @property
    def is_robot(self) -> bool:
        return bool(self.website is not None and self.website.data)

    def set_departments(self, choices: list[tuple[str, str]]) -> None:
        self.department.choices = [("", "選択してください"), *choices]

    def validate_department(self, field: SelectField) -> None:
        codes = {value for value, _label in field.choices or [] if value}
        if field.data not in codes:
            raise ValidationError("提出先の担当課を一覧から選択してください。")


class StaffEntryForm(UsageRequestForm):
    """A form that arrived by e-mail or post, typed in by staff for the vendor (their own department)."""

    department = None
    website = None
    channel = SelectField("受付方法", choices=[(Channel.MAIL.value, "電子メール"), (Channel.POST.value, "郵送")],
                          validators=[DataRequired(REQUIRED)])
    form_date = DateField("申出書の日付（年月日）", validators=[Optional()],
                          description="空欄の場合は本日の日付になります。")


class ReturnForm(FlaskForm):
    reason = TextAreaField("差戻しの理由", validators=[DataRequired("差戻しの理由を入力してください。"),
                                                    Length(max=2000, message=_too_long(2000))],
                           filters=[_strip], render_kw={"rows": 4, "maxlength": 2000},
                           description="申出者（担当者）にメールでお知らせします。")
