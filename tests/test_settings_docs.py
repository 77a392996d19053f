"""Every setting is documented: docs/settings.md lists each key of portal.config.DEFAULTS."""

from pathlib import Path

from portal.config import DEFAULTS

DOC = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_table():
    missing = [key for key in DEFAULTS if f"`PORTAL_{key}`" not in DOC]
    assert missing == []
