"""The staff manual shows the browser tests' screenshots: each picture it names is committed, small,
and served on /help/docs; no other image source (a URL, a path out of the folder) reaches the page."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from portal.preservation.docs import DOCS_DIR, render_markdown

MANUAL = DOCS_DIR / "manual-staff.md"
SCREENSHOTS = DOCS_DIR / "screenshots"
MAX_BYTES = 150 * 1024
PICTURE = re.compile(r"!\[([^\]]*)\]\(([^)]*)\)")


def _pictures() -> list[tuple[str, str]]:
    return PICTURE.findall(MANUAL.read_text(encoding="utf-8"))


def test_every_picture_of_the_manual_is_a_committed_small_screenshot() -> None:
    pictures = _pictures()
    assert len(pictures) >= 10
    for alt, src in pictures:
        assert alt, src  # the picture says what it shows (also for screen readers)
        match = re.fullmatch(r"screenshots/([a-z0-9-]+\.png)", src)
        assert match, f"{src}: the manual shows only docs/screenshots/*.png"
        path = SCREENSHOTS / match.group(1)
        assert path.is_file(), f"{src} is referenced by the manual but not committed"
        assert path.stat().st_size <= MAX_BYTES, f"{src} is {path.stat().st_size} bytes"
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), src


def test_the_manual_page_shows_its_pictures_and_serves_them(client: FlaskClient) -> None:
    html = client.get("/help/docs/manual-staff").get_data(as_text=True)
    for alt, src in _pictures():
        assert f'<img src="{src}" alt="{alt}" loading="lazy">' in html
        response = client.get(f"/help/docs/{src}")
        assert response.status_code == 200, src
        assert response.mimetype == "image/png"
        assert response.data == (DOCS_DIR / src).read_bytes()
        response.close()


@pytest.mark.parametrize("path", [
    "/help/docs/screenshots/..%2Fmanual-staff.png",
    "/help/docs/screenshots/%2E%2E.png",
    "/help/docs/screenshots/../manual-staff.md",
    "/help/docs/screenshots/README.png",
    "/help/docs/screenshots/Manual-backup.png",
    "/help/docs/screenshots/manual-backup.png.png",
    "/help/docs/screenshots/" + "a" * 200 + ".png",
])
def test_nothing_else_is_served_as_a_screenshot(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "image/png" not in response.content_type


@pytest.mark.parametrize("markdown", [
    "![外部](https://evil.example/x.png)",
    "![上へ](screenshots/../../portal/static/x.png)",
    "![データ](data:image/png;base64,AAAA)",
    "![存在しない](screenshots/no-such-picture.png)",
    '![" onerror="alert(1)](screenshots/manual-backup.png)',
])
def test_other_images_render_as_their_text_only(markdown: str) -> None:
    html = render_markdown(markdown)
    if "manual-backup" in markdown:
        assert '<img src="screenshots/manual-backup.png" alt="&quot; onerror=&quot;alert(1)"' in html
    else:
        assert "<img" not in html
