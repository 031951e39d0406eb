"""Helper processes that die with the process that started them.

A helper (an ``ingest --jobs`` worker, an auditd mapping helper) must not outlive its
owner, however the owner ends: SIGKILL and the OOM killer included, where no ``atexit``,
``finally`` or pool shutdown runs. Left alone, a ``ProcessPoolExecutor``'s workers do
outlive it: each holds both ends of its call queue's pipe, so it never reads end of file and
waits for work forever; the fork server (alive while any process holds the write end of its
"alive" pipe, and every forked helper does) and multiprocessing's resource tracker (alive
while any process holds its pipe, and every helper does) then wait on the helpers.

So every helper calls :func:`die_with` first, in its pool's initializer:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the helper the moment
  its parent dies. That parent is the owner for a spawned worker, the fork server for a
  helper forked from one. The signal follows the parent *thread* that started the helper:
  the pools start their processes from the thread that submits work, which outlives them
  here (the ingest's thread; the fork server's only thread).
- a watchdog thread that ends the helper once the owner, named by pid (the helper's parent,
  or its grandparent through a fork server), is gone: it waits on a pidfd where there is one
  (Linux 5.3 and later), otherwise it looks every :data:`POLL_SECONDS`. A watchdog needs
  the GIL to act, so it can lag behind a long computation; the signal cannot.

Once the helpers are gone the fork server and the resource tracker read end of file on their
pipes and exit by themselves, so nothing is left running
(``tests/test_process_lifetime.py`` SIGKILLs an ingest and looks for survivors).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
import time

POLL_SECONDS = 0.5
EXIT_ORPHANED = 1  # the exit status of a helper whose owner is gone
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with(owner: int) -> None:
    """End this process (a helper) when process ``owner`` ends; ``owner`` is the parent or
    the grandparent of this process. Call it before any work, e.g. in a pool initializer."""
    if sys.platform.startswith("linux"):
        _kill_me_with_my_parent()
    if not _owned_by(owner):  # the owner (or the fork server between us) is already gone
        os._exit(EXIT_ORPHANED)
    threading.Thread(target=_watch, args=(owner,), name="auditlens-die-with-owner",
                     daemon=True).start()


def _kill_me_with_my_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):  # no libc prctl: the watchdog remains
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _watch(owner: int) -> None:
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):  # no pidfd here, or the owner is gone
        pidfd = os.pidfd_open(owner)
    # checked after opening: the pidfd is the owner's, not that of a later process given its pid
    if pidfd is not None and _owned_by(owner):
        select.select([pidfd], [], [])  # readable once the owner has exited
    else:
        while _owned_by(owner):
            time.sleep(POLL_SECONDS)
    os._exit(EXIT_ORPHANED)


def _owned_by(owner: int) -> bool:
    """Whether ``owner`` is still this process's parent or grandparent. A process whose
    parent dies is given to init (or a subreaper), so a dead owner is no ancestor: unlike
    ``kill(pid, 0)``, this is not fooled by an owner that is a zombie or a reused pid."""
    parent = os.getppid()
    if parent == owner:
        return True
    try:
        with open(f"/proc/{parent}/stat", "rb") as f:
            stat = f.read()
    except OSError:  # no /proc (not Linux): the best there is
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
    return int(stat[stat.rindex(b")") + 2:].split()[1]) == owner
