"""Ingest: files, directories and archives into a :class:`~loaders.store.store.Store`.

Each input file goes through: hash (skip if already stored) → detect its loader (or take
``format``) → parse into staged Parquet (in a worker process when ``jobs > 1``) → commit in
input order (de-duplication against the store, partitions, manifest). A file that no loader
recognises is reported as skipped and the run goes on.
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Literal, TypedDict

import pyarrow as pa

import loaders
from loaders.base import LoadOptions
from loaders.ingest.archives import ArchiveLimits, Refused, iter_archive, sniff_kind
from loaders.ingest.collections import collection_host, collection_path, is_collection_metadata
from loaders.ingest.hosts import (
    HostEvents,
    HostSummary,
    HostTally,
    loaded_by_host,
    summarize,
)
from loaders.ingest.runner import FileCounts, FileRun
from loaders.parsing.damage import looks_like_text
from loaders.parsing.inputs import (
    InputFile,
    NotRegularFile,
    changed_since,
    input_file,
    read_head,
)
from loaders.parsing.lifetime import die_with
from loaders.registry import detect_head
from loaders.schema import CORE_NAMES
from loaders.store.layout import FileStatus, StagedRow
from loaders.store.staging import write_staged
from loaders.store.store import Commit, Store, new_ingest_id, sha256_file, tool_version

DEFER_HASH_BYTES = 4 << 20  # smaller files are hashed before parsing: cheap, no thread
RELEASE_MEMORY_BYTES = 16 << 20  # after smaller files, a full gc (~25 ms) is not worth it

OutcomeStatus = FileStatus | Literal["skipped", "refused"]
"""What became of an input file (see :class:`FileOutcome`); the first three are also the
manifest's statuses (:data:`loaders.store.layout.FileStatus`)."""


@dataclass
class FileOutcome:
    """One line of the ingest summary.

    ``status`` is ``ingested``, ``stopped`` (loaded up to a damaged stream or a loader
    error), ``failed`` (no record loaded: wrong format, unreadable, a damaged archive or
    member; what could be kept — its rejects, its manifest row — is), ``skipped`` (already
    in the store, or no loader recognises it: ``unrecognised`` says whether it looks like
    text logs) or ``refused`` (an unsafe archive member, one over a cap, a FIFO or device).
    For every status ``read == loaded + rejected + duplicate``: the counts are what the
    store holds.
    """

    path: str
    status: OutcomeStatus
    loader: str = ""
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    duplicate: int = 0
    message: str = ""
    size: int = 0
    unrecognised: Literal["", "text", "binary", "ambiguous"] = ""
    changed: str | None = None  # how the file changed while it was ingested (input_changed)
    naive_times: int = 0  # records whose time had no zone
    time_zone: str | None = None  # the zone they were read in (the manifest's time_zone)
    zone_assumed: bool = False  # they were taken as UTC for want of a zone
    metadata: bool = False  # skipped as a collector's bookkeeping (``message`` says whose)
    # the host the collection's layout names, filled into events whose record had none
    # (also the manifest's host_from_layout); None when no event needed it
    layout_host: str | None = None
    hosts: list[HostEvents] = field(default_factory=list)  # events by host, once committed


class IngestTotals(TypedDict):
    """Records summed over an ingest's files, and files per status."""

    read: int
    loaded: int
    rejected: int
    duplicate: int
    ingested: int
    stopped: int
    failed: int
    skipped: int
    refused: int


@dataclass
class IngestReport:
    """Everything one ingest run did."""

    ingest_id: str
    store: Path
    files: list[FileOutcome] = field(default_factory=list)
    ledger_head: str = ""  # the store's chain head once this run was sealed

    def totals(self) -> IngestTotals:
        files = self.files

        def status(name: OutcomeStatus) -> int:
            return sum(1 for f in files if f.status == name)

        return {"read": sum(f.read for f in files), "loaded": sum(f.loaded for f in files),
                "rejected": sum(f.rejected for f in files),
                "duplicate": sum(f.duplicate for f in files),
                "ingested": status("ingested"), "stopped": status("stopped"),
                "failed": status("failed"), "skipped": status("skipped"),
                "refused": status("refused")}

    @property
    def ok(self) -> bool:
        return not any(f.status == "failed" for f in self.files)

    def metadata_files(self) -> int:
        """Files skipped as collection metadata (a collector's bookkeeping)."""
        return sum(1 for f in self.files if f.metadata)

    def by_host(self) -> list[HostSummary]:
        """The run by host, from what was committed: per host, the files with events of it
        (all duplicates included: the file is that host's evidence all the same), the events
        the store took, the loaders, and the first and last of those events' times. Sorted
        by host, :data:`NO_HOST` last."""
        return summarize([(f.loader, f.hosts) for f in self.files])


class Progress:
    """Receives progress; the CLI passes one that drives a progress bar."""

    def bytes_read(self, n: int) -> None:
        """``n`` more input bytes were read."""

    def file_done(self, outcome: FileOutcome) -> None:
        """A file was committed, skipped or failed."""


@dataclass
class _Job:
    file: InputFile
    head: bytes
    loader: str
    sha256: str | Future[str]  # a Future while it is hashed alongside parsing
    seq: int
    ingest_id: str
    staging: Path
    options: LoadOptions
    owned: bool  # the file is a temp copy (archive member) to delete after commit
    damaged_lines: int = 0  # lines of a damaged head before the records detection found
    layout_host: str | None = None  # the host the collection's layout names (collections.py)


@dataclass
class _Staged:
    job: _Job
    commit: Commit | None
    outcome: FileOutcome


def discover(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files named, and files under directories named (recursively, sorted, no hidden)."""
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name
        else:
            yield p


def _is_store(directory: Path) -> bool:
    return (directory / "ledger.jsonl").is_file() or (
        (directory / "manifest.parquet").is_file() and (directory / "events").is_dir())


def _without_stores(files: Iterable[Path], own: Path,
                    skip: Callable[[FileOutcome], None]) -> Iterator[Path]:
    """The files found, less those of an auditlens store: the one being written (the store
    may live in the folder ingested; it grows while the folder is walked) is left out
    silently, and another store under the inputs is one ``skipped`` outcome saying how many
    of its files were not read. A store is not evidence."""
    own_root = own.resolve()
    verdict: dict[Path, Path | None] = {}  # directory -> the store it is in, or None
    left: dict[Path, int] = {}

    def store_of(directory: Path) -> Path | None:
        if directory in verdict:
            return verdict[directory]
        found: Path | None = None
        if directory == own_root or _is_store(directory):
            found = directory
        elif directory.parent != directory:
            found = store_of(directory.parent)
        verdict[directory] = found
        return found

    by_parent: dict[Path, Path | None] = {}  # a folder as walked -> its store (one resolve)
    for path in files:
        if path.parent not in by_parent:
            by_parent[path.parent] = store_of(path.parent.resolve())
        root = by_parent[path.parent]
        if root is None:
            yield path
        else:
            left[root] = left.get(root, 0) + 1
    for root, n in left.items():
        if root != own_root:
            skip(FileOutcome(str(root), "skipped", message=f"an auditlens evidence store, "
                             f"not evidence: its {n:,} files were not read"))


def _stage(job: _Job, progress: Callable[[int], None] | None = None) -> _Staged:
    """Parse one file into staged Parquet. Runs in a worker process when jobs > 1."""
    loader = loaders.get_loader(job.loader)
    run = FileRun(loader, job.file, job.head, job.options, job.ingest_id, progress,
                  damaged_lines=job.damaged_lines)
    started = datetime.now(UTC)
    outcome = FileOutcome(job.file.display, "ingested", loader.name, size=job.file.size)
    unstored = None  # why nothing of the file can be stored
    hosts = HostTally(job.layout_host)
    try:
        used = CORE_NAMES | {c.name for c in loader.extra_columns}
        ev, rj = write_staged(hosts.fill(iter(run)), job.staging, f"{job.seq:06d}", used)
    except Exception as exc:
        unstored = f"{type(exc).__name__}: {exc}"
        ev, rj = {}, None
    if job.file.size >= RELEASE_MEMORY_BYTES:
        _release_memory()
    try:
        digest = job.sha256 if isinstance(job.sha256, str) else job.sha256.result()
    except OSError as exc:
        unstored, digest = f"cannot read: {exc}", ""
    digest, size, changed = _what_was_read(job.file, run, digest)
    outcome.size, outcome.changed = size, changed
    outcome.naive_times, outcome.time_zone = run.clock.naive, run.clock.describe()
    outcome.zone_assumed = bool(run.clock.naive) and run.clock.assumed
    c = run.counts
    if unstored is not None:  # the counts say what is stored: nothing
        outcome.status = "failed"
        outcome.message = (f"{unstored}; nothing of the file was stored ({c.read:,} records "
                           "had been read)")
        if not digest:  # unreadable: no hash, so no manifest row
            return _Staged(job, None, outcome)
        row = _row(job, loader.name, "failed", outcome.message, run, digest, size, changed,
                   started, counted=False)
        return _Staged(job, Commit(row, {}, None), outcome)
    outcome.read, outcome.rejected, outcome.duplicate = c.read, c.rejected, c.duplicate
    status: FileStatus = run.status if run.status != "ok" else "ingested"
    outcome.status = status
    outcome.message = "; ".join(filter(None, [run.error, *run.warnings]))
    outcome.hosts = hosts.staged()
    outcome.layout_host = job.layout_host if hosts.filled else None
    row = _row(job, loader.name, status, outcome.message, run, digest, size, changed, started)
    return _Staged(job, Commit(row, ev, rj, host_from_layout=outcome.layout_host), outcome)


def _what_was_read(file: InputFile, run: FileRun, listed: str) -> tuple[str, int, str | None]:
    """The hash and size of exactly the bytes parsed, and how the file changed meanwhile.

    Every reading of the file hashed what it took, from the first byte up to the size the
    file had when opened (nothing appended since is read); the last reading is what was
    parsed. A loader that reads by path (EVTX through its parser) keeps the hash taken
    when the file was listed, of the same bytes unless the file was rewritten in place,
    which its changed fingerprint then says."""
    changed = changed_since(file)
    read = [d for d in run.src.read_digests if d.size or d.complete]
    if not read or not listed:
        return listed, file.size, changed
    last = read[-1]
    digest = last.hexdigest()
    notes = [changed] if changed else []
    if digest != listed and last.complete:
        notes.append("the bytes parsed differ from those hashed when the file was listed "
                     "(rewritten in place during the ingest); the hash recorded is of the "
                     "bytes parsed")
    elif len({d.hexdigest() for d in read if d.complete}) > 1:
        notes.append("two readings of the file took different bytes (rewritten during the "
                     "ingest); the hash recorded is of the last, which was parsed")
    if not last.complete and not changed:
        notes.append(f"ended after {last.size:,} of its {file.size:,} bytes while it was "
                     "read (truncated during the ingest)")
    return digest, last.size, "; ".join(notes) or None


def _row(job: _Job, loader: str, status: FileStatus, message: str, run: FileRun,
         digest: str, size: int, changed: str | None, started: datetime,
         counted: bool = True) -> StagedRow:
    """The manifest row of a parsed file: a failed one keeps its rejects and its reason."""
    c = run.counts if counted else FileCounts()
    return {
        "ingest_id": job.ingest_id, "file_seq": job.seq, "path": job.file.display,
        "resolved_path": job.file.resolved or None,
        # [] for a plain file, so that verify never reads a "!" in its name as a member
        "member_path": [{"name": name, "occurrence": n} for name, n in job.file.member],
        "size": size, "sha256": digest, "loader": loader,
        "status": status, "message": message or None, "input_changed": changed,
        "records_read": c.read, "records_loaded": c.loaded, "records_rejected": c.rejected,
        "records_duplicate": c.duplicate,
        "first_timestamp": run.first_ts if counted else None,
        "last_timestamp": run.last_ts if counted else None,
        "naive_times": run.clock.naive, "time_zone": run.clock.describe(),
        "tool_version": tool_version(),
        "started_at": started,
    }


def _worker_init(owner: int) -> None:
    """A parse worker: it dies with the ingest process ``owner``, however that ends
    (:func:`loaders.parsing.lifetime.die_with`); its imports live as long as it does, so the
    collector need not walk them again and again (as the CLI does for the main process)."""
    import gc

    die_with(owner)
    loaders.all_loaders()  # imported now, so that the freeze covers them
    gc.freeze()


def _release_memory() -> None:
    """Hand memory freed by parsing back to the system before the commit needs its own
    (measured on 1 GB of k8s audit: ingest peak RSS 692 → 571 MB)."""
    import contextlib
    import ctypes
    import gc


    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def ingest(
    store: Store, paths: Iterable[str | os.PathLike[str]], *, format: str | None = None,
    jobs: int = 1, options: LoadOptions | None = None, progress: Progress | None = None,
) -> IngestReport:
    """Ingest files, directories (recursively) and archives into ``store``.

    Args:
        store: the evidence store.
        paths: inputs.
        format: force this loader instead of detection.
        jobs: parse this many files in parallel worker processes.
        options: loader options (year, column mapping, limits).
        progress: receives byte and per-file progress.

    Returns:
        The per-file outcomes; ``report.ok`` is False if any file failed.

    Raises:
        StoreBusy: another ingest holds the store.
        UnknownFormat: ``format`` names no loader.
        ValueError: ``options.tz`` or ``options.tz_for`` names a zone that does not exist.
    """
    if format:
        loaders.get_loader(format)
    options = options or LoadOptions()
    options.check()
    progress = progress or Progress()
    report = IngestReport(new_ingest_id(), store.root)
    with store.write_lock(report.ingest_id):
        # the staging directory also marks the run as running: it goes only once the run
        # is sealed, so recovery can tell an interrupted run's rows (Store.recover)
        staging = store.tmp_dir / report.ingest_id
        staging.mkdir(parents=True, exist_ok=True)
        try:
            _run(store, paths, format, max(1, jobs), options, progress, report, staging)
        finally:
            store.recover(seal=False)
            report.ledger_head = store.seal_ingest(report.ingest_id).hash
            shutil.rmtree(store.tmp_dir, ignore_errors=True)
    return report


def _run(store: Store, paths: Iterable[str | os.PathLike[str]], format: str | None,
         jobs: int, options: LoadOptions, progress: Progress, report: IngestReport,
         staging: Path) -> None:
    hashes = _Hashes(store, defer=jobs == 1)
    if jobs > 1:  # the cores are taken by the files parsed in parallel
        options = replace(options, helpers=0)
    pending: deque[_Job | _Staged] = deque()
    pool = _Workers(jobs) if jobs > 1 else None

    def finish(item: _Job | _Staged) -> None:
        if isinstance(item, _Job):
            assert pool is not None  # jobs are pending only with workers
            staged = pool.result(item)
        else:
            staged = item
        outcome = staged.outcome
        if staged.commit is not None:
            row = store.commit(staged.commit,
                               in_memory_rows=options.tuning.dedupe_in_memory_rows)
            outcome.loaded = row["records_loaded"]
            outcome.duplicate = row["records_duplicate"]
            outcome.hosts = loaded_by_host(store, outcome.hosts, row)
        if staged.job.owned:
            staged.job.file.path.unlink(missing_ok=True)
        if pool is not None:
            progress.bytes_read(staged.job.file.size)
        report.files.append(outcome)
        progress.file_done(outcome)

    def skip(outcome: FileOutcome) -> None:
        report.files.append(outcome)
        progress.bytes_read(outcome.size)
        progress.file_done(outcome)

    try:
        seq = 0
        found = _without_stores(discover(paths), store.root, skip)
        for item in _expand(found, staging, skip, options.archive_limits):
            seq += 1
            file, owned = item
            outcome = _precheck(file, format, hashes)
            if isinstance(outcome, FileOutcome):
                if owned:
                    file.path.unlink(missing_ok=True)
                skip(outcome)
                continue
            loader, head, damaged_lines, digest = outcome
            job = _Job(file, head, loader, digest, seq, report.ingest_id, staging, options,
                       owned, damaged_lines, collection_host(collection_path(file)))
            if pool is None:
                finish(_stage(job, progress.bytes_read))
            else:
                pool.submit(job)
                pending.append(job)
                while len(pending) > 2 * jobs:
                    finish(pending.popleft())
        while pending:
            finish(pending.popleft())
    finally:
        hashes.close()
        if pool is not None:
            pool.shutdown()


WORKER_DIED = ("the worker parsing it died (killed or out of memory); nothing of it was stored; "
               "ingest it again with --jobs 1 or with more memory")
NEVER_STARTED = "{} workers in a row died before they started it; nothing of it was stored"
START_TRIES = 3  # pools that may break under a file before it starts, before it fails
_DEPTH = 2  # files given to one worker at once: one parsed, one waiting (no idle gap)


class _Workers:
    """The parse workers of ``jobs > 1``: one single-process pool per worker.

    A worker that dies (SIGKILL, the OOM killer) breaks its pool, and a broken
    ``ProcessPoolExecutor`` fails every file it holds and stops all its workers; so instead of
    one pool of ``jobs`` workers there are ``jobs`` pools of one, and a death costs only the
    file its worker was parsing: that file fails (:data:`WORKER_DIED`; it is not parsed again
    here, which could take the main process down the same way), a file that was waiting
    behind it is given to the next free worker, and the other workers go on. A worker marks
    a file started (an empty file in the staging directory) before it reads it, which is how
    a parsed file is told from a waiting one after the worker is gone; a file under which
    :data:`START_TRIES` pools broke before it started fails too (no endless restarts).

    Pools are created, fed and read from the thread that runs the ingest: a worker's
    ``PR_SET_PDEATHSIG`` follows the thread that started it (see
    :mod:`loaders.parsing.lifetime`), and that thread outlives the pools.
    """

    def __init__(self, jobs: int) -> None:
        self._pools: list[ProcessPoolExecutor | None] = [None] * jobs
        self._held: list[deque[tuple[_Job, Future[_Staged]]]] = [deque() for _ in range(jobs)]
        self._waiting: deque[_Job] = deque()
        self._done: dict[int, _Staged] = {}
        self._breaks: dict[int, int] = {}  # file seq -> pools that broke before it started

    def submit(self, job: _Job) -> None:
        self._waiting.append(job)
        self._feed()

    def result(self, job: _Job) -> _Staged:
        """The staged file of a submitted ``job``, once parsed (or failed); the workers are
        kept fed meanwhile."""
        while job.seq not in self._done:
            wait([f for held in self._held for _, f in held], return_when=FIRST_COMPLETED)
            self._collect()
            self._feed()
        return self._done.pop(job.seq)

    def shutdown(self) -> None:
        for pool in self._pools:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _feed(self) -> None:
        while self._waiting:
            i = min(range(len(self._held)), key=lambda k: len(self._held[k]))
            if len(self._held[i]) >= _DEPTH:
                return
            job = self._waiting.popleft()
            pool = self._pools[i]
            if pool is None:
                pool = self._pools[i] = ProcessPoolExecutor(
                    1, mp_context=get_context("spawn"), initializer=_worker_init,
                    initargs=(os.getpid(),))
            try:
                future = pool.submit(_stage_in_worker, job)
            except BrokenProcessPool:  # its worker died between files
                self._waiting.appendleft(job)
                self._broken(i)
                continue
            self._held[i].append((job, future))

    def _collect(self) -> None:
        for i, held in enumerate(self._held):
            while held and held[0][1].done():
                job, future = held[0]
                try:
                    staged = future.result()
                except BrokenProcessPool:
                    self._broken(i)
                    break
                held.popleft()
                self._done[job.seq] = staged

    def _broken(self, i: int) -> None:
        """Pool ``i`` broke (its worker died): settle the files it held, drop it."""
        held = self._held[i]
        wait([f for _, f in held])  # a broken pool fails every future it holds
        again = []
        for job, future in held:
            if future.exception() is None:
                self._done[job.seq] = future.result()
            elif not isinstance(future.exception(), BrokenProcessPool):
                future.result()  # a worker's own error: raised, as with one process
            elif _started(job):
                self._done[job.seq] = _failed(job, WORKER_DIED)
            else:
                breaks = self._breaks[job.seq] = self._breaks.get(job.seq, 0) + 1
                if breaks >= START_TRIES:
                    self._done[job.seq] = _failed(job, NEVER_STARTED.format(breaks))
                else:
                    again.append(job)
        held.clear()
        self._waiting.extendleft(reversed(again))  # they come first, in input order
        pool, self._pools[i] = self._pools[i], None
        if pool is not None:
            pool.shutdown(wait=True)


def _started_mark(job: _Job) -> Path:
    return job.staging / "started" / f"{job.seq:06d}"


def _stage_in_worker(job: _Job) -> _Staged:
    """:func:`_stage` in a worker, which first marks the file started."""
    mark = _started_mark(job)
    mark.parent.mkdir(exist_ok=True)
    mark.touch()
    return _stage(job)


def _started(job: _Job) -> bool:
    return _started_mark(job).exists()


def _failed(job: _Job, message: str) -> _Staged:
    return _Staged(job, None, FileOutcome(job.file.display, "failed", job.loader,
                                          message=message, size=job.file.size))


class _Hashes:
    """Input hashes: which files are already stored or repeat one of this run.

    A file whose size no stored file and no earlier file of this run has cannot repeat
    either, so its hash is computed in a background thread while it is parsed (hashlib
    releases the GIL: on two cores this hides the hash, ~5% of a large file's ingest).
    ``defer`` is off when worker processes parse: the main thread is idle then anyway.
    """

    def __init__(self, store: Store, defer: bool) -> None:
        m = store.read_manifest()
        self.known: dict[str, str] = {}
        # files that failed before, by hash: the loaders that failed them, and why; tried
        # again only with another loader (--format)
        self.failed: dict[str, dict[str, str]] = {}
        for sha, n, path, status, loader, message in zip(
                *(m.column(c).to_pylist() for c in (
                    "sha256", "records_read", "path", "status", "loader", "message")),
                strict=True):
            if status == "failed":
                self.failed.setdefault(sha, {})[loader] = f"as {path}: {message}"
            else:
                self.known[sha] = f"{n:,} records, as {path}"
        self.known_sizes = set(m.column("size").to_pylist())
        self.by_size: dict[int, list[tuple[str | Future[str], str]]] = {}
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="auditlens-hash") if defer else None

    def check(self, file: InputFile) -> str | Future[str] | FileOutcome:
        """The file's hash (or its Future), or the outcome of skipping it as a repeat."""
        earlier = self.by_size.setdefault(file.size, [])
        if self.pool is not None and not earlier and file.size not in self.known_sizes \
                and file.size >= DEFER_HASH_BYTES:
            future = self.pool.submit(sha256_file, file.path, file.size)
            earlier.append((future, file.display))
            return future
        digest = sha256_file(file.path, file.size)
        if digest in self.known:
            return FileOutcome(file.display, "skipped", size=file.size,
                               message=f"already in the store ({self.known[digest]})")
        for other, display in earlier:
            other_digest = other if isinstance(other, str) else other.result()
            if other_digest == digest:
                return FileOutcome(file.display, "skipped", size=file.size,
                                   message=f"same content as {display} in this run")
        earlier.append((digest, file.display))
        return digest

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _precheck(file: InputFile, format: str | None, hashes: _Hashes
              ) -> FileOutcome | tuple[str, bytes, int, str | Future[str]]:
    metadata = is_collection_metadata(collection_path(file))
    if metadata is not None:  # by name and place: a collector's bookkeeping, not read
        return FileOutcome(file.display, "skipped", size=file.size, message=metadata,
                           metadata=True)
    try:
        digest = hashes.check(file)
        if isinstance(digest, FileOutcome):
            return digest
        head = read_head(file.path)
    except OSError as exc:
        return FileOutcome(file.display, "failed", message=f"cannot read: {exc}",
                           size=file.size)
    try:
        found = detect_head(head, file.path.name, format)
    except loaders.UnrecognizedFormat as exc:
        text = looks_like_text(head)
        message = (f"{exc}; it looks like text logs: read its first lines" if text
                   else str(exc))
        return FileOutcome(file.display, "skipped", size=file.size, message=message,
                           unrecognised="text" if text else "binary")
    except loaders.AmbiguousFormat as exc:
        return FileOutcome(file.display, "skipped", size=file.size, message=str(exc),
                           unrecognised="ambiguous")
    before = hashes.failed.get(digest if isinstance(digest, str) else "", {})
    if found.loader.name in before:
        return FileOutcome(file.display, "skipped", size=file.size, message=(
            f"already tried: failed with {found.loader.name} {before[found.loader.name]}; "
            "--format NAME tries another loader"))
    return found.loader.name, found.head, found.damaged_lines, digest


def _expand(files: Iterable[Path], staging: Path, skip: Callable[[FileOutcome], None],
            limits: ArchiveLimits) -> Iterator[tuple[InputFile, bool]]:
    """Input files; archive members are copied into ``staging`` and owned by the caller.
    A refused member, a damaged member or archive (``failed``, reading stops there, the
    members before it are kept) goes to ``skip``; one budget per input, nested archives
    included (:class:`ArchiveLimits`)."""
    members = staging / "members"
    for path in files:
        try:
            file = input_file(path)
            kind = sniff_kind(path)
        except NotRegularFile as exc:
            skip(FileOutcome(str(path), "refused", message=str(exc)))
            continue
        except OSError as exc:
            skip(FileOutcome(str(path), "failed", message=f"cannot read: {exc}"))
            continue
        if kind is None:
            yield file, False
            continue
        members.mkdir(parents=True, exist_ok=True)
        for member in iter_archive(file, kind, members, limits):
            if isinstance(member, Refused):
                skip(FileOutcome(member.display, member.status, message=member.reason,
                                 size=member.size))
                continue
            owned = member.path.with_name(member.path.name + ".owned")
            os.replace(member.path, owned)
            yield InputFile(owned, member.display, member.size, member.mtime,
                            member.resolved, member.member), True
