"""The WSGI app GunicornServer serves: create_app() with the test's settings, read from PORTAL_TEST_APP_CONFIG."""

from __future__ import annotations

import json
import os
from pathlib import Path

from portal import create_app

app = create_app(json.loads(Path(os.environ["PORTAL_TEST_APP_CONFIG"]).read_text(encoding="utf-8")))
