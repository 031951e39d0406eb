"""Benchmark harness: ``python benchmarks/run.py [--events N]`` (or ``make bench``).

Generates inputs at the chosen scale under ``benchmarks/work/``, runs every measurement in a
fresh process (wall time and peak RSS from ``wait4``), and rewrites the generated section of
``docs/BENCHMARKS.md`` with the machine, date, versions and, per measurement, events/s, MB/s,
wall time, peak RSS and the ratio to the baseline measured in the same run. The machines are
shared and noisy, so only ratios within one run are meaningful.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks.harness import ROOT, WORK, Measurement

DOC = ROOT / "docs" / "BENCHMARKS.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
# suites whose results have a section of their own in the doc (run alone, they leave the
# other sections as they are); the rest share the main section
_ANALYSIS = ("<!-- bench:detect:start -->", "<!-- bench:detect:end -->")
OWN_SECTION = {"detect": _ANALYSIS, "report": _ANALYSIS}

# suite name -> module in benchmarks/ with `measure(scale) -> list[Measurement]`; the
# default scale is events (or lines) per input.
SUITES: dict[str, tuple[str, int]] = {
    "k8s_audit": ("bench_k8s_audit", 560_000),  # ~1 GB, the size
    "k8s_container": ("bench_k8s_container", 1_000_000),
    "linux_auditd": ("bench_linux_auditd", 190_000),
    "selectel_audit": ("bench_selectel_audit", 95_000),
    "windows_events": ("bench_windows_events", 180_000),  # one ~295 MB EVTX file
    "small_files": ("bench_small_files", 200),  # files, not events
    "detect": ("bench_detect", 10_000_000),  # events in the store detect runs over
    "report": ("bench_report", 10_000_000),  # the same store, once detect has run
}


def suite_runner(name: str) -> Callable[[int], list[Measurement]]:
    module = importlib.import_module(f"benchmarks.{SUITES[name][0]}")
    return module.measure  # type: ignore[no-any-return]


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


def auditd_modules() -> str:
    """Whether the measured commands ran the compiled auditd modules
    (loaders/linux_auditd/native.py)."""
    from importlib.metadata import version

    from loaders.linux_auditd.native import check

    state = check()
    if state.active:
        return f"compiled with mypyc (mypy {version('mypy')})"
    return f"Python source ({state.reason})"


def render(results: list[Measurement], command: str, start: str = START,
           end: str = END) -> str:
    lines = [
        start,
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}`.",
        "",
        f"- Machine: {machine()}",
        f"- Versions: {versions()}",
        f"- auditd modules: {auditd_modules()}",
    ]
    for suite in dict.fromkeys(m.suite for m in results):
        rows = [m for m in results if m.suite == suite]
        ref = next(m for m in rows if m.kind == "baseline")
        lines += [
            "", f"### {suite}", "",
            f"| measurement | {rows[0].unit} | input MB | wall s | {rows[0].unit}/s | MB/s | "
            "peak RSS MB | speed vs baseline |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in rows:
            mb = m.input_bytes / 1e6
            lines.append(
                f"| {m.name} | {m.events:,} | {mb:.1f} | {m.wall:.2f} | "
                f"{m.events / m.wall:,.0f} | {mb / m.wall:.1f} | {m.peak_rss_mb:.0f} | "
                f"{ref.wall / m.wall:.0%} |"
            )
        lines += ["", f"Baseline: {ref.name}, in the same run; speed vs baseline = "
                      "baseline wall time ÷ this wall time."]
    lines.append(end)
    return "\n".join(lines)


def write_doc(section: str, start: str = START, end: str = END) -> None:
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if start not in text:
        text += "\n" + start + "\n" + end + "\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(head + section + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, help="events/lines per input (default per suite)")
    parser.add_argument("--only", action="append", choices=sorted(SUITES),
                        help="run only this suite (repeatable)")
    parser.add_argument("--no-doc", action="store_true", help="print, do not rewrite the doc")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each measurement N times and keep the fastest (default 1)")
    args = parser.parse_args()
    harness.REPEAT = args.repeat
    WORK.mkdir(parents=True, exist_ok=True)
    results: list[Measurement] = []
    for name in args.only or list(SUITES):
        results += suite_runner(name)(args.scale or SUITES[name][1])
    command = ("python benchmarks/run.py " + " ".join(sys.argv[1:])).strip()
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in results:
        groups.setdefault(OWN_SECTION.get(m.suite, (START, END)), []).append(m)
    for (start, end), rows in groups.items():
        section = render(rows, command, start, end)
        print(section)
        if not args.no_doc:
            write_doc(section, start, end)


if __name__ == "__main__":
    main()
