"""Helper processes die with their parent, and a dead ``--jobs`` worker fails only its file.

An ingest is SIGKILLed (no ``atexit``, no ``finally``, no pool shutdown runs: as with the
OOM killer) while its ``--jobs 2`` workers parse, then while the auditd helpers map (fork
server, helpers forked from it, multiprocessing's resource tracker); nothing it started may
be left running (:mod:`loaders.parsing.lifetime`). Then one ``--jobs 2`` worker is SIGKILLed
while it parses a file: that file fails with the reason, the run goes on with the others
(:class:`loaders.ingest.pipeline._Workers`).

Processes are found in ``/proc``: an ingest runs in a session of its own, which every
process it starts inherits (none calls ``setsid``), so the session's members are exactly
what it started, grandchildren included, even once they are given to init. A zombie
(state ``Z``) has exited: init in a container need not reap it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from analysis import read_manifest
from loaders.ingest.pipeline import WORKER_DIED
from tests.conftest import FIXTURES, ROOT
from tests.helpers import k8s_audit_events

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc")

GONE_WITHIN = 10.0  # seconds the helpers have to notice their owner is gone
WAIT_FOR_STATE = 120.0  # bound on waiting for the run to reach the state a test needs


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, session id) of a process, None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[1]), int(fields[3])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running_in_session(sid: int) -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command line) of every process of session ``sid`` not yet exited."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[2] == sid and st[0] != "Z":
                out[int(entry)] = (st[1], _cmdline(int(entry)))
    return out


def _has_open(pid: int, name: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(name):
                return True
        except OSError:
            pass
    return False


def _waiting(pid: int) -> bool:
    """Whether the process sleeps other than in writing to a pipe."""
    st = _stat(pid)
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
    return st is not None and st[0] == "S" and "write" not in wchan


def _wait_for(what: str, found: Callable[[], object]) -> object:
    """Poll ``found`` until it gives something true (bounded by WAIT_FOR_STATE)."""
    deadline = time.monotonic() + WAIT_FOR_STATE
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"the ingest never reached the state: {what}")


def _write_k8s(path: Path, tag: str, copies: int, events: list[dict]) -> int:
    """``copies`` copies of the falco fixture's distinct events (the fixture repeats two
    auditIDs), each copy with new auditIDs; the count."""
    distinct = list({ev["auditID"]: ev for ev in events}.values())
    lines = []
    for c in range(copies):
        for ev in distinct:
            lines.append(json.dumps({**ev, "auditID": str(uuid.uuid5(
                uuid.NAMESPACE_URL, f"{tag}/{c}/{ev['auditID']}"))}))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def _start(args: list[str], output: bool = False) -> subprocess.Popen[str]:
    """Run this tree's Python in a new session. Its output is kept only when asked: a
    process left running would hold the pipes open, and reading them would never end."""
    stream = subprocess.PIPE if output else subprocess.DEVNULL
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, text=True, env=env,
                            stdout=stream, stderr=stream, start_new_session=True)


def _kill_owner_then_expect_nothing_left(proc: subprocess.Popen[str],
                                         started: dict[int, tuple[int, str]]) -> None:
    """SIGKILL the ingest itself (not its session), then poll its session until nothing of
    it runs; the bound is the only timing here."""
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        deadline = time.monotonic() + GONE_WITHIN
        left = _running_in_session(proc.pid)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = _running_in_session(proc.pid)
        assert left == {}, f"still running after {GONE_WITHIN} s: {left}; started: {started}"
    finally:  # whatever happened, leave nothing behind for the next test
        for pid in _running_in_session(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_sigkilled_parallel_ingest_leaves_no_process(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    events = k8s_audit_events()
    for i in range(4):
        _write_k8s(inputs / f"f{i}.jsonl", f"lifetime{i}", 150, events)
    proc = _start(["-m", "analysis.cli", "ingest", str(inputs), "--store",
                   str(tmp_path / "store"), "--jobs", "2"])

    def parsing() -> dict[int, tuple[int, str]]:
        procs = _running_in_session(proc.pid)
        workers = [p for p, (ppid, cmd) in procs.items()
                   if ppid == proc.pid and "spawn_main" in cmd]
        busy = any(_has_open(w, ".jsonl") for w in workers)
        return procs if len(workers) == 2 and busy else {}

    started = _wait_for("two workers, one parsing", parsing)
    assert isinstance(started, dict)
    _kill_owner_then_expect_nothing_left(proc, started)


AUDITD_DRIVER = """
import sys
from loaders.base import LoadOptions, Tuning
from loaders.ingest.pipeline import ingest
from loaders.store.store import Store

if __name__ == "__main__":  # the fork server imports nothing of this script
    options = LoadOptions(helpers=2, tuning=Tuning(auditd_offload_bytes=0))
    report = ingest(Store(sys.argv[2]), [sys.argv[1]], options=options)
    print(report.totals())
"""


def test_sigkilled_ingest_with_auditd_helpers_leaves_no_process(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    fixtures = b"\n".join(p.read_bytes() for p in sorted((FIXTURES / "linux-auditd").glob("*"))
                          if p.suffix in (".log", ".txt"))
    log.write_bytes(fixtures * 80)
    driver = tmp_path / "driver.py"
    driver.write_text(AUDITD_DRIVER)
    store = tmp_path / "store"
    proc = _start([str(driver), str(log), str(store)])

    def mapping() -> dict[int, tuple[int, str]]:
        procs = _running_in_session(proc.pid)
        servers = [p for p, (ppid, cmd) in procs.items()
                   if ppid == proc.pid and "forkserver" in cmd]
        helpers = [p for p, (ppid, _) in procs.items() if servers and ppid == servers[0]]
        # rows mapped by the helpers are being written: they have work in hand
        writing = any((store / ".tmp").rglob("*.events.*.parquet"))
        return {p: procs[p] for p in helpers} if len(helpers) == 2 and writing else {}

    helpers = _wait_for("a fork server and two helpers mapping", mapping)
    assert isinstance(helpers, dict)
    # the kill lands mid-file, at a moment both helpers wait for their next chunk (reading
    # is the slower half, so they often do): the helpers found alive after a kill (issue 17)
    # were waiting so, where one sending a result to a dead owner may end on a broken pipe
    _wait_for("both helpers waiting for work", lambda: all(map(_waiting, helpers)))
    assert _has_open(proc.pid, "audit.log")
    started = _running_in_session(proc.pid)
    _kill_owner_then_expect_nothing_left(proc, started)


def test_a_killed_worker_fails_only_its_file(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    events = k8s_audit_events()
    counts = {}
    for name, copies in (("a.jsonl", 2), ("b-big.jsonl", 300), ("c.jsonl", 2), ("d.jsonl", 3),
                         ("e.jsonl", 2), ("f.jsonl", 4)):
        counts[name] = _write_k8s(inputs / name, name, copies, events)
    store = tmp_path / "store"
    proc = _start(["-m", "analysis.cli", "ingest", str(inputs), "--store", str(store),
                   "--jobs", "2"], output=True)
    try:
        def parsing_big() -> int:
            for pid, (ppid, cmd) in _running_in_session(proc.pid).items():
                if ppid == proc.pid and "spawn_main" in cmd and _has_open(pid, "b-big.jsonl"):
                    return pid
            return 0

        worker = _wait_for("a worker parsing b-big.jsonl", parsing_big)
        assert isinstance(worker, int)
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        for pid in _running_in_session(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "BrokenProcessPool" not in err
    rows = {line.split()[0].rsplit("/", 1)[-1]: line for line in out.splitlines()
            if line.startswith(str(inputs))}
    assert list(rows) == list(counts)
    for name, n in counts.items():
        if name == "b-big.jsonl":
            assert rows[name].split()[1:7] == ["k8s_audit", "failed", "0", "0", "0", "0"]
            assert rows[name].endswith(WORKER_DIED)
        else:
            assert rows[name].split()[1:7] == ["k8s_audit", "ingested", f"{n:,}", f"{n:,}",
                                               "0", "0"]
    assert "6 files: 5 ingested, 0 stopped, 0 skipped, 0 refused, 1 failed" in out
    total = sum(n for name, n in counts.items() if name != "b-big.jsonl")
    assert f"records: {total:,} read = {total:,} loaded + 0 rejected + 0 duplicate" in out
    m = read_manifest(store).sort_values("path")
    assert [Path(p).name for p in m["path"]] == [n for n in counts if n != "b-big.jsonl"]
    assert list(m["status"]) == ["ingested"] * 5
    assert list(m["records_loaded"]) == [n for name, n in counts.items() if name != "b-big.jsonl"]
