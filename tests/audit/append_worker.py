"""A process appending audit events on its own: `python -m tests.audit.append_worker CONFIG.json COUNT LABEL`.

Connects, says so with a file `ready-LABEL` next to the config, then waits until the file `start`
exists, so that several processes begin appending together (not one finishing while another imports).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sqlalchemy import text

from portal import create_app
from tests.audit.helpers import append_events


def main() -> None:
    config_path, count, label = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    app = create_app(json.loads(config_path.read_text(encoding="utf-8")))
    with app.extensions["portal.engine"].connect() as connection:
        connection.execute(text("SELECT 1"))
    config_path.with_name(f"ready-{label}").touch()
    start = config_path.with_name("start")
    deadline = time.monotonic() + 60
    while not start.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    append_events(app, count, label=label, pause=0.002)
    app.extensions["portal.engine"].dispose()


if __name__ == "__main__":
    main()
