"""The customer documents in docs/ (R27) as help pages: /help/docs/<name>, printable on A4."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, render_template
from flask.typing import ResponseReturnValue
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markupsafe import Markup

from portal.errors import NotFound
from portal.resources import bundled

bp = Blueprint("docs", __name__, template_folder="templates", url_prefix="/help/docs")
DOCS_DIR = bundled("docs")
# name → title; only these files are served (no path from the URL reaches the file system).
DOCUMENTS = {
    "system-overview": "システム概要書",
    "manual-staff": "操作マニュアル（職員向け）",
    "office-rule-template": "電子取引データの訂正及び削除の防止に関する事務処理規程（ひな形）",
}
# The screenshots of the browser tests (docs/screenshots/*.png): the only images a document may show,
# by a relative path that resolves to the route below from /help/docs/<name>.
SCREENSHOTS_DIR = DOCS_DIR / "screenshots"
SCREENSHOT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
SCREENSHOT_SRC = re.compile(r"screenshots/(?P<name>[a-z0-9][a-z0-9-]{0,63})\.png")


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """A screenshot of docs/screenshots as <img>; any other image (another path, a URL) as its alt text."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    match = SCREENSHOT_SRC.fullmatch(str(token.attrGet("src") or ""))
    if match is None or not (SCREENSHOTS_DIR / f"{match['name']}.png").is_file():
        return escapeHtml(alt)
    return f'<img src="screenshots/{match["name"]}.png" alt="{escapeHtml(alt)}" loading="lazy">'


def render_markdown(text: str) -> str:
    """HTML of a document: raw HTML escaped, images only from docs/screenshots."""
    parser = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
    parser.add_render_rule("image", _image)
    return parser.render(text)


@lru_cache(maxsize=8)
def _render(name: str, mtime: float) -> str:
    return render_markdown((DOCS_DIR / f"{name}.md").read_text(encoding="utf-8"))


def render_document(name: str) -> Markup:
    """The document as HTML (raw HTML in the markdown is escaped). Raises NotFound for other names."""
    if name not in DOCUMENTS:
        raise NotFound("お探しの資料は見つかりませんでした。")
    path = DOCS_DIR / f"{name}.md"
    return Markup(_render(name, path.stat().st_mtime))  # noqa: S704 - html disabled in the parser


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template("preservation/docs_index.html", documents=DOCUMENTS)


@bp.get("/<name>")
def show(name: str) -> ResponseReturnValue:
    body = render_document(name)
    return render_template("preservation/doc.html", title=DOCUMENTS[name], body=body, name=name)


@bp.get("/screenshots/<name>.png")
def screenshot(name: str) -> ResponseReturnValue:
    """A screenshot shown in the manuals (only names of letters, digits and hyphens; nothing outside the folder)."""
    if SCREENSHOT_NAME.fullmatch(name) is None or not (SCREENSHOTS_DIR / f"{name}.png").is_file():
        raise NotFound("お探しの画像は見つかりませんでした。")
    # Read whole (each is ≤ 150 KB): no file stays open for a client that never reads the answer.
    response = Response((SCREENSHOTS_DIR / f"{name}.png").read_bytes(), mimetype="image/png")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response
