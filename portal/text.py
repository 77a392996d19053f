"""One-line text typed by people (names, titles, company names): no line breaks or control characters.

A name travels into mail headers, PDF signature reasons, CSV exports and log lines; a CR/LF or a
bidirectional override in it can forge a header or disguise what a reader sees, so such input is
refused where it is typed (forms and the API) and flattened where old data is used (mail headers).
"""

from __future__ import annotations

import unicodedata
from typing import Any

CONTROL_CHARACTERS_MESSAGE = "改行や制御文字は使えません。"

# Cc: C0/C1 controls (CR, LF, TAB, NUL, NEL…); Cf: invisible format characters, among them the
# bidirectional embeddings, overrides and isolates (UAX #9) that reorder what a reader sees, and
# zero-width spaces; Zl/Zp: the line and paragraph separators. A name never needs any of them
# (the variation selectors of 髙/﨑 style glyphs are Mn and stay allowed).
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def is_control_character(char: str) -> bool:
    return unicodedata.category(char) in _CONTROL_CATEGORIES


def has_control_characters(value: str) -> bool:
    """True when `value` holds a line break, tab, NUL, another control, format or separator character."""
    return any(is_control_character(char) for char in value)


def single_line(value: str) -> str:
    """`value` with every control character turned into a space and runs of spaces collapsed."""
    flattened = "".join(" " if is_control_character(char) else char for char in value)
    return " ".join(flattened.split())


def safe_filename(name: str, default: str = "document.pdf") -> str:
    """An uploaded file's name as the portal keeps and offers it: the last path component, without control
    or bidirectional characters (「契約書\u202efdp.exe」 would read as 「契約書exe.pdf」), without leading dots
    (「..」, hidden names), at most 255 characters; `default` when nothing is left."""
    visible = "".join(char for char in (name or "") if not is_control_character(char))
    base = visible.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(". ").strip()
    return base[:255] or default


class SingleLine:
    """WTForms validator refusing control characters, with the field's label in the message."""

    def __call__(self, form: Any, field: Any) -> None:
        from wtforms.validators import ValidationError

        if isinstance(field.data, str) and has_control_characters(field.data):
            raise ValidationError(f"{field.label.text}に{CONTROL_CHARACTERS_MESSAGE}")


def too_long_message(label: str, limit: int) -> str:
    return f"{label}は{limit}文字以内で入力してください。"


class MaxLength:
    """WTForms validator: at most `limit` characters, said in Japanese with the field's label; the input
    element gets `maxlength` too, so a browser stops typing there."""

    def __init__(self, limit: int) -> None:
        self.max = limit
        self.field_flags = {"maxlength": limit}

    def __call__(self, form: Any, field: Any) -> None:
        from wtforms.validators import ValidationError

        if isinstance(field.data, str) and len(field.data) > self.max:
            raise ValidationError(too_long_message(field.label.text, self.max))
