"""Many small files: a directory of k8s audit files, the per-file cost of an ingest.

Incident evidence often comes as many small files (rotated logs, one export per host or per
day, /var/log/pods). The input is ``scale`` files of the real falco fixture's 49 events, each
copy with its own auditIDs (so nothing is a duplicate) and spanning the fixture's 4 days.
Baseline: DuckDB ``read_json`` over the same files (one glob) → one Parquet file. auditlens
commits each file on its own (crash-safe, de-duplicated, hashed), so this measures that cost.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from benchmarks.bench_k8s_audit import FIXTURE
from benchmarks.harness import PY, WORK, Measurement, ingest_cmd, run_measured

SUITE = "many small files (k8s_audit)"
DUCKDB_GLOB_TO_PARQUET = (
    "import duckdb, sys; duckdb.sql(f\"COPY (SELECT * FROM read_json('{sys.argv[1]}/*.jsonl', "
    "format='newline_delimited', union_by_name=true)) TO '{sys.argv[2]}' "
    "(FORMAT parquet, COMPRESSION zstd)\")"
)


def generate(directory: Path, files: int) -> int:
    """Write ``files`` copies of the fixture's events with distinct auditIDs; returns the
    number of events."""
    templates = [json.loads(x) for x in FIXTURE.read_text().splitlines()]
    templates = [t for t in templates if "auditID" in t]
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        lines = []
        for ev in templates:
            ev = dict(ev)
            ev["auditID"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"small/{i}/{ev['auditID']}"))
            lines.append(json.dumps(ev, separators=(",", ":")))
        (directory / f"audit-{i:05d}.jsonl").write_text("\n".join(lines) + "\n")
    return files * len(templates)


def measure(scale: int) -> list[Measurement]:
    src = WORK / f"small-files-{scale}"
    if not src.exists():
        generate(src, scale)
    events = scale * sum(1 for x in FIXTURE.read_text().splitlines() if '"auditID"' in x)
    size = sum(p.stat().st_size for p in src.iterdir())
    parquet = WORK / "baseline-small-files.parquet"
    wall, rss = run_measured([PY, "-c", DUCKDB_GLOB_TO_PARQUET, str(src), str(parquet)])
    parquet.unlink(missing_ok=True)
    out = [Measurement(SUITE, "duckdb read_json(glob) → Parquet", "baseline", events, size,
                       wall, rss)]
    for jobs in (1, 2):
        store = WORK / "store-small-files"
        wall, rss = run_measured(ingest_cmd(src, store, "--jobs", str(jobs)), fresh=store)
        out.append(Measurement(SUITE, f"ingest (auditlens ingest --jobs {jobs}), {scale} files",
                               "auditlens", events, size, wall, rss))
        shutil.rmtree(store, ignore_errors=True)
    return out
