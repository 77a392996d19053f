"""Files the running portal reads from outside its Python modules: docs/ and migrations/.

In an installed package they are inside it (portal/_bundled, copied there by setup.py at build time);
in a source checkout they stay beside portal/.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """The directory `name` ("docs" or "migrations") of this installation."""
    installed = PACKAGE / "_bundled" / name
    return installed if installed.is_dir() else PACKAGE.parent / name
