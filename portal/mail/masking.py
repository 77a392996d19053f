"""Link tokens out of the stored copy of a mail: https://portal/s/abcd…(マスク済み).

Every one-time link the portal mails (signing, download, enrolment, confirmation) carries a token of
portal.tokens.new_token() as a path segment or query value. Any URL segment of 32 or more URL-safe
characters is treated as such a token: a longer harmless segment is masked too, which only shortens
what the 送信メール page shows, never what is delivered.
"""

from __future__ import annotations

import re

MASK = "…(マスク済み)"
_TOKEN_IN_URL = re.compile(r"(?P<before>https?://\S*?[/=])(?P<head>[A-Za-z0-9_-]{4})[A-Za-z0-9_-]{28,}(?![A-Za-z0-9_-])")


def mask_links(text: str) -> str:
    """`text` with the token of every link cut to its first four characters and marked as masked."""
    return _TOKEN_IN_URL.sub(lambda match: match["before"] + match["head"] + MASK, text)
