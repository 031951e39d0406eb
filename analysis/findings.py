"""Findings in the store, beside the events, under the store's commit protocol.

```
<store>/findings/data/<run_id>.parquet       the findings of one detection run (FINDING_SCHEMA)
<store>/findings/incidents/<run_id>.parquet  those findings grouped into incidents
<store>/findings/runs/<run_id>.parquet       the run record (RUN_SCHEMA): its commit marker
```

A run is committed when its run record exists: the findings file is written under a
temporary name, synced and renamed first, the run record last. A killed ``detect`` leaves
at most an uncommitted findings file, which readers ignore and the next run removes; the
previous findings stay intact. DuckDB and pandas read both directories without auditlens
(join ``data`` to ``runs`` on ``run_id`` to see committed runs only).

Exports (:func:`write_findings`) are Parquet, JSON or CSV; CSV cells that a spreadsheet
would run as a formula are neutralised.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.detect.base import Finding, RunResult
from loaders.store.store import Store, tool_version

FINDING_SCHEMA = pa.schema([
    ("finding_id", pa.string()),
    ("run_id", pa.string()),
    ("detector", pa.string()),
    ("detector_version", pa.string()),
    ("title", pa.string()),
    ("description", pa.string()),
    ("severity", pa.string()),
    ("score", pa.float64()),
    ("entity_type", pa.string()),
    ("entity", pa.string()),
    ("first_seen", pa.timestamp("us", tz="UTC")),
    ("last_seen", pa.timestamp("us", tz="UTC")),
    ("event_uids", pa.list_(pa.string())),
    ("attack", pa.list_(pa.string())),
    ("recommendation", pa.string()),
    ("entities", pa.list_(pa.struct([("type", pa.string()), ("value", pa.string())]))),
    ("parameters", pa.string()),  # JSON: the detector's parameters in this run
])

INCIDENT_SCHEMA = pa.schema([
    ("incident_id", pa.string()),
    ("run_id", pa.string()),
    ("title", pa.string()),
    ("severity", pa.string()),
    ("first_seen", pa.timestamp("us", tz="UTC")),
    ("last_seen", pa.timestamp("us", tz="UTC")),
    ("principals", pa.list_(pa.string())),
    ("addresses", pa.list_(pa.string())),
    ("finding_ids", pa.list_(pa.string())),
    ("context_ids", pa.list_(pa.string())),
    ("links", pa.list_(pa.struct([("finding_a", pa.string()), ("finding_b", pa.string()),
                                  ("entity_type", pa.string()), ("entity", pa.string())]))),
    ("window_hours", pa.float64()),
])

RUN_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("started_at", pa.timestamp("us", tz="UTC")),
    ("finished_at", pa.timestamp("us", tz="UTC")),
    ("tool_version", pa.string()),
    ("scope", pa.string()),  # JSON
    ("parameters", pa.string()),  # JSON: every detector's parameters, the alias table
    ("detectors", pa.string()),  # JSON list: name, version, status, seconds, findings, message
    ("findings", pa.int64()),
])


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def findings_table(findings: Sequence[Finding], run_id: str,
                   params: dict[str, dict[str, Any]] | None = None) -> pa.Table:
    """Findings as an Arrow table of FINDING_SCHEMA."""
    params = params or {}
    rows = [{
        "finding_id": f.finding_id, "run_id": run_id, "detector": f.detector,
        "detector_version": f.detector_version, "title": f.title,
        "description": f.description, "severity": f.severity, "score": float(f.score),
        "entity_type": f.entity_type, "entity": f.entity, "first_seen": f.first_seen,
        "last_seen": f.last_seen, "event_uids": list(f.event_uids), "attack": list(f.attack),
        "recommendation": f.recommendation,
        "entities": [{"type": t, "value": v} for t, v in f.entities],
        "parameters": json.dumps(params.get(f.detector, {}), sort_keys=True, default=str),
    } for f in findings]
    return pa.Table.from_pylist(rows, schema=FINDING_SCHEMA)


def _dirs(store: str | os.PathLike[str]) -> tuple[Path, Path]:
    root = Path(store) / "findings"
    return root / "data", root / "runs"


def incidents_table(result: RunResult, run_id: str, window: Any = None) -> pa.Table:
    """The run's findings grouped into incidents (:func:`analysis.incidents.correlate`)."""
    from analysis.incidents import DEFAULT_WINDOW, correlate

    window = window or DEFAULT_WINDOW
    rows = [{"incident_id": n.incident_id, "run_id": run_id, "title": n.title,
             "severity": n.severity, "first_seen": n.first_seen, "last_seen": n.last_seen,
             "principals": list(n.principals), "addresses": list(n.addresses),
             "finding_ids": list(n.finding_ids), "context_ids": list(n.context_ids),
             "links": [vars(lk) for lk in n.links],
             "window_hours": window.total_seconds() / 3600}
            for n in correlate(result.findings, window=window)]
    return pa.Table.from_pylist(rows, schema=INCIDENT_SCHEMA)


def _write_synced(table: pa.Table, final: Path) -> None:
    tmp = final.with_name(f".{final.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    dfd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _crash_point(name: str) -> None:
    if os.environ.get("AUDITLENS_CRASH_AT") == name:
        os._exit(137)


def save_run(store: str | os.PathLike[str], result: RunResult,
             run_id: str | None = None) -> str:
    """Commit a detection run's findings to the store; returns its run id.

    Raises:
        StoreBusy: an ingest is writing to the store right now.
    """
    run_id = run_id or new_run_id()
    data_dir, runs_dir = _dirs(store)
    s = Store(store)
    with s.write_lock(run_id):
        data_dir.mkdir(parents=True, exist_ok=True)
        runs_dir.mkdir(parents=True, exist_ok=True)
        _clean(data_dir, runs_dir)
        _write_synced(findings_table(result.findings, run_id, result.params),
                      data_dir / f"{run_id}.parquet")
        incidents_dir = data_dir.parent / "incidents"
        incidents_dir.mkdir(exist_ok=True)
        _write_synced(incidents_table(result, run_id), incidents_dir / f"{run_id}.parquet")
        _crash_point("findings-before-run-record")
        record = {
            "run_id": run_id, "started_at": result.started_at,
            "finished_at": result.finished_at, "tool_version": tool_version(),
            "scope": json.dumps(result.scope, sort_keys=True, default=str),
            "parameters": json.dumps(result.params, sort_keys=True, default=str),
            "detectors": json.dumps([vars(d) for d in result.detectors], default=str),
            "findings": len(result.findings),
        }
        _write_synced(pa.Table.from_pylist([record], schema=RUN_SCHEMA),
                      runs_dir / f"{run_id}.parquet")
        # the ledger entry names the three files with their hashes (loaders.store.ledger)
        s.seal("detect", run_id, files=[f"findings/{d}/{run_id}.parquet"
                                        for d in ("data", "incidents", "runs")],
               note={"findings": len(result.findings)})
    return run_id


def _clean(data_dir: Path, runs_dir: Path) -> None:
    """Remove what a killed run left: temporary files, findings without a run record."""
    committed = {p.stem for p in runs_dir.glob("*.parquet")}
    incidents_dir = data_dir.parent / "incidents"
    for p in [*data_dir.glob(".*.tmp"), *runs_dir.glob(".*.tmp"),
              *incidents_dir.glob(".*.tmp")]:
        p.unlink(missing_ok=True)
    for p in [*data_dir.glob("*.parquet"), *incidents_dir.glob("*.parquet")]:
        if p.stem not in committed:
            p.unlink(missing_ok=True)


def read_runs(store: str | os.PathLike[str]) -> pd.DataFrame:
    """Every committed detection run, oldest first (RUN_SCHEMA columns)."""
    _, runs_dir = _dirs(store)
    files = sorted(runs_dir.glob("*.parquet")) if runs_dir.is_dir() else []
    if not files:
        return RUN_SCHEMA.empty_table().to_pandas()
    table = pa.concat_tables([pq.read_table(f).cast(RUN_SCHEMA) for f in files])
    return table.to_pandas().sort_values(["started_at", "run_id"]).reset_index(drop=True)


def read_findings(store: str | os.PathLike[str], run: str | None = "latest") -> pd.DataFrame:
    """Findings of a committed run.

    Args:
        store: the store directory.
        run: ``"latest"`` (default), a run id, or None for every committed run.

    Returns:
        One row per finding (FINDING_SCHEMA columns); empty when nothing was detected yet.

    Raises:
        KeyError: no committed run has that id.
    """
    data_dir, _ = _dirs(store)
    runs = read_runs(store)
    if run == "latest":
        wanted = list(runs["run_id"].tail(1))
    elif run is None:
        wanted = list(runs["run_id"])
    else:
        if run not in set(runs["run_id"]):
            raise KeyError(f"no committed detection run {run!r} in {store}; runs: "
                           + (", ".join(runs["run_id"]) or "none"))
        wanted = [run]
    tables = [pq.read_table(data_dir / f"{r}.parquet").cast(FINDING_SCHEMA) for r in wanted
              if (data_dir / f"{r}.parquet").exists()]
    table = pa.concat_tables(tables) if tables else FINDING_SCHEMA.empty_table()
    return table.to_pandas()


def evidence_events(store: str | os.PathLike[str], uids: Sequence[str],
                    columns: Sequence[str] = ("timestamp", "source", "action", "outcome",
                                              "user", "src_ip", "host", "message",
                                              "source_file", "source_line", "event_uid"),
                    ) -> pd.DataFrame:
    """The stored events a finding cites, in time order (ids are passed as a parameter,
    never spliced into SQL)."""
    from analysis.scope import Scope
    from loaders.schema import event_schema

    unknown = [c for c in columns if c not in event_schema().names]
    if unknown:
        raise KeyError(f"unknown columns {unknown}; see docs/SCHEMA.md")
    if not uids:
        return pd.DataFrame(columns=list(columns))
    con = Scope(store).connect()
    try:
        cols = ", ".join(f'"{c}"' for c in columns)
        return con.execute(f"SELECT {cols} FROM history WHERE event_uid IN "
                           "(SELECT unnest(?)) ORDER BY timestamp, event_uid",
                           [list(uids)]).df()
    finally:
        con.close()


def read_incidents(store: str | os.PathLike[str], run: str | None = "latest") -> pd.DataFrame:
    """Incidents of a committed run (INCIDENT_SCHEMA columns), stored with its findings."""
    data_dir, _ = _dirs(store)
    runs = read_runs(store)
    wanted = (list(runs["run_id"].tail(1)) if run == "latest" else
              list(runs["run_id"]) if run is None else [run])
    base = data_dir.parent / "incidents"
    tables = [pq.read_table(base / f"{r}.parquet").cast(INCIDENT_SCHEMA) for r in wanted
              if (base / f"{r}.parquet").exists()]
    table = pa.concat_tables(tables) if tables else INCIDENT_SCHEMA.empty_table()
    return table.to_pandas()


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet will show as text, never run as a formula."""
    return "'" + cell if cell.startswith(_FORMULA) else cell


def write_findings(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Export findings to ``.parquet``, ``.json`` (a list of objects) or ``.csv``.

    Raises:
        ValueError: another suffix.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(pa.Table.from_pandas(frame, schema=FINDING_SCHEMA,
                                            preserve_index=False), p, compression="zstd")
    elif suffix == ".json":
        p.write_text(json.dumps(_records(frame), indent=1, ensure_ascii=False, default=str)
                     + "\n", encoding="utf-8")
    elif suffix == ".csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        columns = list(frame.columns)
        writer.writerow(columns)
        for rec in _records(frame):
            writer.writerow([neutralise(_csv_cell(rec[c])) for c in columns])
        p.write_text(buf.getvalue(), encoding="utf-8")
    else:
        raise ValueError(f"cannot write findings as {suffix or 'a file without suffix'}: "
                         "use .parquet, .json or .csv")
    return p


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in frame.to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for k, v in rec.items():
            if hasattr(v, "tolist"):
                v = v.tolist()
            if isinstance(v, pd.Timestamp):
                v = v.isoformat()
            clean[k] = v
        out.append(clean)
    return out


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v.get("type", "") + ":" + v.get("value", "")) if isinstance(v, dict)
                        else str(v) for v in value)
    return str(value)
