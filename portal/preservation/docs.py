"""The customer documents in docs/ (R27) as help pages: /help/docs/<name>, printable on A4."""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from markdown_it import MarkdownIt
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


@lru_cache(maxsize=8)
def _render(name: str, mtime: float) -> str:
    parser = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
    return parser.render((DOCS_DIR / f"{name}.md").read_text(encoding="utf-8"))


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
