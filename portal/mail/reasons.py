"""Why a stored mail is held, waiting or failed, in words for the 送信メール page.

last_error keeps the exception as recorded ("SMTPRecipientsRefused: {...}") for whoever debugs it;
administrators read the sentence this module makes of it.
"""

from __future__ import annotations

from portal.formatting import jst
from portal.mail.models import OutboxMessage, OutboxStatus

HELD = "SMTPサーバーが設定される前に作成されたため、送信せずに保管しています。"
HELD_SENDABLE = HELD + "SMTPサーバーが設定されたので、「送信する」で送信できます。"
HELD_NOT_SENDABLE = HELD + "送信するには、先に SMTP サーバー（PORTAL_MAIL_SERVER）を設定してください。"
WITHDRAWN = "送信を取りやめました（本文のリンクはもう使えません）。"
FAILED_LINKS = "本文のリンクは破棄されています。必要な場合は、契約の画面から署名依頼の再送などで送り直してください。"

# The exception names smtplib, socket and the message building raise, most specific first.
ERRORS = (
    ("SMTPRecipientsRefused", "宛先のメールサーバーが受け取りを拒否しました。宛先のメールアドレスを確認してください。"),
    ("SMTPSenderRefused", "送信元のメールアドレス（MAIL_DEFAULT_SENDER）がSMTPサーバーに拒否されました。"),
    ("SMTPAuthenticationError", "SMTPサーバーの認証に失敗しました。ユーザー名とパスワードの設定を確認してください。"),
    ("SMTPNotSupportedError", "SMTPサーバーが必要な機能（STARTTLS など）に対応していません。設定を確認してください。"),
    ("SMTPDataError", "SMTPサーバーがメールの本文を受け付けませんでした。"),
    ("SMTPServerDisconnected", "送信中にSMTPサーバーとの接続が切れました。"),
    ("SMTPConnectError", "SMTPサーバーに接続できませんでした。"),
    ("gaierror", "SMTPサーバーの名前を解決できませんでした。サーバー名（PORTAL_MAIL_SERVER）を確認してください。"),
    ("ConnectionRefusedError",
     "SMTPサーバーに接続できませんでした（接続を拒否されました）。サーバー名とポートを確認してください。"),
    ("TimeoutError", "SMTPサーバーが時間内に応答しませんでした。"),
    ("timeout", "SMTPサーバーが時間内に応答しませんでした。"),
    ("SSLError", "SMTPサーバーとの暗号化通信（TLS）を確立できませんでした。"),
    ("UnicodeError", "メールを組み立てられませんでした（宛先または件名の文字）。"),
    ("ValueError", "メールを組み立てられませんでした（宛先または件名）。"),
    ("OSError", "SMTPサーバーとの通信でエラーが発生しました。"),
    ("SMTPException", "SMTPサーバーがエラーを返しました。"),
)


def error_sentence(last_error: str) -> str:
    """The recorded error in Japanese; an unknown one is named as recorded."""
    if not last_error:
        return ""
    name = last_error.split(":", 1)[0].strip().rsplit(".", 1)[-1]
    for known, sentence in ERRORS:
        if name == known or name.endswith(known):
            return sentence
    return f"送信できませんでした（{name}）。"


def describe(message: OutboxMessage, *, mail_configured: bool) -> str:
    """Why `message` is where it is; "" for a mail that was sent or is waiting its first try."""
    if message.status is OutboxStatus.WITHDRAWN:
        return f"{message.last_error or '送信前に本文のリンクが無効になったため、'}{WITHDRAWN}"
    if message.status is OutboxStatus.HELD:
        return HELD_SENDABLE if mail_configured else HELD_NOT_SENDABLE
    if message.status is OutboxStatus.FAILED:
        return f"{message.attempts}回送信を試みましたが失敗しました。{error_sentence(message.last_error)}{FAILED_LINKS}"
    if message.status is OutboxStatus.PENDING and message.attempts:
        return (f"{error_sentence(message.last_error)}{jst(message.next_attempt_at)}に再度送信します"
                f"（{message.attempts}回失敗）。")
    return ""
