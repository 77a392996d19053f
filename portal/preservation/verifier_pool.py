"""一括検証 in several processes: the worker reads and decrypts each document, child processes validate its bytes.

Validating a B-LTA document is pure CPU in pyHanko (~30 ms) and holds the GIL, so threads do not help;
VERIFY_PROCESSES children (spawned: no copy of the worker's database connections, sessions or threads)
each build the signing context once from the same settings and return plain Verdicts, in the order the
documents were handed in. At most two documents per child are in flight, so memory stays bounded by
the largest files rather than by the run.

The built-in root's CRL is read by the worker (which knows the revocations table, portal.signing.pki
current_crl) and handed in with each document: a child never issues a CRL of its own, so a child and
the serial path see the same revocation data. A child whose worker is killed exits by itself.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from portal.preservation.verdicts import Verdict, verify_bytes
from portal.signing.context import SigningContext

T = TypeVar("T")
Read = Callable[[T], "bytes | Verdict"]

IN_FLIGHT_PER_PROCESS = 2
_context: SigningContext | None = None
_crl: bytes | None = None


def process_count(setting: int) -> int:
    """VERIFY_PROCESSES: 0 means one per CPU."""
    return setting if setting > 0 else os.cpu_count() or 1


def verify_in_processes(items: Iterable[T], *, read: Read[T], sha256: Callable[[T], str],
                        settings: Mapping[str, Any], crl: Callable[[], bytes | None],
                        processes: int) -> Iterator[tuple[T, Verdict]]:
    """(item, verdict) for each item, in order. `read(item)` returns the bytes, or the Verdict when they
    cannot be read; `crl()` the built-in root's current CRL. Raises what a child raised (the job retries)."""
    spawn = multiprocessing.get_context("spawn")
    pending: deque[tuple[T, Future[Verdict] | Verdict]] = deque()
    with ProcessPoolExecutor(processes, mp_context=spawn, initializer=_start_child,
                             initargs=(dict(settings),)) as pool:
        for item in items:
            data = read(item)
            pending.append((item, data if isinstance(data, Verdict)
                            else pool.submit(_verify_in_child, data, sha256(item), crl())))
            while len(pending) > processes * IN_FLIGHT_PER_PROCESS:
                yield _oldest(pending)
        while pending:
            yield _oldest(pending)


def _oldest(pending: deque[tuple[T, Future[Verdict] | Verdict]]) -> tuple[T, Verdict]:
    item, outcome = pending.popleft()
    return item, outcome if isinstance(outcome, Verdict) else outcome.result()


def _start_child(settings: dict[str, Any]) -> None:
    global _context
    from portal.signing import service as signing
    from portal.signing.revocation import LocalFirstFetcherBackend

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="verify-parent-watch", daemon=True).start()
    context = signing.build_context(settings)
    assert context.pki is not None
    own_url = context.pki.crl_url
    timeout = float(settings.get("TSA_TIMEOUT", signing.DEFAULTS["TSA_TIMEOUT"]))

    def source(url: str) -> bytes | None:
        return _crl if url == own_url else None

    _context = dataclasses.replace(
        context, fetcher_backend_factory=lambda: LocalFirstFetcherBackend(source, per_request_timeout=timeout))


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _verify_in_child(data: bytes, sha256: str, crl: bytes | None) -> Verdict:
    global _crl
    assert _context is not None
    _crl = crl
    return verify_bytes(data, sha256, context=_context)
