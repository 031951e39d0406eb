"""``auditlens detect`` over a store of the data-samples generator's logs at scale (issue 15:
10M events in under 2 minutes, peak memory under 4 GB).

The logs are generated once (``benchmarks/generate.py --events N --seed 7``) and ingested
once into ``benchmarks/work/detect-<N>/store`` (not timed: ingest has its own suites). The
baseline, in the same run, is one DuckDB scan of the store reading the columns the sign-in
table reads and grouping them by user — the least any detection over the store must do.
"""

from __future__ import annotations

import subprocess

from benchmarks.harness import PY, ROOT, WORK, Measurement, run_measured

SUITE = "detect"
SEED = 7


def _store(scale: int) -> tuple[object, int, int]:
    base = WORK / f"detect-{scale}"
    logs, store = base / "logs", base / "store"
    done = base / ".ingested"
    if not done.exists():
        if not (logs / "cloud").exists():
            subprocess.run([PY, str(ROOT / "benchmarks" / "generate.py"), "--out", str(logs),
                            "--events", str(scale), "--seed", str(SEED)], check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run([PY, "-m", "analysis.cli", "ingest", str(logs), "--store", str(store),
                        "--year", "2026", "--jobs", "2"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        done.touch()
    import duckdb

    files = str(store / "events" / "*" / "*" / "*.parquet")
    events = duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)",
                                      [files]).fetchall()[0][0]
    size = sum(p.stat().st_size for p in (store / "events").rglob("*.parquet"))
    return store, int(events), size


BASELINE = """
import sys, duckdb
con = duckdb.connect(config={"threads": 2})
files = sys.argv[1] + "/events/*/*/*.parquet"
con.execute("SELECT source, user, src_ip, count(*), min(timestamp), max(timestamp) "
            "FROM read_parquet(?, union_by_name=true) WHERE user IS NOT NULL "
            "GROUP BY ALL", [files]).fetchall()
"""


def measure(scale: int) -> list[Measurement]:
    store, events, size = _store(scale)
    wall, rss = run_measured([PY, "-c", BASELINE, str(store)])
    out = [Measurement(SUITE, "DuckDB scan: users and addresses of every event", "baseline",
                       events, size, wall, rss)]
    wall, rss = run_measured([PY, "-m", "analysis.cli", "detect", "--store", str(store)])
    out.append(Measurement(SUITE, "auditlens detect (all detectors, store the findings)",
                           "auditlens", events, size, wall, rss))
    return out
