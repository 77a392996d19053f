from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectMultipleField, StringField, URLField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from portal.webhooks.models import WebhookEventType

REQUIRED = "入力してください。"


def _max(limit: int) -> Length:
    return Length(max=limit, message=f"{limit}文字以内で入力してください。")


class _Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class EndpointForm(FlaskForm):
    url = URLField("送信先 URL", validators=[DataRequired(REQUIRED), _max(2000)],
                   description="https:// で始まる受信側の URL（例: https://bunsho.pref.example.jp/hooks/keiyaku）")
    description = StringField("説明", validators=[_max(200)], description="例: 文書管理システム")
    events = _Checkboxes("送信するイベント", choices=[SelectChoice(e.value, f"{e.label}（{e.value}）")
                                                        for e in WebhookEventType])
    secret = StringField("シークレット（任意）", validators=[_max(200)],
                         description="空欄なら生成します。登録後に一度だけ表示されます。",
                         render_kw={"autocomplete": "off"})


class EndpointEditForm(FlaskForm):
    url = EndpointForm.url
    description = EndpointForm.description
    events = EndpointForm.events
    is_active = BooleanField("有効（停止中は送信しません）")
