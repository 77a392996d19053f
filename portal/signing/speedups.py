"""Two hot spots of reading signed PDFs made cheaper, installed by install() (same results, fewer calls).

Hex strings (`<…>`): pyhanko reads a hex string one byte at a time through a generator (read_non_whitespace per digit):
a signature's /Contents (16–32 KB of hex) costs tens of thousands of Python calls, about a quarter
of a 一括検証 of a B-LTA document, and the same again whenever signing or completion reads a
signed file. This reads up to the closing '>' in one slice. Anything unusual (a '%' comment, a
byte that is not a hex digit, a string without its '>') goes to pyhanko's own reader from the
same position, so results and errors stay pyhanko's.

X.509 names: validating one document compares names thousands of times, and asn1crypto compares
(and hashes) them by their RFC 5280 "prepared" strings, each time anew: a fifth of a 一括検証. Two
names whose RDN sequences have the same DER are equal without that work (this includes the issuer
in a timestamp's ESS certificate ID, a GeneralName [4]-tagged around the same bytes as the
certificate's issuer: 16 full comparisons per B-LTA document otherwise), and a name's hashable
string depends only on its DER, so it is kept per DER (a bounded cache); names that differ in their
bytes are still compared by asn1crypto's own rules.
"""

from __future__ import annotations

import binascii
import os
import re
from typing import Any, BinaryIO

from asn1crypto import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PDF_WHITESPACE

_HEX = re.compile(rb"[0-9a-fA-F]*")
_CHUNK = 16384
_pyhanko_reader = generic.read_hex_string_from_stream
_name_equal = x509.Name.__eq__
_name_hashable = x509.Name.hashable.fget
_HASHABLE_KEPT = 4096
_hashables: dict[bytes, str] = {}


def read_hex_string(stream: BinaryIO) -> Any:
    """What generic.read_hex_string_from_stream returns, with `stream` left after the '>'."""
    start = stream.tell()
    stream.read(1)  # the '<'
    digits = bytearray()
    while True:
        chunk = stream.read(_CHUNK)
        end = chunk.find(b">")
        if end >= 0:
            digits += chunk[:end]
            stream.seek(end + 1 - len(chunk), os.SEEK_CUR)
            break
        if not chunk:
            return _fallback(stream, start)
        digits += chunk
    hex_digits = bytes(digits).translate(None, PDF_WHITESPACE)
    if not _HEX.fullmatch(hex_digits):
        return _fallback(stream, start)
    if len(hex_digits) % 2:
        hex_digits += b"0"  # as the PDF specification says: a missing last digit is 0
    return generic.pdf_string(binascii.unhexlify(hex_digits))


def _fallback(stream: BinaryIO, start: int) -> Any:
    stream.seek(start)
    return _pyhanko_reader(stream)


def name_equal(self: x509.Name, other: object) -> bool:
    if isinstance(other, x509.Name) and self.chosen.dump() == other.chosen.dump():
        return True
    return bool(_name_equal(self, other))


def name_hashable(self: x509.Name) -> str:
    der = self.dump()
    found = _hashables.get(der)
    if found is None:
        if len(_hashables) >= _HASHABLE_KEPT:
            _hashables.clear()
        found = _hashables[der] = _name_hashable(self)
    return found


def install() -> None:
    """pyhanko's object parser looks read_hex_string_from_stream up on every call; Name is patched in place."""
    generic.read_hex_string_from_stream = read_hex_string
    x509.Name.__eq__ = name_equal
    x509.Name.hashable = property(name_hashable)
