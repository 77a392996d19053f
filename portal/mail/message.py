"""flask-mail's Message and Connection, as the outbox needs them.

- Bodies in UTF-8 with base64 transfer encoding: flask-mail registers UTF-8 for 8-bit bodies, which
  7-bit gateways still found at some agencies mangle or refuse.
- `Date` in Japan time (+09:00), which flask-mail would take from the server's local zone.
- A connection with a timeout, so a silent SMTP server cannot hold the worker.
"""

from __future__ import annotations

import base64
import smtplib
from email import policy
from email.charset import BASE64, Charset
from email.headerregistry import Address
from email.mime.base import MIMEBase
from email.mime.text import MIMEText
from email.utils import parseaddr
from typing import Any

from flask_mail import Connection, Message

from portal.extensions import mail as flask_mail


def _utf8_base64() -> Charset:
    charset = Charset("utf-8")
    charset.body_encoding = BASE64
    return charset


class OutboxMail(Message):
    """Subject, From and To are written again with the standard library's structured headers:
    flask-mail's Header().encode() leaves ASCII runs of a Japanese name outside the encoded word
    (「山田 Bcc: x@evil」 became a second address in To) and folds long names inside encoded words."""

    date_header: str | None = None

    def _mimetext(self, text: str | None, subtype: str = "plain") -> MIMEText:
        return MIMEText(text or "", _subtype=subtype, _charset=_utf8_base64())  # type: ignore[arg-type]

    def _message(self) -> MIMEBase:
        message = super()._message()
        if self.date_header:
            message.replace_header("Date", self.date_header)
        message.policy = policy.SMTP
        del message["Subject"], message["From"], message["To"]
        # A literal encoded word typed into a form (a company name 「=?utf-8?b?4oCu?=」) would be left as it
        # is by the folding and decoded by the reader's mail program into what the form refuses (U+202E).
        message["Subject"] = EncodedSubject(self.subject) if "=?" in self.subject else self.subject
        # Structured values, not strings: typeshed types Message.__setitem__ as str only.
        message["From"] = _address(self.sender)  # type: ignore[assignment]
        message["To"] = [_address(recipient) for recipient in self.recipients]  # type: ignore[assignment]
        return message


class EncodedSubject(str):
    """A Subject written entirely as RFC 2047 base64 encoded words, so nothing in it reads as one itself.

    The policy stores a value with a `name` as it is and writes it with its fold() (email.policy.EmailPolicy).
    """

    name = "Subject"
    WORD_BYTES = 39  # 52 base64 characters: every line stays under 78 (RFC 5322 §2.1.1)

    def fold(self, *, policy: Any) -> str:
        words: list[bytes] = []
        for character in self:
            encoded = character.encode()
            if not words or len(words[-1]) + len(encoded) > self.WORD_BYTES:
                words.append(b"")
            words[-1] += encoded
        text = f"{policy.linesep} ".join(f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words)
        return f"{self.name}: {text}{policy.linesep}"


def _address(value: str | tuple[str, str]) -> Address:
    name, address = value if isinstance(value, tuple) else parseaddr(value)
    return Address(display_name=name, addr_spec=address)


class OutboxConnection(Connection):
    """One SMTP session for a batch; recover() after a failed message resets it or reconnects once."""

    def __init__(self, state: Any, timeout: float) -> None:
        super().__init__(state)
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: Any) -> OutboxConnection:
        # The settings are read for every batch, so a changed MAIL_* setting applies without a restart.
        state = flask_mail.init_mail({**config, "MAIL_SUPPRESS_SEND": False})
        return cls(state, float(config["MAIL_TIMEOUT"]))

    def configure_host(self) -> smtplib.SMTP:
        smtp_class = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp_class(self.mail.server, int(self.mail.port), timeout=self.timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host

    def open(self) -> None:
        self.__enter__()

    def recover(self) -> bool:
        """Make the session usable for the next message; False when the server cannot be reached."""
        try:
            if self.host is not None:
                self.host.rset()
            return True
        except (OSError, smtplib.SMTPException):
            self.close()
        try:
            self.host = self.configure_host()
        except (OSError, smtplib.SMTPException):
            self.host = None
            return False
        return True

    def close(self) -> None:
        if self.host is None:
            return
        try:
            self.host.quit()
        except (OSError, smtplib.SMTPException):
            self.host.close()
        self.host = None
