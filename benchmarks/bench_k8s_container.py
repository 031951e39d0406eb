"""k8s_container CRI logs: parse and ingest against DuckDB read_csv → Parquet (issue 6: container
logs ≥ 200k lines/s, peak memory < 1 GB).

The input is one CRI file under a ``/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log`` path (so
pod, namespace and container come from the path), written deterministically from realistic
messages: the data generator's container logs (payments API JSON lines with a level, ingress
nginx access lines, Prometheus logfmt, CoreDNS) plus the real plaso CRI fixture's messages.
Timestamps advance by a little over a millisecond per entry and are printed as containerd
does (RFC 3339 with nanoseconds, trailing zeros trimmed); every 100th entry is split into
``P`` partials and a closing ``F`` (so ~2% of lines are partials). ``lines`` counts physical
lines.

Baseline: DuckDB reads the same file with ``read_csv`` as one column per line (no quote,
no escape, a delimiter that never occurs), splits each line into its four CRI fields with
``regexp_extract`` (time, stream, tag, message), casts the time to ``TIMESTAMPTZ``, and writes
zstd Parquet — the least a loader has to do, without joining partials or path metadata.
"""

from __future__ import annotations

import random
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

SUITE = "k8s_container"
GEN_EVENTS = 40_000  # generator volume: gives ~4,800 container log messages
GEN_SEED = 3
FIXTURE = ROOT / "tests" / "fixtures" / "k8s-container" / "plaso_cri.log"
POD_DIR = "var/log/pods/payments_payments-api-7c9f8d6b5-x2lqp_7dd0e688-333b-4004-b0f7-9f948f5adf43"
BASE_NS = 1_793_491_200 * 10**9  # 2026-11-01T00:00:00Z
STEP_NS = 1_000_037
SPLIT_EVERY = 100
DUCKDB_CRI_TO_PARQUET = """
import duckdb, sys
src, dst = sys.argv[1], sys.argv[2]
duckdb.sql(f'''
COPY (
  SELECT CAST(f['ts'] AS TIMESTAMPTZ) AS ts, f['stream'] AS stream, f['tag'] AS tag,
         f['msg'] AS message
  FROM (SELECT regexp_extract(line, '^(\\S+) (\\S+) (\\S+) ?(.*)$',
                              ['ts', 'stream', 'tag', 'msg']) AS f
        FROM read_csv('{src}', columns={{'line': 'VARCHAR'}}, delim='\\x01', quote='',
                      escape='', header=false, max_line_size=4000000))
) TO '{dst}' (FORMAT parquet, COMPRESSION zstd)''')
"""


def _templates() -> list[tuple[str, str]]:
    """(stream, message) of every generated container log line and of the plaso fixture."""
    out = WORK / f"k8s_container-gen-{GEN_EVENTS}-{GEN_SEED}"
    pods = out / "k8s" / "pods"
    if not pods.exists():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([PY, str(ROOT / "benchmarks" / "generate.py"), "--out", str(out),
                        "--events", str(GEN_EVENTS), "--seed", str(GEN_SEED)],
                       check=True, stdout=subprocess.DEVNULL)
    files = [*sorted(pods.glob("*/*/0.log")), FIXTURE]
    found: list[tuple[str, str]] = []
    for path in files:
        for line in path.read_text().splitlines():
            parts = line.split(" ", 3)
            if len(parts) == 4 and parts[2] == "F" and len(parts[3]) < 4096:
                found.append((parts[1], parts[3]))
    # a seeded shuffle interleaves the pods, so every block of lines holds every kind
    random.Random(GEN_SEED).shuffle(found)
    return found


def _stamp(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano)."""
    from datetime import UTC, datetime

    sec, frac = divmod(ns, 10**9)
    text = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def generate(path: Path, lines: int) -> int:
    """Write at least ``lines`` CRI lines; returns the exact number of lines written."""
    templates = _templates()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    written = 0
    entry = 0
    with tmp.open("w") as out:
        while written < lines:
            stream, msg = templates[entry % len(templates)]
            stamp = _stamp(BASE_NS + entry * STEP_NS)
            if entry % SPLIT_EVERY == SPLIT_EVERY - 1 and len(msg) > 20:
                cut1, cut2 = len(msg) // 3, 2 * len(msg) // 3
                out.write(f"{stamp} {stream} P {msg[:cut1]}\n"
                          f"{stamp} {stream} P {msg[cut1:cut2]}\n"
                          f"{stamp} {stream} F {msg[cut2:]}\n")
                written += 3
            else:
                out.write(f"{stamp} {stream} F {msg}\n")
                written += 1
            entry += 1
    tmp.replace(path)
    return written


def measure(scale: int) -> list[Measurement]:
    src = WORK / f"k8s_container-{scale}" / POD_DIR / "api" / "0.log"
    count = WORK / f"k8s_container-{scale}.count"
    if not src.exists() or not count.exists():
        count.write_text(str(generate(src, scale)))
    lines = int(count.read_text())
    size = src.stat().st_size
    parquet = WORK / "baseline-k8s_container.parquet"
    wall, rss = run_measured([PY, "-c", DUCKDB_CRI_TO_PARQUET, str(src), str(parquet)])
    parquet.unlink(missing_ok=True)
    out = [Measurement(SUITE, "duckdb read_csv + regexp_extract → Parquet", "baseline", lines,
                       size, wall, rss, "lines")]
    return out + parse_and_ingest(SUITE, src, SUITE, lines, "lines")
