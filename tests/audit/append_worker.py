"""A process appending audit events on its own: `python -m tests.audit.append_worker CONFIG.json COUNT LABEL`.

Waits until START_FILE (next to the config) exists, so that several processes begin together.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from portal import create_app
from tests.audit.helpers import append_events


def main() -> None:
    config_path, count, label = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    app = create_app(json.loads(config_path.read_text(encoding="utf-8")))
    start = config_path.with_name("start")
    deadline = time.monotonic() + 60
    while not start.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    append_events(app, count, label=label)
    app.extensions["portal.engine"].dispose()


if __name__ == "__main__":
    main()
