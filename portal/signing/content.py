"""What an uploaded PDF holds besides pages: active content and structures that cannot be signed.

The portal signs every document with its own certificate, so a file that runs code when opened
(JavaScript, /Launch, XFA) or carries other files would be vouched for by the agency. scan() walks
every object reachable from the trailer once (no recursion, each indirect object visited once) and
refuses such files with a message naming what was found; it also bounds the nesting depth and the
decompressed size of the file's streams, which the page renderer would otherwise have to inflate.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from .errors import InvalidPdf

# pdfium stops at 64 levels of direct nesting (kParserMaxRecursionDepth); real documents stay far below.
MAX_NESTING = 64
MAX_OBJECTS = 1_000_000
INFLATE_CHUNK = 1 << 20


class ActiveContent(InvalidPdf):
    """The file holds something that acts on its own when opened, or carries other files."""

    def __init__(self, found: list[str]) -> None:
        super().__init__(f"この PDF には次の内容が含まれているため、受け付けられません: {'、'.join(found)}。"
                         "印刷用に書き出した PDF（「PDF として保存」など）をアップロードしてください。")
        self.found = found


class UnsignableStructure(InvalidPdf):
    """The object structure is one that signing would fail on (loops, absurd nesting, broken references)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"この PDF は{what}ため、署名できません。"
                         "元のソフトウェアで PDF を書き出し直してからアップロードしてください。")
        self.what = what


class TooManyPages(InvalidPdf):
    def __init__(self, pages: int, limit: int) -> None:
        super().__init__(f"ページ数が多すぎます（{pages:,} ページ）。"
                         f"{limit:,} ページ以下の PDF に分けてアップロードしてください。")


class InflatesTooMuch(InvalidPdf):
    def __init__(self, limit: int) -> None:
        super().__init__(f"PDF の中身を展開すると大きすぎます（{limit // (1024 * 1024):,} MB 超）。"
                         "画像の解像度を下げるなどして、小さな PDF にしてからアップロードしてください。")


@dataclass
class _Findings:
    found: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        if what not in self.found:
            self.found.append(what)


def _name(value: object) -> str:
    return str(value) if isinstance(value, generic.NameObject) else ""


def _inspect_dict(obj: generic.DictionaryObject, via: str, findings: _Findings, *, allow_embedded_pdfs: bool) -> None:
    action = _name(obj.raw_get("/S")) if "/S" in obj else ""
    if action == "/JavaScript" or "/JS" in obj:
        findings.add({"/OpenAction": "JavaScript（/OpenAction：開くと実行）",
                      "/AA*": "JavaScript（/AA：操作に応じて自動実行）",
                      "/JavaScript": "JavaScript（文書レベルのスクリプト）"}.get(via, "JavaScript"))
    if action == "/Launch":
        findings.add("外部プログラムの起動（/Launch）")
    if "/XFA" in obj and via == "/AcroForm":
        findings.add("XFA フォーム（/XFA）")
    is_embedded_file = isinstance(obj, generic.StreamObject) and (
        via == "/EF*" or ("/Type" in obj and _name(obj.raw_get("/Type")) == "/EmbeddedFile"))
    if is_embedded_file and not (allow_embedded_pdfs and _is_pdf(obj)):  # type: ignore[arg-type]
        findings.add("PDF 以外の埋め込みファイル（添付ファイル）" if allow_embedded_pdfs
                     else "埋め込みファイル（添付ファイル）")


def _child_via(via: str, key: str) -> str:
    """How a value is reached, for naming what was found: "/AA*" is an action of a trigger dictionary
    (an action's /Next runs as part of it), "/EF*" a file of an /EF dictionary; the entries of the
    document's JavaScript name tree count as "/JavaScript"."""
    if via in ("/AA", "/EF"):
        return via + "*"
    if key == "/Next" or (via == "/JavaScript" and key in ("/Names", "/Kids")):
        return via
    return key


def _is_pdf(stream: generic.StreamObject) -> bool:
    """Whether an embedded file's first bytes are a PDF header (read without inflating the whole file)."""
    filters = stream.raw_get("/Filter") if "/Filter" in stream else None
    raw = stream.encoded_data or b""
    if filters is None:
        head = raw[:8]
    elif _name(filters) == "/FlateDecode":
        try:
            head = zlib.decompressobj().decompress(raw, 8)
        except zlib.error:
            return False
    else:
        return False
    return head.startswith(b"%PDF-")


def _inflated_size(stream: generic.StreamObject, budget: int) -> int:
    """Bytes a FlateDecode stream inflates to, counted in chunks and stopped past `budget`."""
    filters = stream.raw_get("/Filter") if "/Filter" in stream else None
    first = filters[0] if isinstance(filters, generic.ArrayObject) and filters else filters
    if _name(first) != "/FlateDecode":
        return len(stream.encoded_data or b"")
    inflater = zlib.decompressobj()
    total = 0
    pending = stream.encoded_data or b""
    try:
        while pending and total <= budget:
            total += len(inflater.decompress(pending, INFLATE_CHUNK))
            pending = inflater.unconsumed_tail
    except zlib.error:
        pass  # a broken stream is pdfium's problem to show, not a size to count
    return total


def scan(reader: PdfFileReader, *, allow_embedded_pdfs: bool, max_inflated_bytes: int) -> None:
    """Visit every object reachable from the trailer once.

    Raises ActiveContent listing what was found, UnsignableStructure for nesting deeper than MAX_NESTING
    or a file too large to walk, InflatesTooMuch when the streams inflate past `max_inflated_bytes`.
    """
    findings = _Findings()
    seen: set[tuple[int, int]] = set()
    inflated = 0
    # (object, how it was reached: the key naming it, depth of direct nesting)
    stack: list[tuple[object, str, int]] = [(reader.trailer.raw_get("/Root"), "/Root", 0)]
    if "/Info" in reader.trailer:
        stack.append((reader.trailer.raw_get("/Info"), "/Info", 0))
    while stack:
        obj, via, depth = stack.pop()
        if isinstance(obj, generic.IndirectObject):
            ref = (obj.idnum, obj.generation)
            if ref in seen:
                continue
            seen.add(ref)
            if len(seen) > MAX_OBJECTS:
                raise UnsignableStructure("オブジェクトの数が多すぎる")
            obj, depth = obj.get_object(), 0
        if depth > MAX_NESTING:
            raise UnsignableStructure(f"配列や辞書の入れ子が深すぎる（{MAX_NESTING} 段を超える）")
        if isinstance(obj, generic.DictionaryObject):
            _inspect_dict(obj, via, findings, allow_embedded_pdfs=allow_embedded_pdfs)
            if isinstance(obj, generic.StreamObject):
                inflated += _inflated_size(obj, max_inflated_bytes - inflated)
                if inflated > max_inflated_bytes:
                    raise InflatesTooMuch(max_inflated_bytes)
            stack.extend((obj.raw_get(key), _child_via(via, str(key)), depth + 1) for key in obj)
        elif isinstance(obj, generic.ArrayObject):
            stack.extend((item, via, depth + 1) for item in obj)
    if findings.found:
        raise ActiveContent(findings.found)


def deepest_nesting(data: bytes) -> str:
    """「配列」 or 「辞書」: which kind of nesting is deepest in the raw bytes (for the message after a
    RecursionError of the parser; strings and streams are not skipped, so it is only a description)."""
    arrays = dictionaries = deepest_arrays = deepest_dictionaries = 0
    for token in _brackets(data):
        if token == b"[":
            arrays += 1
            deepest_arrays = max(deepest_arrays, arrays)
        elif token == b"]":
            arrays = max(0, arrays - 1)
        elif token == b"<<":
            dictionaries += 1
            deepest_dictionaries = max(deepest_dictionaries, dictionaries)
        else:
            dictionaries = max(0, dictionaries - 1)
    return "配列" if deepest_arrays >= deepest_dictionaries else "辞書"


def _brackets(data: bytes) -> list[bytes]:
    import re

    return re.findall(rb"<<|>>|\[|\]", data)


def check_page_tree(reader: PdfFileReader) -> None:
    """Raises UnsignableStructure when the page tree loops back on itself or holds something else."""
    root = reader.root.raw_get("/Pages")
    stack = [root]
    seen: set[tuple[int, int]] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, generic.IndirectObject):
            ref = (node.idnum, node.generation)
            if ref in seen:
                raise UnsignableStructure("ページツリー（/Pages）が循環している")
            seen.add(ref)
            if len(seen) > MAX_OBJECTS:
                raise UnsignableStructure("オブジェクトの数が多すぎる")
            node = node.get_object()
        if not isinstance(node, generic.DictionaryObject):
            raise UnsignableStructure("ページツリー（/Pages）にページ以外のものが含まれている")
        is_inner_node = _name(node.raw_get("/Type")) == "/Pages" if "/Type" in node else "/Kids" in node
        if is_inner_node:
            kids = node.raw_get("/Kids") if "/Kids" in node else None
            if isinstance(kids, generic.IndirectObject):
                kids = kids.get_object()
            if not isinstance(kids, generic.ArrayObject):
                raise UnsignableStructure("ページツリー（/Pages）の /Kids が壊れている")
            stack.extend(kids)
