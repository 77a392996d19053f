from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp

from portal.auth.service import MIN_PASSWORD_LENGTH
from portal.text import MaxLength, SingleLine

REQUIRED = "入力してください。"
INVALID_EMAIL = "メールアドレスの形式が正しくありません。"


class LoginForm(FlaskForm):
    email = EmailField("メールアドレス", validators=[DataRequired(REQUIRED), MaxLength(254)])
    password = PasswordField("パスワード", validators=[DataRequired(REQUIRED), MaxLength(200)])


class CodeForm(FlaskForm):
    code = StringField("確認コード", validators=[DataRequired(REQUIRED), MaxLength(20)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True})


class PasswordForm(FlaskForm):
    """The service checks the same rules (set_password); here they are reported with the other fields' errors."""

    password = PasswordField("パスワード", validators=[
        DataRequired(REQUIRED), MaxLength(200),
        Length(min=MIN_PASSWORD_LENGTH, message=f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。"),
    ], render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("パスワード（確認）", validators=[
        DataRequired(REQUIRED), MaxLength(200), EqualTo("password", message="確認用パスワードが一致しません。"),
    ], render_kw={"autocomplete": "new-password"})


class SetupForm(PasswordForm):
    name = StringField("氏名", validators=[DataRequired(REQUIRED), MaxLength(100), SingleLine()])
    email = EmailField("メールアドレス", validators=[DataRequired(REQUIRED), Email(INVALID_EMAIL),
                                                  MaxLength(254)])
    department = StringField("所属", validators=[DataRequired(REQUIRED), MaxLength(100), SingleLine()],
                             description="例: 総務部 契約課")


class UserForm(FlaskForm):
    email = EmailField("メールアドレス", validators=[DataRequired(REQUIRED), Email(INVALID_EMAIL),
                                                  MaxLength(254)])
    name = StringField("氏名", validators=[DataRequired(REQUIRED), MaxLength(100), SingleLine()])
    title = StringField("役職", validators=[MaxLength(100), SingleLine()])
    role = SelectField("役割", validators=[DataRequired(REQUIRED)])
    department_id = SelectField("所属", coerce=int, validators=[DataRequired(REQUIRED)])


class DepartmentForm(FlaskForm):
    code = StringField("所属コード", validators=[DataRequired(REQUIRED), MaxLength(16), SingleLine()],
                       description="契約番号の先頭に使われます（例: KEIYAKU）")
    name = StringField("所属名", validators=[DataRequired(REQUIRED), MaxLength(100), SingleLine()])
    kind = SelectField("区分", choices=["本庁", "県民局", "出先事務所", "その他"])
    go_live_date = DateField("電子契約の導入日", validators=[Optional()],
                             description="この日より前は、この所属の契約を電子契約として送信できません"
                                         "（空欄: 制限なし）")
    contact_phone = StringField("問い合わせ電話番号", validators=[Optional(), MaxLength(30), Regexp(
        r"^[0-9０-９()（）+＋\-－ー ]*$", message="電話番号は数字とハイフンで入力してください。")],
        description="事業者へのメール・ページに表示されます")
    contact_email = EmailField("問い合わせメールアドレス", validators=[Optional(), MaxLength(254),
                                                              Email(INVALID_EMAIL)])
    is_active = BooleanField("有効（利用申出・ユーザー登録で選べる）", default=True)
