"""Repairing a damaged store: quarantine what cannot be trusted, rebuild the manifest.

``auditlens repair --store DIR`` (:func:`repair`) never deletes anything:

- a damaged ``manifest.parquet`` (or a pending manifest record) is moved aside and the
  manifest is rebuilt from the ledger, which holds every sealed row whole
  (:mod:`loaders.store.ledger`), plus the pending records that still read;
- every input whose part or rejects file is missing, unreadable or no longer has its
  recorded SHA-256 has all its stored files moved to ``<store>/quarantine/<repair id>/``
  (keeping their paths) and its manifest row removed, so that ingesting that input again
  stores it afresh; the inputs to ingest again are listed with their resolved paths;
- Parquet files in ``events/`` or ``rejects/`` that no manifest row names (strays) are moved
  there too.

The repair is sealed in the ledger (kind ``repair``: the rows removed, the files moved, and
why), so ``verify`` accepts the smaller manifest and the history says what happened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from loaders.store import ledger
from loaders.store.layout import MANIFEST_SCHEMA, ManifestRow
from loaders.store.store import Store, StoreDamaged, _fsync_write_table, sha256_file


@dataclass
class RepairReport:
    """What :func:`repair` did (or, with ``dry_run``, would do).

    Attributes:
        repair_id: the repair's id (also its quarantine folder and ledger run).
        manifest_rebuilt: the manifest was damaged and was rebuilt from the ledger.
        manifest_problem: why it was rebuilt.
        quarantined: the inputs whose stored files were moved aside: manifest rows, whose
            ``resolved_path`` (or ``path``) is what to ingest again.
        reasons: per quarantined input (its ``path``), what was wrong.
        strays: store files no manifest row named, moved aside.
        moved: every store file moved (relative to the store).
        quarantine: the folder they went to (None when nothing moved).
        dry_run: nothing was changed.
    """

    repair_id: str
    manifest_rebuilt: bool = False
    manifest_problem: str = ""
    quarantined: list[ManifestRow] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    strays: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    quarantine: Path | None = None
    dry_run: bool = False
    ledger_head: str = ""

    @property
    def changed(self) -> bool:
        return self.manifest_rebuilt or bool(self.moved)


def _file_problem(store: Store, rel: str, sha: str | None) -> str | None:
    path = store.root / rel
    if not path.exists():
        return f"{rel} is missing"
    if sha and sha256_file(path) != sha:
        return f"{rel} no longer has its recorded SHA-256"
    try:
        pf = pq.ParquetFile(path)
        for i in range(pf.num_row_groups):
            pf.read_row_group(i)
    except Exception as exc:  # pyarrow raises several types for damaged files
        return f"{rel} cannot be read ({type(exc).__name__}: {exc})"
    return None


def _row_problem(store: Store, row: ManifestRow) -> str | None:
    parts = row["parts"] or []
    recorded = row["parts_sha256"]
    hashes: list[str | None] = [*recorded] if recorded else [None] * len(parts)
    found = [p for rel, sha in zip(parts, hashes, strict=True)
             if (p := _file_problem(store, rel, sha)) is not None]
    if row["rejects_file"]:
        p = _file_problem(store, row["rejects_file"], row["rejects_sha256"])
        if p is not None:
            found.append(p)
    return "; ".join(found) or None


def _rebuilt_manifest(store: Store) -> tuple[pa.Table, list[Path]]:
    """The manifest from the ledger's sealed rows and the pending records that read; and
    the damaged manifest files."""
    led = ledger.read(store.root)
    rows = {k: ledger.manifest_row(r) for k, (r, _) in ledger.sealed_rows(led).items()}
    damaged = [store.manifest_path] if store.manifest_path.exists() else []
    for record in sorted(store.manifest_dir.glob("*.parquet")):
        try:
            table = pq.read_table(record)
        except Exception:  # a damaged pending record: its row is in the ledger or lost
            damaged.append(record)
            continue
        for r in table.to_pylist():
            rows.setdefault(ledger.key(r), r)
    ordered = [rows[k] for k in sorted(rows)]
    return pa.Table.from_pylist(ordered, schema=MANIFEST_SCHEMA), damaged


def repair(store: Store, *, dry_run: bool = False) -> RepairReport:
    """Quarantine the store's damaged inputs and strays, rebuild a damaged manifest.

    Args:
        store: the store.
        dry_run: only say what would be done.

    Raises:
        StoreBusy: another process writes to the store.
        StoreUnusable: the store cannot be written.
    """
    report = RepairReport("repair-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"),
                          dry_run=dry_run)
    with store.write_lock(report.repair_id, recover=False):
        try:
            manifest = store.read_manifest()
            damaged_records: list[Path] = []
        except StoreDamaged as exc:
            report.manifest_rebuilt, report.manifest_problem = True, str(exc)
            manifest, damaged_records = _rebuilt_manifest(store)
        rows: list[ManifestRow] = manifest.to_pylist()
        keep: list[ManifestRow] = []
        named: set[str] = set()
        for row in rows:
            problem = _row_problem(store, row)
            if problem is None:
                keep.append(row)
                named.update(row["parts"] or [])
                if row["rejects_file"]:
                    named.add(row["rejects_file"])
                continue
            report.quarantined.append(row)
            report.reasons[row["path"]] = problem
            for rel in [*(row["parts"] or []), *([row["rejects_file"]] if row["rejects_file"]
                                                 else [])]:
                if (store.root / rel).exists():
                    report.moved.append(rel)
        for path in [*store.root.glob("events/*/*/*.parquet"),
                     *store.root.glob("rejects/*.parquet")]:
            rel = str(path.relative_to(store.root))
            if rel not in named and rel not in report.moved:
                report.strays.append(rel)
                report.moved.append(rel)
        if dry_run or not report.changed:
            if not dry_run:
                store.recover()
            return report
        quarantine = store.root / "quarantine" / report.repair_id
        report.quarantine = quarantine
        with store._committing():
            for rel in report.moved:
                target = quarantine / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(store.root / rel, target)
            for record in damaged_records:
                target = quarantine / record.relative_to(store.root)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(record, target)
            for record in store.manifest_dir.glob("*.parquet"):
                record.unlink()  # folded into the manifest written next
            tmp = store.root / ".manifest.parquet.tmp"
            _fsync_write_table(pa.Table.from_pylist(keep, schema=MANIFEST_SCHEMA), tmp)
            os.replace(tmp, store.manifest_path)
            note: dict[str, object] = {
                "quarantine": str(quarantine.relative_to(store.root)),
                "moved": list(report.moved),
                "reasons": dict(report.reasons),
                "strays": list(report.strays),
            }
            if report.manifest_rebuilt:
                note["manifest"] = ("rebuilt from the ledger: " + report.manifest_problem)
                note["damaged_manifest_files"] = [
                    str(r.relative_to(store.root)) for r in damaged_records]
            entry = store.seal("repair", report.repair_id, note=note,
                               removes=[ledger.key(r) for r in report.quarantined])
            report.ledger_head = entry.hash
        store.recover()
    return report
