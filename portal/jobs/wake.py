"""Waking the separate worker process (portal/jobs/process.py) from a web process: a datagram on a
Unix socket whose path the gunicorn master puts in the environment."""

from __future__ import annotations

import socket
from pathlib import Path

WAKE_SOCKET_ENV = "PORTAL_WORKER_WAKE_SOCKET"


def notify(path: str) -> None:
    """Wake the worker process listening on `path`; nothing happens when it is not there."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)
            sender.sendto(b"w", path)
    except OSError:  # not started yet, restarting, or its queue is full: it polls anyway
        pass


class WakeSocket:
    """The worker's end: wait() returns when woken or after `timeout` seconds."""

    def __init__(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(path)
        self.path = path

    def wait(self, timeout: float) -> None:
        self._socket.settimeout(timeout)
        try:
            self._socket.recv(64)
        except TimeoutError:
            return
        self._socket.setblocking(False)
        try:
            while self._socket.recv(64):  # several commits at once are one round
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        self._socket.close()
        Path(self.path).unlink(missing_ok=True)
