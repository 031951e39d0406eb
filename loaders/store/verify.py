"""Evidence integrity: check the store against its manifest, and the inputs against theirs.

- Every event part and rejects file named in the manifest exists, has the SHA-256 recorded
  when it was committed, and reads completely; the rows of a file's parts add up to the
  ``records_loaded`` recorded for it.
- No Parquet file in the store is unknown to the manifest.
- Every input file that is still where it was ingested from still has the recorded SHA-256.
  An archive member is found by its ``member_path`` inside the archive at ``resolved_path``;
  re-hashing it takes the ingest's own archive reader, which this layer cannot import, so
  the caller passes it (``rehash_members``): :func:`loaders.ingest.rehash.verify` does, and
  is what ``auditlens info --verify`` runs. Without it, members are counted as unchecked.
- The ledger (:mod:`loaders.store.ledger`) is an unbroken hash chain, and the manifest holds
  exactly the rows it sealed, unchanged: a row removed, rewritten or added outside a run is
  named; findings files sealed by detection runs are there with their hashes. Optionally, a
  chain head kept outside the store is still in the chain.

What verify reads together (manifest, ledger, the list of files) it takes in one
:meth:`~loaders.store.store.Store.snapshot`, so a run committing meanwhile is never seen half
done; the rows of the run writing now are counted as in progress, not as unsealed.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from loaders.store import ledger
from loaders.store.layout import ManifestRow, MemberStep
from loaders.store.store import Store, StoreDamaged, sha256_file

MemberChain = tuple[tuple[str, int], ...]
"""An archive member as ``(name, occurrence)`` steps, outermost archive first (a manifest
row's ``member_path``)."""

RehashMembers = Callable[[Path], Mapping[MemberChain, str]]
"""Given an archive, the SHA-256 of every member it holds now, by chain (the members it
refuses are absent), read as the ingest reads it: :func:`loaders.ingest.rehash.member_hashes`."""


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`verify_store`: what (``part``, ``rejects``, ``input``,
    ``manifest``, ``ledger``, ``findings``), where, why."""

    kind: str
    path: str
    detail: str


@dataclass
class VerifyReport:
    """Counts of what was checked, and every problem found."""

    parts_checked: int = 0
    inputs_checked: int = 0
    inputs_absent: int = 0
    inputs_unchecked: int = 0  # archive members, when no ``rehash_members`` was given
    problems: list[Problem] = field(default_factory=list)
    head: str = ledger.GENESIS  # the chain head verified
    entries: int = 0  # ledger entries
    rows_sealed: int = 0  # manifest rows found as the ledger sealed them
    in_progress: int = 0  # rows of the ingest running now (sealed when it ends)
    since_head: list[str] = field(default_factory=list)  # runs after a head given, if any
    notes: list[str] = field(default_factory=list)  # worth knowing, not a problem

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
                report: VerifyReport, origin: str = "") -> int | None:
    path = store.root / rel
    report.parts_checked += 1
    of = f" (from the input {origin})" if origin else ""
    if not path.exists():
        report.problems.append(Problem(kind, rel, f"missing{of}"))
        return None
    if expected_sha and sha256_file(path) != expected_sha:
        report.problems.append(Problem(kind, rel, "SHA-256 differs from the manifest "
                                                  f"(modified or corrupted){of}"))
    try:
        return _read_fully(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        report.problems.append(Problem(kind, rel, f"unreadable: {type(exc).__name__}: "
                                                  f"{exc}{of}"))
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


FINDINGS_GLOB = "findings/*/*.parquet"


def verify_store(store: Store, *, check_inputs: bool = True, head: str | None = None,
                 rehash_members: RehashMembers | None = None) -> VerifyReport:
    """Check every stored file, the ledger, and (optionally) every input still present.

    Args:
        store: the store.
        check_inputs: also re-hash the original inputs where they still exist.
        head: a chain head kept outside the store: it must be in the chain (the runs
            sealed after it are listed in ``since_head``).
        rehash_members: reads an archive's members as the ingest did (nested archives,
            ``.tar.gz``, zips recovered from their local headers), so what is hashed now is
            produced exactly as what was hashed then; each archive is read once, for all
            its members. Without it, archive members (rows with a ``member_path``) are
            counted in ``inputs_unchecked`` and a note says what re-hashes them; plain
            files are re-hashed either way.

    Returns:
        What was checked and the problems found (``report.ok`` when none). A damaged
        manifest is one problem; the rest is then checked against the rows the ledger
        sealed.
    """
    report = VerifyReport()
    store.recover_if_idle()  # finish what a dead writer committed, as every reader does
    writer = store.active_writer()
    rows: list[ManifestRow] | None
    with store.snapshot():
        try:
            rows = store.manifest_rows()
        except StoreDamaged as exc:
            rows = None
            report.problems.append(Problem("manifest", str(store.manifest_path), str(exc)))
        led = ledger.read(store.root)
        on_disk = [*store.root.glob("events/*/*/*.parquet"),
                   *store.root.glob("rejects/*.parquet")]
        findings_on_disk = list(store.root.glob(FINDINGS_GLOB))
    sealed = ledger.sealed_rows(led)
    if rows is None:  # check what the ledger says the store holds
        rows = [ledger.manifest_row(r) for r, _ in sealed.values()]  # type: ignore[misc]
    _check_ledger(store, led, rows, sealed, writer, report)
    _check_findings(store, led, findings_on_disk, report)
    if head is not None:
        _check_head(led, head.strip().lower(), report)
    known: set[str] = set()
    members: dict[str, list[ManifestRow]] = {}  # archive members, by their outermost archive
    for row in rows:
        parts = row["parts"] or []
        recorded = row["parts_sha256"]  # None in a store from before part hashes
        hashes: list[str | None] = [*recorded] if recorded else [None] * len(parts)
        if len(hashes) != len(parts):  # an edited manifest: every file is still checked
            report.problems.append(Problem("manifest", row["path"], f"names {len(parts)} "
                                           f"parts but {len(hashes)} part hashes"))
            hashes = [*hashes[:len(parts)], *[None] * (len(parts) - len(hashes))]
        stored = 0
        for rel, sha in zip(parts, hashes, strict=True):
            known.add(rel)
            n = _check_file(store, rel, sha, "part", report, row["path"])
            stored += n or 0
        if stored != row["records_loaded"]:
            report.problems.append(Problem(
                "part", row["path"], f"{stored} rows stored, manifest says "
                f"{row['records_loaded']} loaded"))
        if row["rejects_file"]:
            known.add(row["rejects_file"])
            n = _check_file(store, row["rejects_file"], row["rejects_sha256"], "rejects",
                            report, row["path"])
            if n is not None and n != row["records_rejected"]:
                report.problems.append(Problem(
                    "rejects", row["rejects_file"], f"{n} rows stored, manifest says "
                    f"{row['records_rejected']} rejected"))
        if not check_inputs:
            continue
        resolved = row.get("resolved_path")
        steps = row.get("member_path")
        if steps and resolved:
            members.setdefault(resolved, []).append(row)
            continue
        if steps is not None and resolved:  # [], a plain file: that file, whatever its name
            path = Path(resolved)
            _compare(row, sha256_file(path) if path.is_file() else None, report)
            continue
        # the path resolved at ingest: the same file from any working directory (an older
        # store's member: ``/abs/archive!member``)
        _compare(row, _input_sha256(resolved or row["path"]), report)
    _check_members(members, rehash_members, report)
    for path in on_disk:
        rel = str(path.relative_to(store.root))
        if rel not in known:
            report.problems.append(Problem("part", rel, "not in the manifest (stray file)"))
    return report


def _compare(row: ManifestRow, current: str | None, report: VerifyReport) -> None:
    """Count an input re-hashed (or absent: ``current`` None), and a changed one."""
    if current is None:
        report.inputs_absent += 1
        return
    report.inputs_checked += 1
    if current != row["sha256"]:
        report.problems.append(Problem(
            "input", row["path"], "SHA-256 differs from the one recorded at ingest: the "
            "evidence file changed"))


def _chain(steps: list[MemberStep]) -> MemberChain:
    return tuple((str(s["name"]), int(s["occurrence"])) for s in steps)


def _describe(chain: MemberChain) -> str:
    """A member chain for a message: ``a.zip!b.log``, ``b.log (#2)`` for an occurrence."""
    return "!".join(name + (f" (#{n})" if n > 1 else "") for name, n in chain)


def _check_members(members: dict[str, list[ManifestRow]],
                   rehash_members: RehashMembers | None, report: VerifyReport) -> None:
    """Re-hash archive members, reading each archive once for all of its rows."""
    if not members:
        return
    if rehash_members is None:
        count = sum(len(rows) for rows in members.values())
        report.inputs_unchecked += count
        report.notes.append(
            f"{count} archive members were not re-hashed: the store layer cannot read "
            "archives as the ingest does; loaders.ingest.rehash.verify re-hashes them (what "
            "`auditlens info --verify` uses)")
        return
    for archive, rows in members.items():
        if not Path(archive).is_file():
            report.inputs_absent += len(rows)
            continue
        try:
            hashes = rehash_members(Path(archive))
        except OSError as exc:  # there, but unreadable now: every member is unverifiable
            for row in rows:
                report.inputs_checked += 1
                report.problems.append(Problem(
                    "input", row["path"], f"cannot read its archive {archive}: {exc}"))
            continue
        for row in rows:
            chain = _chain(row["member_path"] or [])
            if chain not in hashes:
                report.inputs_checked += 1
                report.problems.append(Problem(
                    "input", row["path"], f"member {_describe(chain)} no longer in the "
                    f"archive {archive}: it was changed or replaced since the ingest"))
                continue
            _compare(row, hashes[chain], report)


def _check_ledger(store: Store, led: ledger.Ledger, rows: list[ManifestRow],
                  sealed: dict[tuple[str, int], tuple[dict[str, object], ledger.Entry]],
                  writer: str | None, report: VerifyReport) -> None:
    """The chain holds, and the manifest is what the ledger sealed: nothing removed,
    rewritten or added outside a run."""
    report.head, report.entries = led.head, len(led.entries)
    for cp in led.problems:
        report.problems.append(Problem("ledger", f"{ledger.LEDGER_NAME} line {cp.line}",
                                       cp.detail))
    if led.torn:
        detail = ("its last entry is incomplete (the run writing it was interrupted); the "
                  "next ingest or repair removes it and seals that run again")
        if writer is not None:
            report.notes.append(f"{ledger.LEDGER_NAME}: {detail}")
        else:
            report.problems.append(Problem("ledger", ledger.LEDGER_NAME, detail))
    if not led.exists:
        running = [r for r in rows if writer is not None and r["ingest_id"] == writer]
        report.in_progress = len(running)
        if len(rows) > len(running):
            report.problems.append(Problem(
                "ledger", ledger.LEDGER_NAME, "missing: the store has input files but no "
                "ledger (written by a version without one — the next ingest seals its rows "
                "— or the ledger was deleted)"))
        return
    for entry in led.entries:
        if entry.sealed != ledger.SEALED_AT_END:
            report.notes.append(f"ledger entry {entry.seq} ({entry.kind} {entry.run}) was "
                                f"sealed {entry.sealed}")
    current = {ledger.key(r): ledger.canonical_row(r) for r in rows}
    for k, (row, entry) in sealed.items():
        path = str(row.get("path"))
        if k not in current:
            report.problems.append(Problem(
                "manifest", path, f"removed: sealed by {entry.kind} {entry.run} (ledger entry "
                f"{entry.seq}, file {k[1]}), no longer in the manifest"))
            continue
        fields = ledger.differing_fields(row, current[k])
        if fields:
            report.problems.append(Problem(
                "manifest", path, f"rewritten: its manifest row differs from the one sealed "
                f"by {entry.kind} {entry.run} (ledger entry {entry.seq}) in "
                + ", ".join(fields)))
        else:
            report.rows_sealed += 1
    for k, row in current.items():
        if k in sealed:
            continue
        if writer is not None and k[0] == writer:
            report.in_progress += 1
            continue
        report.problems.append(Problem(
            "manifest", str(row.get("path")), f"not sealed in the ledger: ingest {k[0]} file "
            f"{k[1]} was added outside an ingest (or by one that was interrupted and not "
            "recovered yet)"))


def _check_findings(store: Store, led: ledger.Ledger, on_disk: list[Path],
                    report: VerifyReport) -> None:
    """Findings files sealed by detection runs are there, unchanged; none is unsealed."""
    if not led.exists:
        return
    files = ledger.sealed_files(led)
    for rel, (sha, entry) in sorted(files.items()):
        report.parts_checked += 1
        path = store.root / rel
        if not path.exists():
            report.problems.append(Problem("findings", rel, f"missing: sealed by {entry.kind} "
                                           f"{entry.run} (ledger entry {entry.seq})"))
        elif sha256_file(path) != sha:
            report.problems.append(Problem("findings", rel, "SHA-256 differs from the one "
                                           f"sealed by {entry.kind} {entry.run} (ledger "
                                           f"entry {entry.seq}): modified"))
    for path in on_disk:
        rel = str(path.relative_to(store.root))
        if rel not in files:
            report.problems.append(Problem("findings", rel, "not sealed in the ledger (added "
                                           "outside a detection run, or by one interrupted "
                                           "before it was sealed)"))


def _check_head(led: ledger.Ledger, head: str, report: VerifyReport) -> None:
    hashes = [e.hash for e in led.entries]
    if head not in hashes:
        report.problems.append(Problem(
            "ledger", "head", f"the chain head you kept ({head}) is not in this store's "
            "ledger: this is not the store it was taken from, or runs were removed or "
            "rewritten since"))
        return
    after = led.entries[hashes.index(head) + 1:]
    report.since_head = [f"{e.seq}: {e.kind} {e.run} at {e.at}" for e in after]
