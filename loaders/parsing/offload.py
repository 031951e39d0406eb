"""Running the costly half of a loader in a helper process, in order, with bounded memory.

A loader whose work splits into a cheap ordered half (reading, grouping records into
events) and a costly pure half (mapping events to rows) can hand the pure half to a helper
process and so use a second core on one file. :class:`Ahead` submits chunks of work to a
process pool and gives the results back in submission order; at most ``ahead`` chunks are
in flight, so memory stays bounded whatever the file size.

The work function must be a module-level function (it is pickled by reference) that
depends only on its argument and the modules it imports: running it in the helper or in
this process gives the same result. That is what makes the fallback safe: when the helper
dies (killed, out of memory) or a chunk cannot be pickled, the chunk is computed here, and
the rest of the file goes on in this process.

The pool is created once per process, on first use, and its imports are paid once,
whatever the number of files (helpers are forked from a fork server that imported the work's
module; forking this process, which runs Arrow threads, would be unsafe).
:func:`helpers_for` says how many helpers a file may use.
"""

from __future__ import annotations

import atexit
import os
import signal
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Generic, TypeVar

from loaders.parsing.lifetime import die_with

T = TypeVar("T")
R = TypeVar("R")

_POOLS: dict[int, ProcessPoolExecutor] = {}
_FAILED = False  # a helper died or could not start: compute in this process from now on


def helpers_for(requested: int | None) -> int:
    """Helper processes to use: ``requested``; when None, two on a machine with two cores
    or more (measured on two cores: the reading process and two helpers keep both busy,
    one helper leaves the reader waiting half the time), none on one core, where helpers
    only add copying. None at all once a helper failed in this process: a failure is not
    retried file after file."""
    if _FAILED:
        return 0
    if requested is not None:
        return max(0, requested)
    return 2 if (os.cpu_count() or 1) >= 2 else 0


def _pool(workers: int, module: str) -> ProcessPoolExecutor:
    """The pool of ``workers`` helpers. They are forked from a fork server, a fresh
    single-threaded process (never this one, which runs Arrow threads) that imports
    ``module`` once: each helper then starts in milliseconds instead of paying its own
    imports (about 0.6 s of CPU each; 4% of an auditd ingest on two cores)."""
    pool = _POOLS.get(workers)
    if pool is None:
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload([module, __name__])  # the work, and _helper_init
        pool = _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=ctx,
                                                     initializer=_helper_init,
                                                     initargs=(os.getpid(),))
    return pool


def _helper_init(owner: int) -> None:
    """A helper dies with the reading process ``owner``, however that ends
    (:func:`loaders.parsing.lifetime.die_with`; the fork server then exits by itself). It
    ignores Ctrl-C, which is for the reading process, which stops the helpers; a helper that
    took it too would only print a traceback of its own."""
    die_with(owner)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _noop(_: object) -> None:
    return None


@atexit.register
def shutdown() -> None:
    """Stop the helpers (at exit, or when a caller wants its processes back)."""
    for pool in _POOLS.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _POOLS.clear()


class Ahead(Generic[T, R]):
    """Ordered, bounded hand-off of chunks to helper processes.

    Args:
        fn: the work, a module-level function of one chunk.
        workers: helper processes (at least 1).
        ahead: the most chunks in flight; :meth:`put` waits for the oldest beyond it.
    """

    def __init__(self, fn: Callable[[T], R], workers: int = 1, ahead: int = 4) -> None:
        self._fn = fn
        self._ahead = max(1, ahead)
        self._pending: deque[tuple[T, Future[R] | None]] = deque()
        self._pool: ProcessPoolExecutor | None = None
        if not _FAILED:
            try:
                self._pool = _pool(max(1, workers), fn.__module__)
            except Exception:  # no processes here (a sandbox, no /dev/shm): compute here
                self._fail()
            self._submit(_noop, None)  # start the helpers now: imports overlap our reading

    def put(self, chunk: T) -> list[R]:
        """Submit a chunk; the results that must be taken now to stay within ``ahead``
        (oldest first), and any others already done."""
        self._pending.append((chunk, self._submit(self._fn, chunk)))
        out = []
        while len(self._pending) > self._ahead or (
                self._pending and self._ready(self._pending[0][1])):
            out.append(self._take())
        return out

    def drain(self) -> list[R]:
        """Every result still in flight, in order."""
        return [self._take() for _ in range(len(self._pending))]

    def cancel(self) -> None:
        """Forget the chunks in flight (the caller stopped reading)."""
        for _, future in self._pending:
            if future is not None:
                future.cancel()
        self._pending.clear()

    def _submit(self, fn: Callable[[Any], Any], arg: object) -> Future[Any] | None:
        if self._pool is None:
            return None
        try:
            return self._pool.submit(fn, arg)
        except Exception:  # a broken pool: compute here from now on
            self._fail()
            return None

    def _fail(self) -> None:
        global _FAILED
        _FAILED = True
        self._pool = None
        for pool in _POOLS.values():
            pool.shutdown(wait=False, cancel_futures=True)
        _POOLS.clear()

    @staticmethod
    def _ready(future: Future[R] | None) -> bool:
        return future is None or future.done()

    def _take(self) -> R:
        chunk, future = self._pending.popleft()
        if future is not None:
            try:
                return future.result()
            except Exception:  # the helper died or the chunk did not pickle
                self._fail()
                # chunks still in flight are computed here too (their futures may hang
                # on a broken pool)
                self._pending = deque((c, None) for c, _ in self._pending)
        return self._fn(chunk)

