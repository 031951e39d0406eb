"""The Parquet evidence store: layout, crash-safe commits, idempotent ingest.

Layout (hive-partitioned; zstd, LZ4 for small days)::

    <store>/events/source=<name>/date=<YYYY-MM-DD>/part-<ingest_id>-<n>.parquet
    <store>/rejects/<ingest_id>-<file_seq>.parquet
    <store>/manifest.parquet        one row per input file
    <store>/manifest.d/             per-file commit records not yet folded into manifest.parquet
    <store>/ledger.jsonl            the hash chain of every run (loaders.store.ledger)

Each input file is committed on its own, in three steps: its event parts and rejects are
written under hidden temporary names (``.part-….parquet.tmp``, invisible to ``*.parquet``
globs, to pyarrow and to Spark); a manifest record naming them is written with an atomic
rename (the commit point); then the parts are renamed into place. :meth:`Store.recover`
finishes committed files and deletes uncommitted ones, so a killed ingest leaves nothing half
visible and running it again completes the job. A run ends by sealing what it committed in
the ledger (:meth:`Store.seal`).

Readers take no write lock. What a reader must see together — the manifest and the files on
disk — it takes inside :meth:`Store.snapshot`, a shared lock that the writer's short commit
steps (:meth:`Store._committing`: the commit point and the renames after it, folding the
manifest, sealing, recovery) take exclusively; committed files are never changed after, so
a reader that took its snapshot can read them at leisure.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loaders.schema import event_schema
from loaders.store import ledger
from loaders.store.layout import (
    COMPRESSION,
    MANIFEST_SCHEMA,
    ManifestRow,
    StagedRow,
    conform_manifest,
)
from loaders.store.staging import StagedDay
from loaders.store.uidindex import UidIndex, fingerprints, staged_fingerprints

# a staged day of at most `in_memory_rows` rows (Store.commit; loaders.base.Tuning's
# dedupe_in_memory_rows) is de-duplicated in memory with Arrow if its partition holds at
# most this many ids
SMALL_STORED_IDS = 2_000_000

LOCK_WAIT_SECONDS = 2.0  # a writer waits this long for a reader probing the lock to let go


class StoreBusy(RuntimeError):
    """Another process holds the store's write lock."""


class StoreError(Exception):
    """The store cannot be used as asked; the message is one sentence saying what is wrong
    and what to do (the CLI prints it as it is)."""


class StoreUnusable(StoreError):
    """Bad usage: the store path is a file, or not writable (read-only disk, another
    owner). Exit status 2."""


class StoreDamaged(StoreError):
    """A store file cannot be read (a damaged part, a damaged manifest). Exit status 1."""


def repair_hint(root: Path) -> str:
    return f"`auditlens repair --store {root}` moves it aside and says what to ingest again"


_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def unwritable(root: Path, exc: OSError) -> StoreUnusable:
    """The one sentence for a store that cannot be written."""
    why = {errno.EROFS: "it is on a read-only file system",
           errno.EACCES: "permission denied (the store belongs to another user, or its "
                         "directory is read-only)",
           errno.EPERM: "the operation is not permitted there"}.get(
        exc.errno or 0, exc.strerror or str(exc))
    return StoreUnusable(f"cannot write to the store {root}: {why}; write to a store you "
                         "own on a writable disk (--store DIR); reading it (info, verify, "
                         "detect without storing) still works")


def new_ingest_id() -> str:
    """Sortable, unique: UTC time then random hex, e.g. ``20261128T013000Z-3f9a1c``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def sha256_file(path: Path, limit: int | None = None) -> str:
    """SHA-256 of a file's bytes as stored (compressed files are hashed compressed); of its
    first ``limit`` bytes only when given (an input's size when it was opened)."""
    h = hashlib.sha256()
    left = limit
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20 if left is None else min(1 << 20, left)):
            h.update(block)
            if left is not None:
                left -= len(block)
    return h.hexdigest()


@functools.cache
def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("auditlens")
    except PackageNotFoundError:
        return "0+unknown"


def _fsync_write_table(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression=COMPRESSION)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(rel: str) -> str:
    """The hidden temporary name a final store path is written under first."""
    head, _, name = rel.rpartition("/")
    return f"{head}/.{name}.tmp" if head else f".{name}.tmp"


def _crash_point(name: str) -> None:
    """Fault injection for the crash-safety tests: die here when asked to."""
    if os.environ.get("AUDITLENS_CRASH_AT") == name:
        os._exit(137)


@dataclass
class Commit:
    """What one input file adds to the store (the manifest row, and the staged files)."""

    row: StagedRow
    staged_events: dict[str, StagedDay]
    staged_rejects: Path | None
    host_from_layout: str | None = None  # the manifest's column of that name


class Store:
    """A store directory. Reading needs no lock; writing takes an exclusive file lock.

    Args:
        root: the store directory (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.events_dir = self.root / "events"
        self.rejects_dir = self.root / "rejects"
        self.manifest_path = self.root / "manifest.parquet"
        self.manifest_dir = self.root / "manifest.d"
        self.tmp_dir = self.root / ".tmp"
        self._lock_path = self.root / ".lock"
        self._uids = UidIndex()
        self._committing_now = False
        # the manifest records this Store committed (under the write lock), by path: the
        # end of an ingest reads every pending record two or three times (recover, fold,
        # seal), which for a collection of many small files was ~10% of the run
        # (docs/BENCHMARKS.md); a record is immutable once committed, and only one found on
        # disk by its name is taken from here, so the store on disk still decides
        self._written_records: dict[str, pa.Table] = {}

    def exists(self) -> bool:
        return self.events_dir.is_dir() or self.manifest_path.exists()

    def check_path(self) -> None:
        """Raise :class:`StoreUnusable` if the store path is not a directory (a file)."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreUnusable(f"the store path {self.root} is a file, not a store "
                                "directory; give --store a directory (new or an existing "
                                "store)")

    # --- locking and recovery ---------------------------------------------------------

    @contextmanager
    def write_lock(self, run: str = "", *, recover: bool = True) -> Iterator[None]:
        """Hold the store's exclusive write lock (recovering a dead writer's leftovers).

        Args:
            run: the id of the run taking it, for readers to tell its rows from tampering
                while it runs (:meth:`active_writer`).
            recover: first finish what a dead writer left (:meth:`recover`); off only for
                :func:`loaders.store.repair.repair`, which must work on a damaged manifest.

        Raises:
            StoreBusy: another ingest is running on this store.
            StoreUnusable: the store path is a file, or the store cannot be written.
        """
        self.check_path()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in _UNWRITABLE:
                raise
            raise unwritable(self.root, exc) from None
        try:
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if self.active_writer() is not None or time.monotonic() > deadline:
                        raise StoreBusy(
                            f"another auditlens process is writing to {self.root}; wait for "
                            "it to finish or use another --store") from None
                    time.sleep(0.02)  # a reader probing the lock lets go at once
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, run.encode("utf-8", "replace"), 0)
                self._uids = UidIndex()  # others may have written since we last held it
                if recover:
                    self.recover()
            except OSError as exc:
                if exc.errno not in _UNWRITABLE:
                    raise
                raise unwritable(self.root, exc) from None
            yield
        finally:
            os.close(fd)

    def active_writer(self) -> str | None:
        """The id of the run writing to the store now ("" if it gave none), or None when
        nobody writes. Probes the write lock without waiting (a writer retries meanwhile)."""
        try:
            fd = os.open(self._lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(fd, 256, 0).decode("utf-8", "replace")
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    @contextmanager
    def _committing(self) -> Iterator[None]:
        """The writer's side of :meth:`snapshot`: held across each step that changes what
        readers see together (a commit point and its renames, folding, sealing)."""
        if self._committing_now:
            yield
            return
        fd = os.open(self.root / ".commit-lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._committing_now = True
            yield
        finally:
            self._committing_now = False
            os.close(fd)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold while reading what must be consistent — the manifest, the ledger, the list
        of files — so that no commit is seen half done. Cheap; read the files after."""
        if self._committing_now:  # the writer itself, inside a commit step
            yield
            return
        try:
            fd = os.open(self.root / ".commit-lock", os.O_RDONLY)
        except OSError:  # no writer ever committed here, or it cannot be opened
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def recover_if_idle(self) -> None:
        """Run :meth:`recover` if a dead ingest left temporary files and nobody writes now."""
        if not self.root.is_dir() or not self._has_leftovers():
            return
        try:
            with self.write_lock():
                pass
        except (StoreBusy, PermissionError, OSError):
            return

    def _has_leftovers(self) -> bool:
        return (self.tmp_dir.exists() or any(self.manifest_dir.glob("*"))
                or any(self.root.glob("events/*/*/.part-*.tmp"))
                or any(self.rejects_dir.glob(".*.tmp")))

    def recover(self, *, seal: bool = True) -> None:
        """Finish committed files, drop uncommitted ones, fold manifest records, and seal
        in the ledger the runs a dead writer committed without sealing (``seal``).

        A run marks itself running with a directory of its id in ``.tmp`` (an ingest's
        staging) that it removes only after sealing, so rows of an interrupted run are
        told from rows added by hand: only the former are sealed here. A store from before
        the ledger has its rows sealed once, marked as such.

        Call only while holding the write lock.
        """
        with self._committing():
            committed: set[str] = set()
            manifest = self.read_manifest()
            for parts, rejects in zip(manifest.column("parts").to_pylist(),
                                      manifest.column("rejects_file").to_pylist(), strict=True):
                committed.update(parts or [])
                if rejects:
                    committed.add(rejects)
            leftovers = [*self.root.glob("events/*/*/.part-*.tmp"),
                         *self.rejects_dir.glob(".*.tmp")]
            for tmp in leftovers:
                final = tmp.with_name(tmp.name[1:].removesuffix(".tmp"))
                if str(final.relative_to(self.root)) in committed:
                    os.replace(tmp, final)
                else:
                    tmp.unlink()
            for stray in [*self.root.glob(".manifest*.tmp"), *self.manifest_dir.glob(".*.tmp")]:
                stray.unlink()
            self._fold_manifest_locked()
            if seal:
                interrupted = ({p.name for p in self.tmp_dir.iterdir() if p.is_dir()}
                               if self.tmp_dir.is_dir() else set())
                self._seal_orphans(interrupted)
        if seal and self.tmp_dir.exists():
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def _seal_orphans(self, interrupted: set[str]) -> None:
        led = ledger.read(self.root)
        manifest = self.read_manifest()
        if not led.exists:
            ids = sorted(set(manifest.column("ingest_id").to_pylist()))
            for ingest_id in ids:
                how = (ledger.SEALED_INTERRUPTED if ingest_id in interrupted
                       else ledger.SEALED_UPGRADE)
                ledger.append(self.root, "ingest", ingest_id, sealed=how,
                              tool_version=tool_version(),
                              rows=ledger.rows_of(manifest, ingest_id), ledger=led)
            return
        sealed = ledger.sealed_rows(led)
        orphans = sorted({r for r, s in zip(manifest.column("ingest_id").to_pylist(),
                                            manifest.column("file_seq").to_pylist(),
                                            strict=True)
                          if (r, s) not in sealed and r in interrupted})
        for ingest_id in orphans:
            rows = [r for r in ledger.rows_of(manifest, ingest_id)
                    if ledger.key(r) not in sealed]
            ledger.append(self.root, "ingest", ingest_id, sealed=ledger.SEALED_INTERRUPTED,
                          tool_version=tool_version(), rows=rows, ledger=led)

    # --- the ledger -------------------------------------------------------------------

    def seal_ingest(self, ingest_id: str) -> ledger.Entry:
        """Seal an ingest's committed rows in the ledger (at its end, lock held)."""
        with self._committing():
            self._fold_manifest_locked()
            rows = ledger.rows_of(self.read_manifest(), ingest_id)
            return ledger.append(self.root, "ingest", ingest_id, tool_version=tool_version(),
                                 rows=rows)

    def seal(self, kind: ledger.EntryKind, run: str, *, files: Sequence[str] = (),
             note: dict[str, object] | None = None,
             removes: Sequence[tuple[str, int]] = ()) -> ledger.Entry:
        """Seal a run that is not an ingest: ``files`` (relative to the store) are hashed
        now. Call with the write lock held."""
        with self._committing():
            hashed = [(rel, sha256_file(self.root / rel)) for rel in files]
            return ledger.append(self.root, kind, run, tool_version=tool_version(),
                                 files=hashed, removes=removes, note=note)

    def chain_head(self) -> tuple[str, int]:
        """The ledger's chain head and number of entries."""
        return ledger.head_of(self.root)

    # --- manifest ---------------------------------------------------------------------

    def manifest_rows(self) -> list[ManifestRow]:
        """:meth:`read_manifest` as rows."""
        rows: list[ManifestRow] = self.read_manifest().to_pylist()
        return rows

    def read_manifest(self) -> pa.Table:
        """Every committed input file, one row each (manifest.parquet plus pending records).

        Raises:
            StoreDamaged: ``manifest.parquet`` or a pending record cannot be read.
        """
        for attempt in range(20):
            try:
                with self.snapshot():
                    pending = sorted(self.manifest_dir.glob("*.parquet"))
                    tables = []
                    if self.manifest_path.exists():
                        tables.append(self._read_record(self.manifest_path))
                    written = self._written_records
                    tables.extend(written[str(p)] if str(p) in written
                                  else self._read_record(p) for p in pending)
                break
            except FileNotFoundError:  # folded meanwhile (a writer without the lock file)
                if attempt == 19:
                    raise
                time.sleep(0.01)
        if not tables:
            return MANIFEST_SCHEMA.empty_table()
        table = pa.concat_tables([conform_manifest(t) for t in tables])
        keys = [f"{a}/{b}" for a, b in zip(table.column("ingest_id").to_pylist(),
                                           table.column("file_seq").to_pylist(), strict=True)]
        seen: set[str] = set()
        keep = []
        for i, key in enumerate(keys):
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return table.take(keep) if len(keep) != table.num_rows else table

    def _read_record(self, path: Path) -> pa.Table:
        try:
            return pq.read_table(path)
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException) as exc:
            what = ("the store's manifest" if path == self.manifest_path
                    else "a manifest record")
            raise StoreDamaged(
                f"{what} {path} is damaged ({type(exc).__name__}: {exc}); "
                f"`auditlens repair --store {self.root}` rebuilds it from the ledger") from None

    def _fold_manifest_locked(self) -> None:
        pending = sorted(self.manifest_dir.glob("*.parquet"))
        if not pending:
            return
        table = self.read_manifest()
        tmp = self.root / ".manifest.parquet.tmp"
        _fsync_write_table(table, tmp)
        os.replace(tmp, self.manifest_path)
        for p in pending:
            p.unlink()
            self._written_records.pop(str(p), None)

    # --- commit -----------------------------------------------------------------------

    def partition_dir(self, source: str, date: str) -> Path:
        return self.events_dir / f"source={source}" / f"date={date}"

    def part_files(self, source: str | None = None, dates: list[str] | None = None
                   ) -> list[Path]:
        """Committed event files, optionally of one source and some dates."""
        src = f"source={source}" if source else "source=*"
        if dates is None:
            return sorted(self.events_dir.glob(f"{src}/date=*/part-*.parquet"))
        out: list[Path] = []
        for d in dates:
            out.extend(sorted(self.events_dir.glob(f"{src}/date={d}/part-*.parquet")))
        return out

    def commit(self, commit: Commit, *, in_memory_rows: int) -> ManifestRow:
        """Commit one input file: de-duplicate its staged events against the store, write
        its partitions and rejects, record it in the manifest. Returns the manifest row.

        Args:
            commit: the file's manifest row and staged files.
            in_memory_rows: a staged day of at most this many events is de-duplicated in
                memory with Arrow (if its partition holds at most ``SMALL_STORED_IDS``
                ids), a larger one by DuckDB (``loaders.base.Tuning.dedupe_in_memory_rows``,
                passed by the ingest pipeline).

        Call only while holding the write lock.
        """
        staged = commit.row
        ingest_id, seq = staged["ingest_id"], staged["file_seq"]
        parts: list[str] = []
        tmp_files: list[Path] = []
        staged_rows = kept = 0
        if commit.staged_events:
            try:
                staged_rows, kept = self._write_parts(commit.staged_events, staged["loader"],
                                                      f"{ingest_id}-{seq:06d}", parts,
                                                      tmp_files, in_memory_rows)
            except Exception as exc:
                damaged = self._damaged_part(staged["loader"], list(commit.staged_events))
                if damaged is None:
                    raise
                raise damaged from exc
        rejects_rel = None
        if commit.staged_rejects is not None:
            self.rejects_dir.mkdir(parents=True, exist_ok=True)
            final = self.rejects_dir / f"{ingest_id}-{seq:06d}.parquet"
            tmp = final.with_name("." + final.name + ".tmp")
            os.replace(commit.staged_rejects, tmp)
            tmp_files.append(tmp)
            rejects_rel = str(final.relative_to(self.root))
        hashes = {str(t.relative_to(self.root)): sha256_file(t) for t in tmp_files}
        row: ManifestRow = {
            **staged,
            "records_loaded": kept,
            "records_duplicate": staged["records_duplicate"] + staged_rows - kept,
            "finished_at": datetime.now(UTC),
            "parts": parts,
            "rejects_file": rejects_rel,
            "parts_sha256": [hashes[_tmp_name(p)] for p in parts],
            "rejects_sha256": hashes[_tmp_name(rejects_rel)] if rejects_rel else None,
            "host_from_layout": commit.host_from_layout,
        }
        self.manifest_dir.mkdir(parents=True, exist_ok=True)
        record = self.manifest_dir / f"{ingest_id}-{seq:06d}.parquet"
        tmp_record = record.with_name("." + record.name + ".tmp")
        record_table = pa.Table.from_pylist([row], schema=MANIFEST_SCHEMA)
        _fsync_write_table(record_table, tmp_record)
        _crash_point("before-commit")
        with self._committing():
            os.replace(tmp_record, record)  # the commit point
            self._written_records[str(record)] = record_table
            _crash_point("after-commit")
            for tmp in tmp_files:
                os.replace(tmp, tmp.with_name(tmp.name[1:].removesuffix(".tmp")))
        return row

    def _damaged_part(self, source: str, days: list[str]) -> StoreDamaged | None:
        """The error for the first stored part of these partitions that cannot be read (the
        de-duplication reads their ids), naming the input it came from; None if all read."""
        for part in self.part_files(source, days):
            try:
                pq.read_table(part, columns=["event_uid"])
            except Exception as exc:  # pyarrow raises several types for damaged files
                return self.damaged_part_error(part, f"{type(exc).__name__}: {exc}")
        return None

    def relative(self, path: str | os.PathLike[str]) -> str:
        """A path under the store as relative to it (as the manifest names files)."""
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    def damaged_part_error(self, part: Path, why: str) -> StoreDamaged:
        """One sentence for a stored file that cannot be read: which, from which input,
        and what to do."""
        rel = self.relative(part)
        origin = ""
        try:
            for row in self.manifest_rows():
                if rel in (row["parts"] or []) or rel == row["rejects_file"]:
                    origin = f" (from the input {row['path']})"
                    break
        except StoreDamaged:
            pass
        return StoreDamaged(f"the stored file {rel}{origin} is damaged ({why}); "
                            f"{repair_hint(self.root)}")

    def _write_parts(self, staged: dict[str, StagedDay], source: str, stem: str,
                     parts: list[str], tmp_files: list[Path], in_memory_rows: int
                     ) -> tuple[int, int]:
        """Put one file's staged per-day event files into their partitions.

        A day whose staged ids are unique and not yet stored (:class:`UidIndex`) is moved
        into place as it is (a rename); otherwise DuckDB keeps the first row of each id
        that is not already stored, and that is written. An event's id fixes its
        timestamp, so duplicates can only be in the same day.
        """
        staged_rows = kept = 0
        con = None
        try:
            for k, (day, done) in enumerate(sorted(staged.items())):
                path, rows, fps = done.path, done.rows, done.fingerprints
                staged_rows += rows
                directory = self.partition_dir(source, day)
                directory.mkdir(parents=True, exist_ok=True)
                final = directory / f"part-{stem}-{k:03d}.parquet"
                tmp = directory / f".{final.name}.tmp"
                key = (source, day)

                def existing(day: str = day) -> list[Path]:
                    return self.part_files(source, [day])

                if self._uids.is_new(key, existing, fps):
                    if done.table is not None:  # held in memory (a small file): written now
                        pq.write_table(done.table, tmp, **(done.options or {}))
                    else:
                        os.replace(path, tmp)
                    written = rows
                elif rows <= in_memory_rows and \
                        _at_most(self._uids.stored(key, existing), SMALL_STORED_IDS):
                    written, fps = _dedupe_in_memory(
                        done.table if done.table is not None else path,
                        self._uids.exact(key, existing), tmp)
                else:
                    done.write()
                    con = con or self._duckdb()
                    written = self._dedupe_into(con, path, [str(p) for p in existing()], tmp)
                    fps = staged_fingerprints(tmp) if written else None
                if written == 0:
                    tmp.unlink(missing_ok=True)
                    continue
                self._uids.add(key, existing, fps)
                kept += written
                fd = os.open(tmp, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
                tmp_files.append(tmp)
                parts.append(str(final.relative_to(self.root)))
            return staged_rows, kept
        finally:
            if con is not None:
                con.close()

    def _duckdb(self) -> Any:
        import duckdb

        con = duckdb.connect(config={"threads": 2, "memory_limit": "256MB",
                                     "temp_directory": str(self.tmp_dir / "duckdb")})
        con.execute("SET TimeZone='UTC'")
        return con

    def _dedupe_into(self, con: Any, staged: Path, existing: list[str], out: Path) -> int:
        """Write the staged rows whose id is new (first occurrence only) to ``out``."""
        # The GROUP BY reads only the id column, so memory stays small; no global sort,
        # rows keep the loader's (time) order.
        anti = ("ANTI JOIN read_parquet($existing, union_by_name=true) e "
                "ON s.event_uid = e.event_uid") if existing else ""
        query = (
            "WITH firsts AS (SELECT min(file_row_number) AS n FROM "
            "read_parquet($staged, file_row_number=true) GROUP BY event_uid) "
            "SELECT s.* EXCLUDE (file_row_number) "
            "FROM read_parquet($staged, file_row_number=true) s "
            f"SEMI JOIN firsts f ON s.file_row_number = f.n {anti}"
        )
        params: dict[str, object] = {"staged": str(staged)}
        if existing:
            params["existing"] = existing
        schema = event_schema()
        kept = 0
        with pq.ParquetWriter(out, schema, compression=COMPRESSION) as writer:
            for batch in con.sql(query, params=params).to_arrow_reader(10_000):
                # rows were validated when staged; only DuckDB's types need casting back
                table = pa.Table.from_batches([batch]).cast(schema)
                kept += table.num_rows
                writer.write_table(table)
        return kept


def _at_most(n: int | None, limit: int) -> bool:
    return n is not None and n <= limit


def _dedupe_in_memory(staged: Path | pa.Table, stored: pa.Array, out: Path
                      ) -> tuple[int, np.ndarray | None]:
    """:meth:`Store._dedupe_into` for a small staged file (or a day held in memory) and
    partition, with Arrow: no DuckDB query to plan (~25 ms each, which dominated
    directories of small files). ``stored`` holds the partition's ids. Returns the rows
    written and their fingerprints."""
    uids = (staged.column("event_uid") if isinstance(staged, pa.Table)
            else pq.read_table(staged, columns=["event_uid"]).column(0))
    n = len(uids)
    order = pa.table({"u": uids, "i": pa.array(np.arange(n))})
    firsts = order.group_by("u", use_threads=False).aggregate([("i", "min")]).column("i_min")
    keep = np.zeros(n, bool)
    keep[firsts.to_numpy()] = True
    if len(stored):
        keep &= ~pc.is_in(uids, value_set=stored).to_numpy(zero_copy_only=False)
    kept = int(keep.sum())
    if not kept:
        return 0, None
    mask = pa.array(keep)
    table = staged if isinstance(staged, pa.Table) else pq.read_table(staged)
    pq.write_table(table.filter(mask), out, compression=COMPRESSION)
    found = fingerprints(uids.filter(mask))
    return kept, None if found is None else np.sort(found)
