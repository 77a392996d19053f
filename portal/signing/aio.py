"""One event loop per process for pyhanko's async API.

pyhanko's synchronous wrappers start a new event loop per call, and an aiohttp
session cannot outlive its loop; a long-lived loop in a daemon thread lets the
external TSA and CRL fetchers keep one pooled session (a TSA round trip then costs a
few ms instead of ~20 ms for a new session).  Callers from any thread use run().
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _forget_loop() -> None:
    # A forked worker (gunicorn --preload) inherits the loop object but not its thread.
    global _loop, _thread, _lock
    _loop, _thread, _lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_forget_loop)


def loop() -> asyncio.AbstractEventLoop:
    """The process-wide signing loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            new_loop = asyncio.new_event_loop()
            thread = threading.Thread(target=new_loop.run_forever, name="portal-signing-loop", daemon=True)
            thread.start()
            _loop = new_loop
        return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the signing loop and return its result (re-raises its error).

    Raises RuntimeError when called from the signing loop itself (it would deadlock).
    """
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("aio.run() called from the signing loop; await the coroutine instead")
    return asyncio.run_coroutine_threadsafe(coro, loop()).result()
