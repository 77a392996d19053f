"""The agency's OpenID provider for the SSO tests: node-oidc-provider (OpenID Certified), from npm, on loopback.

`npm ci` installs it into tests/services/oidc_provider/node_modules on first use. Without node or npm the
tests skip on a laptop and fail under CI=true.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.services.smtp import free_port

HERE = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "keiyaku-portal"
CLIENT_SECRET = "test-client-secret-not-for-production"


@dataclass
class OidcProvider:
    issuer: str
    process: subprocess.Popen[bytes]

    def settings(self) -> dict[str, Any]:
        return {"OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET}


def install() -> str | None:
    """Install the provider's npm package once; the reason when that is impossible here."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "node and npm are needed for the OpenID provider (apt-get install nodejs npm)"
    # Test processes running side by side (pytest -n) would otherwise run `npm ci` into one folder at once.
    with (HERE / "package-lock.json").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (HERE / "node_modules" / "oidc-provider").is_dir():
            result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=HERE, capture_output=True,
                                    timeout=300, check=False)
            if result.returncode != 0:
                return "npm ci of oidc-provider failed: " + result.stderr.decode(errors="replace")[-500:]
    return None


@contextmanager
def running_provider(redirect_uri: str, accounts: dict[str, dict[str, Any]],
                     clock_offset_seconds: int = 0) -> Iterator[OidcProvider]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET,
           "REDIRECT_URI": redirect_uri, "ACCOUNTS": json.dumps(accounts),
           "CLOCK_OFFSET_SECONDS": str(clock_offset_seconds), "NODE_ENV": "test"}
    process = subprocess.Popen([shutil.which("node") or "node", str(HERE / "provider.mjs")], cwd=HERE, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                    raise RuntimeError(f"the OpenID provider did not start: {output[-2000:]}") from None
                time.sleep(0.1)
        yield OidcProvider(issuer=issuer, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if process.stdout:
            process.stdout.close()
