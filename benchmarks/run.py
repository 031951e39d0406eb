"""Benchmark harness: ``python benchmarks/run.py [--events N]`` (or ``make bench``).

Generates inputs at the chosen scale under ``benchmarks/work/``, runs every measurement in a
fresh process (wall time and peak RSS from ``wait4``), and rewrites the generated section of
``docs/BENCHMARKS.md`` with the machine, date, versions and, per measurement, events/s, MB/s,
wall time, peak RSS and the ratio to the baseline measured in the same run. The machines are
shared and noisy, so only ratios within one run are meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"
DOC = ROOT / "docs" / "BENCHMARKS.md"
FIXTURE = ROOT / "tests" / "fixtures" / "k8s-audit" / "falco_trace_files_k8s_audit.jsonl"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


@dataclass
class Measurement:
    name: str
    kind: str  # "auditlens" or "baseline"
    events: int
    input_bytes: int
    wall: float
    peak_rss_mb: float


def generate_k8s_audit(path: Path, events: int) -> int:
    """Write ``events`` distinct audit events built from the real falco fixture's events."""
    templates = [json.loads(x) for x in FIXTURE.read_text().splitlines()]
    templates = [t for t in templates if "auditID" in t]
    base = datetime(2026, 11, 1, tzinfo=UTC)
    rng_ns = uuid.UUID("6f1c0b1e-0000-4000-8000-000000000000")
    with path.open("w") as out:
        for i in range(events):
            ev = dict(templates[i % len(templates)])
            ts = (base + timedelta(milliseconds=37 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            ev["auditID"] = str(uuid.uuid5(rng_ns, str(i)))
            ev["requestReceivedTimestamp"] = ev["stageTimestamp"] = ts
            ev["timestamp"] = ts[:19] + "Z"
            out.write(json.dumps(ev, separators=(",", ":")) + "\n")
    return path.stat().st_size


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """Run a command in a fresh process; wall seconds and peak RSS in MB."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024


def measure_k8s_audit(events: int) -> list[Measurement]:
    src = WORK / f"k8s_audit-{events}.jsonl"
    if not src.exists():
        generate_k8s_audit(src, events)
    size = src.stat().st_size
    py = sys.executable
    out: list[Measurement] = []
    parquet = WORK / "baseline.parquet"
    baseline = (
        "import duckdb, sys; duckdb.sql(f\"COPY (SELECT * FROM read_json('{sys.argv[1]}', "
        "format='newline_delimited')) TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd)\")"
    )
    wall, rss = run_measured([py, "-c", baseline, str(src), str(parquet)])
    out.append(Measurement("duckdb read_json → Parquet", "baseline", events, size, wall, rss))
    parse_only = ("import sys, loaders; n = sum(t.num_rows for t in "
                  "loaders.iter_batches(sys.argv[1])); assert n > 0")
    wall, rss = run_measured([py, "-c", parse_only, str(src)])
    out.append(Measurement("k8s_audit parse (loaders.iter_batches)", "auditlens", events, size,
                           wall, rss))
    store = WORK / "store"
    shutil.rmtree(store, ignore_errors=True)
    wall, rss = run_measured([py, "-m", "analysis.cli", "ingest", str(src), "--store", str(store)])
    out.append(Measurement("k8s_audit ingest (auditlens ingest)", "auditlens", events, size,
                           wall, rss))
    shutil.rmtree(store, ignore_errors=True)
    parquet.unlink(missing_ok=True)
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, " \
           f"{platform.system()} {platform.release()}"


def versions() -> str:
    from importlib.metadata import version

    names = ["auditlens", "pyarrow", "pandas", "duckdb"]
    return ", ".join([f"Python {platform.python_version()}",
                      *(f"{n} {version(n)}" for n in names)])


def render(results: list[Measurement], events: int) -> str:
    base = {m.name: m for m in results if m.kind == "baseline"}
    ref = next(iter(base.values()))
    lines = [
        START,
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python benchmarks/run.py "
        f"--events {events}`.",
        "",
        f"- Machine: {machine()}",
        f"- Versions: {versions()}",
        "",
        "| measurement | events | input MB | wall s | events/s | MB/s | peak RSS MB | "
        "wall ÷ baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        mb = m.input_bytes / 1e6
        lines.append(
            f"| {m.name} | {m.events:,} | {mb:.1f} | {m.wall:.2f} | {m.events / m.wall:,.0f} | "
            f"{mb / m.wall:.1f} | {m.peak_rss_mb:.0f} | {m.wall / ref.wall:.2f} |"
        )
    lines += ["", f"Baseline: {ref.name}, in the same run.", END]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n" + START + "\n" + END + "\n"
    if START not in text:
        text += "\n" + START + "\n" + END + "\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + section + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000, help="events per input")
    parser.add_argument("--no-doc", action="store_true", help="print, do not rewrite the doc")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    results = measure_k8s_audit(args.events)
    section = render(results, args.events)
    print(section)
    if not args.no_doc:
        write_doc(section)


if __name__ == "__main__":
    main()
