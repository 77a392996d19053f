"""Signing failures, each a DomainError carrying the message shown to people.

Every error here means nothing was produced: the caller stores nothing and the
person may retry the action.
"""

from __future__ import annotations

from portal.errors import DomainError


class SigningError(DomainError):
    """Base class of every refusal or failure raised by portal.signing."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    default_message = "電子署名を付与できませんでした。"


class TimestampUnavailable(SigningError):
    """The timestamp authority could not be reached or answered nonsense."""

    status_code = 503
    default_message = "タイムスタンプ局に接続できませんでした。しばらくしてから再度お試しください。"


class RevocationUnavailable(SigningError):
    """CRL/OCSP data for a certificate could not be fetched or was unusable."""

    status_code = 503
    default_message = "証明書の失効情報（CRL）を取得できませんでした。しばらくしてから再度お試しください。"


class SigningKeyUnavailable(SigningError):
    """The signing key could not be used (wrong HSM PIN, missing token, bad PKCS#12)."""

    status_code = 503
    default_message = (
        "署名鍵を利用できませんでした。管理者に連絡してください（HSM の PIN または証明書ファイルを確認）。"
    )


class CertificateExpired(SigningError):
    """The configured signing certificate is not valid at the signing time."""

    status_code = 503
    default_message = "署名用証明書の有効期限が切れています。管理者に連絡してください。"


class InvalidPdf(SigningError):
    """Base class of refused uploads."""

    default_message = "PDF ファイルを読み込めませんでした。"
