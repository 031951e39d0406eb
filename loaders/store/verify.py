"""Evidence integrity: check the store against its manifest, and the inputs against theirs.

- Every event part and rejects file named in the manifest exists, has the SHA-256 recorded
  when it was committed, and reads completely; the rows of a file's parts add up to the
  ``records_loaded`` recorded for it.
- No Parquet file in the store is unknown to the manifest.
- Every input file that is still where it was ingested from (archive members: inside the
  archive) still has the recorded SHA-256.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from loaders.store.store import Store, sha256_file


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`verify_store`: what (``part``, ``rejects``, ``input``), where, why."""

    kind: str
    path: str
    detail: str


@dataclass
class VerifyReport:
    """Counts of what was checked, and every problem found."""

    parts_checked: int = 0
    inputs_checked: int = 0
    inputs_absent: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_fully(path: Path) -> int:
    pf = pq.ParquetFile(path)
    rows = 0
    for i in range(pf.num_row_groups):
        rows += pf.read_row_group(i).num_rows
    return rows


def _check_file(store: Store, rel: str, expected_sha: str | None, kind: str,
                report: VerifyReport) -> int | None:
    path = store.root / rel
    report.parts_checked += 1
    if not path.exists():
        report.problems.append(Problem(kind, rel, "missing"))
        return None
    if expected_sha and sha256_file(path) != expected_sha:
        report.problems.append(Problem(kind, rel, "SHA-256 differs from the manifest "
                                                  "(modified or corrupted)"))
    try:
        return _read_fully(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        report.problems.append(Problem(kind, rel, f"unreadable: {type(exc).__name__}: {exc}"))
        return None


def _member_sha256(archive: Path, member: str) -> str | None:
    h = hashlib.sha256()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf, zf.open(member) as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
            return h.hexdigest()
        with tarfile.open(archive, "r:*") as tf:
            member_fh = tf.extractfile(member)
            if member_fh is None:
                return None
            with member_fh:
                while block := member_fh.read(1 << 20):
                    h.update(block)
        return h.hexdigest()
    except (KeyError, OSError, zipfile.BadZipFile, tarfile.TarError):
        return None


def _input_sha256(display: str) -> str | None:
    """The current hash of an input, or None when it is no longer there. A file whose own
    name holds ``!`` is that file; otherwise ``archive!member`` is a member."""
    if Path(display).is_file():
        return sha256_file(Path(display))
    if "!" in display:
        archive, _, member = display.partition("!")
        if "!" in member or not Path(archive).is_file():
            return None  # nested members are not re-checked
        return _member_sha256(Path(archive), member)
    path = Path(display)
    return sha256_file(path) if path.is_file() else None


def verify_store(store: Store, *, check_inputs: bool = True) -> VerifyReport:
    """Check every stored file and (optionally) every input still present.

    Args:
        store: the store.
        check_inputs: also re-hash the original inputs where they still exist.

    Returns:
        What was checked and the problems found (``report.ok`` when none).
    """
    report = VerifyReport()
    known: set[str] = set()
    for row in store.manifest_rows():
        parts = row["parts"] or []
        recorded = row["parts_sha256"]  # None in a store from before part hashes
        hashes: list[str | None] = [*recorded] if recorded else [None] * len(parts)
        rows = 0
        for rel, sha in zip(parts, hashes, strict=True):
            known.add(rel)
            n = _check_file(store, rel, sha, "part", report)
            rows += n or 0
        if rows != row["records_loaded"]:
            report.problems.append(Problem(
                "part", row["path"], f"{rows} rows stored, manifest says "
                f"{row['records_loaded']} loaded"))
        if row["rejects_file"]:
            known.add(row["rejects_file"])
            n = _check_file(store, row["rejects_file"], row["rejects_sha256"], "rejects",
                            report)
            if n is not None and n != row["records_rejected"]:
                report.problems.append(Problem(
                    "rejects", row["rejects_file"], f"{n} rows stored, manifest says "
                    f"{row['records_rejected']} rejected"))
        if check_inputs:
            # the path resolved at ingest: the same file from any working directory
            current = _input_sha256(row.get("resolved_path") or row["path"])
            if current is None:
                report.inputs_absent += 1
            else:
                report.inputs_checked += 1
                if current != row["sha256"]:
                    report.problems.append(Problem(
                        "input", row["path"], "SHA-256 differs from the one recorded at "
                        "ingest: the evidence file changed"))
    on_disk = [*store.root.glob("events/*/*/*.parquet"), *store.root.glob("rejects/*.parquet")]
    for path in on_disk:
        rel = str(path.relative_to(store.root))
        if rel not in known:
            report.problems.append(Problem("part", rel, "not in the manifest (stray file)"))
    return report
