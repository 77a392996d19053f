"""The reason staff give when they record or withdraw 「電子契約を希望しない」."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired

from portal.text import MaxLength, SingleLine


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class DeclineForm(FlaskForm):
    reason = StringField("理由（相手方からの連絡の内容）",
                         validators=[DataRequired("理由を入力してください。"), MaxLength(500), SingleLine()],
                         filters=[_strip],
                         description="例: 令和8年12月3日 電話で代表取締役から、電子契約を希望しない旨の連絡あり")


class WithdrawDeclineForm(FlaskForm):
    reason = StringField("取り消す理由", validators=[DataRequired("取り消す理由を入力してください。"), MaxLength(500),
                                               SingleLine()], filters=[_strip],
                         description="例: 電子契約に同意する旨の連絡あり（令和8年12月10日 メール）")
