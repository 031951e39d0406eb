"""Same-run comparison of ``auditlens ingest`` at two revisions: ``python benchmarks/ab.py``.

A refactor must not make ingest slower. This checks out ``--base`` (default: the last commit
before the layout refactor of the architecture issue) into ``benchmarks/work/ab-<rev>``,
compiles its auditd modules as its own Makefile would, and then, for each suite's input,
runs ``auditlens ingest`` into a fresh store with the base tree and with this tree in turn,
``--rounds`` times each, alternating so that both see the same machine. The fastest run of
each counts (the least disturbed one, as in ``run.py --repeat``); the ratio base ÷ this tree
is printed as a Markdown table (above 1: this tree is faster).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (
    bench_k8s_audit,
    bench_k8s_container,
    bench_linux_auditd,
    bench_selectel_audit,
    bench_small_files,
    bench_windows_events,
)
from benchmarks.harness import PY, ROOT, WORK

BASE = "7bac07d"  # main before the architecture issue's move


def inputs(scale: float) -> list[tuple[str, Path]]:
    """(suite, input path) at ``scale`` times the sizes below, generated once."""
    WORK.mkdir(parents=True, exist_ok=True)
    out = []
    for suite, module, n, suffix in (
            ("k8s_audit", bench_k8s_audit, 150_000, ".jsonl"),
            ("k8s_container", bench_k8s_container, 500_000, ".log"),
            ("selectel_audit", bench_selectel_audit, 95_000, ".jsonl"),
            ("linux_auditd", bench_linux_auditd, 190_000, ".log")):
        count = max(1, int(n * scale))
        path = WORK / f"ab-{suite}-{count}{suffix}"
        if not path.exists():
            module.generate(path, count)  # type: ignore[attr-defined]
        out.append((suite, path))
    small = WORK / f"ab-small_files-{max(1, int(200 * scale))}"
    if not small.exists():
        bench_small_files.generate(small, max(1, int(200 * scale)))
    out.append(("small_files", small))
    evtx, _, _ = bench_windows_events.evtx_large(max(1, int(60_000 * scale)))
    out.append(("windows_events (EVTX)", evtx))
    return out


def checkout(rev: str) -> Path:
    tree = WORK / f"ab-{rev}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f",
                        str(tree), rev], check=True, capture_output=True)
    return tree


def compile_native(tree: Path) -> None:
    """The auditd build, by whichever command that revision has."""
    env = {**os.environ, "AUDITLENS_NATIVE": "0"}
    new = tree / "loaders" / "linux_auditd" / "native_build.py"
    module = "loaders.linux_auditd.native_build" if new.exists() else "loaders.native_build"
    args = ["--if-stale"] if new.exists() else []
    subprocess.run([PY, "-m", module, *args], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                   check=True, capture_output=True)


def ingest_once(tree: Path, src: Path, store: Path) -> float:
    shutil.rmtree(store, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "AUDITLENS_NATIVE"}
    env["PYTHONPATH"] = str(tree)
    t0 = time.perf_counter()
    subprocess.run([PY, "-m", "analysis.cli", "ingest", str(src), "--store", str(store)],
                   cwd=tree, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(store, ignore_errors=True)
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default=BASE, help=f"revision to compare with ({BASE})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="input size factor")
    args = parser.parse_args(argv)
    base = checkout(args.base)
    for tree in (base, ROOT):
        compile_native(tree)
    rows = []
    for suite, src in inputs(args.scale):
        times: dict[str, list[float]] = {"base": [], "head": []}
        for _ in range(args.rounds):
            for name, tree in (("base", base), ("head", ROOT)):
                times[name].append(ingest_once(tree, src, WORK / f"ab-store-{name}"))
        b, h = min(times["base"]), min(times["head"])
        rows.append(f"| {suite} | {b:.2f} | {h:.2f} | {b / h:.2f} |")
        print(rows[-1], file=sys.stderr)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    print(f"`auditlens ingest`, {args.base} against {head} (working tree), fastest of "
          f"{args.rounds} alternated runs each, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.machine()}, {os.cpu_count()} cores:\n")
    print("| input | base s | this tree s | base ÷ this |\n|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
