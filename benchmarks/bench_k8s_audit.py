"""k8s_audit JSON Lines: parse and ingest against DuckDB read_json → Parquet."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.harness import (
    PY,
    ROOT,
    WORK,
    Measurement,
    parse_and_ingest,
    run_measured,
)

FIXTURE = ROOT / "tests" / "fixtures" / "k8s-audit" / "falco_trace_files_k8s_audit.jsonl"
DUCKDB_JSON_TO_PARQUET = (
    "import duckdb, sys; duckdb.sql(f\"COPY (SELECT * FROM read_json('{sys.argv[1]}', "
    "format='newline_delimited')) TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd)\")"
)


def generate(path: Path, events: int) -> int:
    """Write ``events`` distinct audit events built from the real falco fixture's events."""
    templates = [json.loads(x) for x in FIXTURE.read_text().splitlines()]
    templates = [t for t in templates if "auditID" in t]
    base = datetime(2026, 11, 1, tzinfo=UTC)
    ns = uuid.UUID("6f1c0b1e-0000-4000-8000-000000000000")
    with path.open("w") as out:
        for i in range(events):
            ev = dict(templates[i % len(templates)])
            ts = (base + timedelta(milliseconds=37 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            ev["auditID"] = str(uuid.uuid5(ns, str(i)))
            ev["requestReceivedTimestamp"] = ev["stageTimestamp"] = ts
            ev["timestamp"] = ts[:19] + "Z"
            out.write(json.dumps(ev, separators=(",", ":")) + "\n")
    return path.stat().st_size


def duckdb_baseline(suite: str, src: Path, events: int) -> Measurement:
    """DuckDB read_json → Parquet on the same file, in a fresh process."""
    parquet = WORK / "baseline.parquet"
    wall, rss = run_measured([PY, "-c", DUCKDB_JSON_TO_PARQUET, str(src), str(parquet)])
    parquet.unlink(missing_ok=True)
    return Measurement(suite, "duckdb read_json → Parquet", "baseline", events,
                       src.stat().st_size, wall, rss)


def measure(scale: int) -> list[Measurement]:
    src = WORK / f"k8s_audit-{scale}.jsonl"
    if not src.exists():
        generate(src, scale)
    out = [duckdb_baseline("k8s_audit", src, scale)]
    return out + parse_and_ingest("k8s_audit", src, "k8s_audit", scale)
