"""portal.signing.speedups: hex strings read as pyhanko's own reader reads them (the same value, the stream
left at the same place, the same error for broken input), X.509 names equal and hashed as asn1crypto
says — and both are what pyhanko and asn1crypto use once installed."""

from __future__ import annotations

import io

import pytest
from asn1crypto import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfStreamError

from portal.signing import speedups

CASES = [
    b"<>",
    b"<48656c6c6f> rest",
    b"<48656C6C6F>",
    b"<4 8 6\n5\r6c\t6c\x006f\x0c>/Next",
    b"<486>",  # odd: the last digit is followed by 0
    b"<" + b"0a" * 40000 + b">",  # longer than one read
    b"<fe ff 00 41>",  # a UTF-16 text string
    b"<4865 % a comment\n6c6c6f>",  # pyhanko skips comments; the fast path leaves it to pyhanko
]
BROKEN = [b"<48zz65>", b"<4865", b"<" + b"ab" * 20000]


def _read(reader, data: bytes):
    """(what `reader` returned or raised, where it left the stream)."""
    stream = io.BytesIO(data)
    try:
        value = reader(stream)
    except PdfStreamError as exc:
        return ("error", type(exc)), stream.tell()
    return (type(value), value.original_bytes), stream.tell()


@pytest.mark.parametrize("data", CASES + BROKEN)
def test_the_same_value_position_and_errors_as_pyhanko(data):
    ours, ours_at = _read(speedups.read_hex_string, data)
    theirs, theirs_at = _read(speedups._pyhanko_reader, data)
    assert ours == theirs
    if ours[0] != "error":
        assert ours_at == theirs_at


def test_pyhankos_parser_uses_it():
    import portal.signing.inputs  # noqa: F401  (installs it)

    assert generic.read_hex_string_from_stream is speedups.read_hex_string
    value = generic.read_object(io.BytesIO(b"<48656c6c6f>"), container_ref=None)
    assert value.original_bytes == b"Hello"


def _name(**attributes: str) -> x509.Name:
    return x509.Name.load(x509.Name.build(attributes).dump())


def test_names_compare_and_hash_as_asn1crypto_says():
    import portal.signing.inputs  # noqa: F401  (installs it)

    plain = _name(common_name="Keiyaku Portal Root", organization_name="岡山県")
    same = _name(common_name="Keiyaku Portal Root", organization_name="岡山県")
    spaced = _name(common_name="keiyaku  portal root", organization_name="岡山県")  # equal by RFC 5280 rules
    other = _name(common_name="Keiyaku Portal TSA", organization_name="岡山県")
    assert plain == same
    assert plain.hashable == same.hashable
    assert plain.dump() != spaced.dump()
    assert plain == spaced
    assert plain.hashable == spaced.hashable
    assert speedups._name_equal(plain, spaced)
    assert plain != other
    assert plain.hashable != other.hashable
    assert not speedups._name_equal(plain, other)
    assert plain != "Keiyaku Portal Root"
    assert x509.Name.__eq__ is speedups.name_equal


def test_a_name_tagged_inside_a_general_name_equals_the_plain_one_without_rfc5280_preparation(monkeypatch):
    import portal.signing.inputs  # noqa: F401  (installs it)

    plain = _name(common_name="Keiyaku Portal TSA", organization_name="岡山県")
    other = _name(common_name="Keiyaku Portal Root", organization_name="岡山県")
    general = x509.GeneralNames([x509.GeneralName(name="directory_name", value=plain)])
    tagged = x509.GeneralNames.load(general.dump())[0].chosen  # as in a timestamp's ESS certificate ID
    assert tagged.dump() != plain.dump()
    prepared: list[object] = []
    original = speedups._name_equal
    monkeypatch.setattr(speedups, "_name_equal", lambda a, b: prepared.append(b) or original(a, b))
    assert tagged == plain
    assert plain == tagged
    assert prepared == []
    monkeypatch.undo()
    assert tagged != other
