"""selectel_audit JSON Lines (export script's ``events.txt``): parse and ingest against DuckDB
read_json → Parquet on the same file (issue 4: ingest ≥ 30% of the baseline, peak < 1 GB).

The input is built from the data generator's ``events.txt`` (realistic event types, subjects,
resources and change sets): its events are repeated with fresh ``event_id``/``request_id`` and
times moved forward, so every event is distinct; ~95,000 events make ~100 MB.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.bench_k8s_audit import duckdb_baseline
from benchmarks.harness import (
    PY,
    ROOT,
    WORK,
    Measurement,
    parse_and_ingest,
)

SUITE = "selectel_audit"
TEMPLATE_SEED = 11
TEMPLATE_EVENTS = 60_000  # generator volume: gives ~3,000 selectel audit events


def _templates() -> list[dict[str, object]]:
    """The generator's selectel audit events (written once under benchmarks/work/)."""
    out = WORK / f"selectel-templates-{TEMPLATE_SEED}"
    events = out / "cloud" / "audit" / "events.txt"
    if not events.exists():
        subprocess.run([PY, str(ROOT / "benchmarks" / "generate.py"), "--out", str(out),
                        "--events", str(TEMPLATE_EVENTS), "--seed", str(TEMPLATE_SEED)],
                       check=True, stdout=subprocess.DEVNULL)
    return [json.loads(x) for x in events.read_text().splitlines() if x.strip()]


def _iso_ms(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def generate(path: Path, events: int) -> int:
    """Write ``events`` distinct audit events (JSON Lines, nested layout); returns bytes."""
    templates = _templates()
    base = datetime(2026, 11, 1, tzinfo=UTC)
    ns = uuid.UUID("5e1ec7e1-0000-4000-8000-000000000000")
    with path.open("w") as out:
        for i in range(events):
            ev = dict(templates[i % len(templates)])
            t = base + timedelta(milliseconds=53 * i)
            ev["event_id"] = str(uuid.uuid5(ns, str(i)))
            ev["request_id"] = str(uuid.uuid5(ns, f"r{i // 3}"))
            ev["event_time"] = _iso_ms(t)
            ev["event_saved_time"] = _iso_ms(t + timedelta(milliseconds=80 + i % 700))
            out.write(json.dumps(ev, ensure_ascii=False) + "\n")
    return path.stat().st_size


def measure(scale: int) -> list[Measurement]:
    src = WORK / f"selectel_audit-{scale}.jsonl"
    if not src.exists():
        generate(src, scale)
    out = [duckdb_baseline(SUITE, src, scale)]
    return out + parse_and_ingest(SUITE, src, "selectel_audit", scale)
