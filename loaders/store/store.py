"""The Parquet evidence store: layout, crash-safe commits, idempotent ingest.

Layout (hive-partitioned; zstd, LZ4 for small days)::

    <store>/events/source=<name>/date=<YYYY-MM-DD>/part-<ingest_id>-<n>.parquet
    <store>/rejects/<ingest_id>-<file_seq>.parquet
    <store>/manifest.parquet        one row per input file
    <store>/manifest.d/             per-file commit records not yet folded into manifest.parquet

Each input file is committed on its own, in three steps: its event parts and rejects are
written under hidden temporary names (``.part-….parquet.tmp``, invisible to ``*.parquet``
globs, to pyarrow and to Spark); a manifest record naming them is written with an atomic
rename (the commit point); then the parts are renamed into place. :meth:`Store.recover`
finishes committed files and deletes uncommitted ones, so a killed ingest leaves nothing half
visible and running it again completes the job.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
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

class StoreBusy(RuntimeError):
    """Another process holds the store's write lock."""


def new_ingest_id() -> str:
    """Sortable, unique: UTC time then random hex, e.g. ``20261128T013000Z-3f9a1c``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes as stored (compressed files are hashed compressed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
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

    def exists(self) -> bool:
        return self.events_dir.is_dir() or self.manifest_path.exists()

    # --- locking and recovery ---------------------------------------------------------

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Hold the store's exclusive write lock (recovering a dead writer's leftovers).

        Raises:
            StoreBusy: another ingest is running on this store.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusy(
                    f"another auditlens process is writing to {self.root}; wait for it to "
                    "finish or use another --store"
                ) from None
            self._uids = UidIndex()  # others may have written since we last held the lock
            self.recover()
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

    def recover(self) -> None:
        """Finish committed files, drop uncommitted ones, fold manifest records.

        Call only while holding the write lock.
        """
        committed: set[str] = set()
        manifest = self.read_manifest()
        for parts, rejects in zip(manifest.column("parts").to_pylist(),
                                  manifest.column("rejects_file").to_pylist(), strict=True):
            committed.update(parts or [])
            if rejects:
                committed.add(rejects)
        leftovers = [*self.root.glob("events/*/*/.part-*.tmp"), *self.rejects_dir.glob(".*.tmp")]
        for tmp in leftovers:
            final = tmp.with_name(tmp.name[1:].removesuffix(".tmp"))
            if str(final.relative_to(self.root)) in committed:
                os.replace(tmp, final)
            else:
                tmp.unlink()
        for stray in [*self.root.glob(".manifest*.tmp"), *self.manifest_dir.glob(".*.tmp")]:
            stray.unlink()
        if self.tmp_dir.exists():
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self._fold_manifest()

    # --- manifest ---------------------------------------------------------------------

    def manifest_rows(self) -> list[ManifestRow]:
        """:meth:`read_manifest` as rows."""
        rows: list[ManifestRow] = self.read_manifest().to_pylist()
        return rows

    def read_manifest(self) -> pa.Table:
        """Every committed input file, one row each (manifest.parquet plus pending records)."""
        tables = []
        if self.manifest_path.exists():
            tables.append(pq.read_table(self.manifest_path))
        tables.extend(pq.read_table(p) for p in sorted(self.manifest_dir.glob("*.parquet")))
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

    def _fold_manifest(self) -> None:
        pending = sorted(self.manifest_dir.glob("*.parquet"))
        if not pending:
            return
        table = self.read_manifest()
        tmp = self.root / ".manifest.parquet.tmp"
        _fsync_write_table(table, tmp)
        os.replace(tmp, self.manifest_path)
        for p in pending:
            p.unlink()

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
            staged_rows, kept = self._write_parts(commit.staged_events, staged["loader"],
                                                  f"{ingest_id}-{seq:06d}", parts, tmp_files,
                                                  in_memory_rows)
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
        }
        self.manifest_dir.mkdir(parents=True, exist_ok=True)
        record = self.manifest_dir / f"{ingest_id}-{seq:06d}.parquet"
        tmp_record = record.with_name("." + record.name + ".tmp")
        _fsync_write_table(pa.Table.from_pylist([row], schema=MANIFEST_SCHEMA), tmp_record)
        _crash_point("before-commit")
        os.replace(tmp_record, record)  # the commit point
        _crash_point("after-commit")
        for tmp in tmp_files:
            os.replace(tmp, tmp.with_name(tmp.name[1:].removesuffix(".tmp")))
        return row

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
                    os.replace(path, tmp)
                    written = rows
                elif rows <= in_memory_rows and \
                        _at_most(self._uids.stored(key, existing), SMALL_STORED_IDS):
                    written, fps = _dedupe_in_memory(path, self._uids.exact(key, existing), tmp)
                else:
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


def _dedupe_in_memory(staged: Path, stored: pa.Array, out: Path
                      ) -> tuple[int, np.ndarray | None]:
    """:meth:`Store._dedupe_into` for a small staged file and partition, with Arrow: no
    DuckDB query to plan (~25 ms each, which dominated directories of small files).
    ``stored`` holds the partition's ids. Returns the rows written and their fingerprints."""
    uids = pq.read_table(staged, columns=["event_uid"]).column(0)
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
    pq.write_table(pq.read_table(staged).filter(mask), out, compression=COMPRESSION)
    found = fingerprints(uids.filter(mask))
    return kept, None if found is None else np.sort(found)
