"""Shared pieces of the benchmarks: fresh-process measurement and the result record."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"
PY = sys.executable


@dataclass
class Measurement:
    """One timed run. ``kind`` is ``baseline`` (the reference of its suite) or ``auditlens``;
    ``unit`` names what ``events`` counts (events, lines, records)."""

    suite: str
    name: str
    kind: str
    events: int
    input_bytes: int
    wall: float
    peak_rss_mb: float
    unit: str = "events"


REPEAT = 1  # runs of each measurement; the fastest counts (run.py --repeat)


def run_measured(cmd: list[str], fresh: Path | None = None) -> tuple[float, float]:
    """Run a command in a fresh process, :data:`REPEAT` times; the shortest wall time in
    seconds and the largest peak memory in MB.

    The shortest run is the one least disturbed by other work on a shared machine, for the
    baselines and for us alike. The peak is that of the whole process tree (the command and
    the processes it starts, such as ``--jobs`` workers or auditd's helpers), summed
    (proportional set sizes), sampled every 50 ms; or the largest single process's peak
    from ``wait4`` when that is larger (a short spike between samples).

    Args:
        cmd: the command.
        fresh: a directory removed before each run (the store an ingest writes).
    """
    runs = []
    for _ in range(max(1, REPEAT)):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        runs.append(_run_once(cmd))
    return min(w for w, _ in runs), max(r for _, r in runs)


def _run_once(cmd: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = threading.Event()
    peak = [0]

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{err}")
    return wall, max(usage.ru_maxrss, peak[0]) / 1024


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KB (Linux /proc): each
    process's proportional share (Pss), so pages that forked helpers share with the
    process they were forked from are counted once, not once per process."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                total += next((int(line.split()[1]) for line in fh
                               if line.startswith("Pss:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):  # the process ended meanwhile
            continue
    return total


def parse_cmd(path: Path, fmt: str) -> list[str]:
    """Parse a file with one loader, no store (``loaders.iter_batches``)."""
    code = ("import sys, loaders; n = sum(t.num_rows for t in "
            "loaders.iter_batches(sys.argv[1], format=sys.argv[2])); assert n > 0")
    return [PY, "-c", code, str(path), fmt]


def ingest_cmd(path: Path, store: Path, *extra: str) -> list[str]:
    """``auditlens ingest PATH --store STORE``."""
    return [PY, "-m", "analysis.cli", "ingest", str(path), "--store", str(store), *extra]


def parse_and_ingest(suite: str, src: Path, fmt: str, count: int,
                     unit: str = "events") -> list[Measurement]:
    """The two auditlens rows of a suite: parse only, and ``auditlens ingest`` into a fresh
    store of the suite's own (so suites never share one)."""
    size = src.stat().st_size
    wall, rss = run_measured(parse_cmd(src, fmt))
    out = [Measurement(suite, "parse (loaders.iter_batches)", "auditlens", count, size, wall,
                       rss, unit)]
    store = WORK / f"store-{suite}"
    wall, rss = run_measured(ingest_cmd(src, store), fresh=store)
    out.append(Measurement(suite, "ingest (auditlens ingest)", "auditlens", count, size, wall,
                           rss, unit))
    shutil.rmtree(store, ignore_errors=True)
    return out
