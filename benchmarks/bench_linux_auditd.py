"""linux_auditd raw audit.log: parse and ingest against ``ausearch --format csv`` and msticpy.

The input is the generator's ``linux/app-01/audit.log`` (multi-record syscall events, PAM
user-space records, hex arguments, SOCKADDR…) tiled until it holds ``scale`` events (see
:func:`generate`). The baselines come from
``benchmarks/setup_baselines.sh`` (``ausearch`` from Debian's ``auditd``; msticpy in its own
venv, ``msticpy.transform.auditdextract.read_from_file``, skipped when that venv is missing).
The first row (ausearch) is the suite's reference; compare msticpy's row with the ingest row
for the "≥ 5× msticpy" bar.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from benchmarks.harness import (
    PY,
    ROOT,
    WORK,
    Measurement,
    parse_and_ingest,
    run_measured,
)

SUITE = "linux_auditd"
BASE_EVENTS = 20_000  # --events of the generator run the base file comes from
SEED = 5
MSTICPY_PY = WORK / "venv-msticpy" / "bin" / "python"
MSTICPY_READ = (
    "import sys; from msticpy.transform.auditdextract import read_from_file; "
    "df = read_from_file(sys.argv[1]); assert len(df) > 0"
)
_STAMP = re.compile(rb"msg=audit\((\d+)\.(\d+):(\d+)\)")


def base_log() -> Path:
    """The generator's audit.log at BASE_EVENTS (generated once into benchmarks/work)."""
    out = WORK / f"auditd-gen-{BASE_EVENTS}-{SEED}"
    log = out / "linux" / "app-01" / "audit.log"
    if not log.exists():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([PY, str(ROOT / "benchmarks" / "generate.py"), "--out", str(out),
                        "--events", str(BASE_EVENTS), "--seed", str(SEED)],
                       check=True, stdout=subprocess.DEVNULL)
    return log


def generate(path: Path, events: int) -> int:
    """Tile the base log until it holds at least ``events`` events; returns the event count.

    Copy ``k`` of ``C`` gets serials shifted past the previous copy's and its clock squeezed
    into the k-th C-th of the base log's time span: the file stays in time order, every event
    stays distinct, and the whole log covers the same ~14 days as the base (a 100 MB log is
    denser than the generator's, it does not span a year of daily store partitions).

    Args:
        path: the file to write.
        events: the minimum number of distinct (time, serial) events.

    Returns:
        The number of events written (whole copies of the base file).
    """
    data = base_log().read_bytes()
    stamps = {(m[1], m[2], m[3]) for m in _STAMP.finditer(data)}
    if any(len(frac) != 3 for _, frac, _ in stamps):
        raise SystemExit("base audit.log: expected millisecond stamps")
    per_copy = len(stamps)
    millis = [int(s) * 1000 + int(f) for s, f, _ in stamps]
    start, span = min(millis), max(millis) - min(millis) + 1
    serial_span = max(int(n) for _, _, n in stamps) + 1
    copies = -(-events // per_copy)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for k in range(copies):
            def shift(m: re.Match[bytes], k: int = k) -> bytes:
                ms = start + k * (span // copies) + (int(m[1]) * 1000 + int(m[2]) - start) \
                    // copies
                serial = int(m[3]) + k * serial_span
                return b"msg=audit(%d.%03d:%d)" % (ms // 1000, ms % 1000, serial)
            out.write(_STAMP.sub(shift, data))
    tmp.replace(path)
    return copies * per_copy


def measure(scale: int) -> list[Measurement]:
    src = WORK / f"linux_auditd-{scale}.log"
    count = WORK / f"linux_auditd-{scale}.count"
    if not src.exists() or not count.exists():
        count.write_text(str(generate(src, scale)))
    events = int(count.read_text())
    size = src.stat().st_size
    out: list[Measurement] = []
    ausearch = shutil.which("ausearch")
    if ausearch is None:
        raise SystemExit("ausearch missing: run benchmarks/setup_baselines.sh")
    wall, rss = run_measured([ausearch, "-if", str(src), "--format", "csv"])
    out.append(Measurement(SUITE, "ausearch --format csv (auditd 3)", "baseline", events, size,
                           wall, rss))
    if MSTICPY_PY.exists():
        # msticpy's reader splits each line at ": " and fails (IndexError) on the EOE
        # records every kernel event ends with (they have no field after the stamp), so it
        # reads the same log without them: less work for it, never more
        no_eoe = src.with_suffix(".no-eoe.log")
        if not no_eoe.exists() or no_eoe.stat().st_mtime < src.stat().st_mtime:
            with src.open("rb") as inp, no_eoe.open("wb") as dst:
                dst.writelines(line for line in inp if not line.startswith(b"type=EOE "))
        wall, rss = run_measured([str(MSTICPY_PY), "-c", MSTICPY_READ, str(no_eoe)])
        out.append(Measurement(SUITE, "msticpy auditdextract.read_from_file", "baseline", events,
                               size, wall, rss))
    return out + parse_and_ingest(SUITE, src, SUITE, events)
