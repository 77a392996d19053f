"""Staff forms for contracts; the signer e-mail shares usage_requests.rules' validators (R11)."""

from __future__ import annotations

from typing import Any, ClassVar

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.i18n import get_translations
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from portal.contracts.models import CONSENT_METHODS
from portal.text import MaxLength, SingleLine
from portal.types import MAX_YEN
from portal.usage_requests.rules import EmailAddress, NotFreeMail

REQUIRED = "入力してください。"
AMOUNT = f"0以上{MAX_YEN:,}以下の金額（円）を入力してください。"
YEN_RANGE = NumberRange(min=0, max=MAX_YEN, message=AMOUNT)
ACCESS_CODE = Length(min=4, max=32, message="アクセスコードは4文字以上32文字以内で入力してください。")
DATE = "日付を YYYY-MM-DD の形式で入力してください。"
ORDER_CHOICES = [("counterparty_first", "相手方 → 庁内（標準）"), ("agency_first", "庁内 → 相手方")]


class _ConsentFields:
    consent_by = StringField("承諾した方（相手方の氏名・役職）", validators=[Optional(), MaxLength(200), SingleLine()])
    consent_on = DateField("承諾日", validators=[Optional()])
    consent_method = SelectField("承諾の方法", choices=[("", "選択してください"), *[(m, m) for m in CONSENT_METHODS]],
                                 validators=[Optional()])


class _Japanese:
    """WTForms' own messages (a date or number that does not parse, a choice not in the list) in Japanese."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "Not a valid date value.": DATE, "Not a valid choice.": "一覧から選択してください。",
        "Not a valid integer value.": "半角数字（整数）で入力してください。"}

    def __init__(self) -> None:
        self.fallback = get_translations(["ja"])

    def gettext(self, string: str) -> str:
        return self.MESSAGES.get(string) or str(self.fallback.gettext(string))

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return str(self.fallback.ngettext(singular, plural, n))


JAPANESE = _Japanese()


class ContractForm(_ConsentFields, FlaskForm):
    class Meta:
        def get_translations(self, form: object) -> _Japanese:
            return JAPANESE

    contract_type = SelectField("契約の種類", validators=[DataRequired("契約の種類を選択してください。")])
    business_name = StringField("業務名", validators=[DataRequired(REQUIRED), MaxLength(200), SingleLine()])
    # The registered 取引先 (R10), chosen in the picker before this form is shown; the signer fields are
    # filled from its 契約締結権限者 and only sent when staff choose another signer with a reason.
    counterparty_id = HiddenField(validators=[DataRequired("取引先を選択してください。"), MaxLength(18)])
    amount = IntegerField("契約金額（税込・円）", validators=[InputRequired(REQUIRED), YEN_RANGE])
    tax_amount = IntegerField("うち消費税及び地方消費税額（円）",
                              validators=[InputRequired(REQUIRED), YEN_RANGE])
    transaction_date = DateField("取引年月日", validators=[InputRequired(DATE)])
    term_start = DateField("契約期間（開始）", validators=[Optional()])
    term_end = DateField("契約期間（終了）", validators=[Optional()])
    planned_conclusion_date = DateField("締結予定日（署名期限）", validators=[InputRequired(DATE)])
    auto_renewal = BooleanField("自動更新条項がある")
    paper_required_by_law = BooleanField("法令等により書面の契約書が必要")
    council_approval_required = BooleanField("議会の議決が必要")
    signer_organization = StringField("相手方の商号（署名者の所属）",
                                      validators=[Optional(), MaxLength(200), SingleLine()])
    signer_override = BooleanField("登録された契約締結権限者とは別の人を署名者にする")
    signer_override_reason = StringField(
        "別の署名者にする理由", validators=[Optional(), MaxLength(500), SingleLine()],
        description="例: 支店長に契約締結権限が委任されているため（委任状受領済み）。理由は契約と操作ログに残ります。")
    counterparty_override_reason = StringField(
        "申出書のない取引先と作成する理由（管理者のみ）", validators=[Optional(), MaxLength(500), SingleLine()],
        description="受付済みの電子契約利用申出書がない取引先とは、通常は作成できません。理由は契約と操作ログに残ります。")
    signer_title = StringField("契約締結権限者の役職", validators=[MaxLength(100), SingleLine()])
    signer_name = StringField("契約締結権限者の氏名",
                              validators=[DataRequired(REQUIRED), MaxLength(100), SingleLine()])
    signer_email = EmailField("契約締結権限者のメールアドレス",
                              validators=[DataRequired(REQUIRED), MaxLength(254), EmailAddress(), NotFreeMail()])
    approver_email = SelectField("庁内の署名者（承認者・契約担当者）", validators=[DataRequired(REQUIRED)])
    signing_order = SelectField("署名の順番", choices=ORDER_CHOICES, default="counterparty_first")
    agency_address_reason = StringField(
        "庁内のアドレスを相手方署名者にする理由（管理者のみ）", validators=[Optional(), MaxLength(500), SingleLine()],
        description="相手方の署名者に職員や庁内ドメインのアドレスを指定するのは、例外の場合だけです。理由は操作ログに残ります。")
    access_code = StringField("アクセスコード（任意）", validators=[Optional(), ACCESS_CODE, SingleLine()],
                              description="設定すると、署名の際に入力が必要になります。メール以外の方法（電話など）で相手方に伝えてください。")

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        # Here, not as validate_signer_override_reason: Optional() would stop the chain on an empty reason.
        if self.signer_override.data and not (self.signer_override_reason.data or "").strip():
            self.signer_override_reason.errors = [*self.signer_override_reason.errors,
                                                  "別の署名者にする理由を入力してください。"]
            return False
        return valid


class EditContractForm(ContractForm):
    """「編集する」: the draft's fields; the access code is kept unless a new one is typed or it is removed.
    (The 承諾 is recorded on the contract page: the first record stands.)"""

    remove_access_code = BooleanField("アクセスコードを削除する")


class CopyForm(FlaskForm):
    copy_documents = BooleanField("文書もコピーする", default=True,
                                  description="元の契約の文書（署名前の原本）を新しい下書きにコピーします。署名済みの版はコピーしません。")


class ConsentForm(_ConsentFields, FlaskForm):
    """The counterparty's prior 承諾, recorded on the contract page when it came after the draft."""


class AmendmentForm(FlaskForm):
    amendment_reason = TextAreaField("変更の理由", validators=[Optional(), MaxLength(2000)],
                                     description="例: 履行期間の延長（令和9年3月31日まで）")


class AccessCodeChangeForm(FlaskForm):
    """A new アクセスコード for a contract (never filled back in: the code is a secret)."""

    access_code = StringField("新しいアクセスコード", validators=[DataRequired(REQUIRED), MaxLength(32), SingleLine()],
                              description="4〜32文字。メール以外の方法（電話など）で相手方に伝えてください。"
                                          "設定後は表示されません。")


class DownloadLinkForm(FlaskForm):
    recipient = SelectField("送付先", validators=[DataRequired("送付先を選んでください。")])


class ApprovalForm(FlaskForm):
    reference = StringField("決裁番号（決裁日）", validators=[DataRequired(REQUIRED), MaxLength(100), SingleLine()],
                            description="例: 総契第123号（令和8年11月20日決裁）")
    # When the approver's page was drawn (the contract's updated_at): a change since then is refused.
    seen_version = HiddenField(validators=[Optional(), MaxLength(64)])
