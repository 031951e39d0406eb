"""Staging: a file run's events written per UTC day in their final store form.

The parse of one input file (:class:`loaders.ingest.runner.FileRun`) is written by
:func:`write_staged` to one Parquet file per UTC day, already as the store keeps events
(full schema, compressed), so that :meth:`loaders.store.store.Store.commit` can put a day that has
nothing to de-duplicate into its partition with a rename. While writing it takes the
fingerprints of the ids (:mod:`loaders.store.uidindex`) the commit needs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loaders.schema import event_schema
from loaders.store.layout import COMPRESSION, REJECT_SCHEMA, UNKNOWN_DATE, StoredTable
from loaders.store.uidindex import fingerprints

SMALL_DAY_ROWS = 5_000  # a staged day whose first batch is smaller is written with LZ4
HOLD_ROWS = 2_000  # a file of at most this many events is staged in memory (see write_staged)
HOLD_BYTES = 8 << 20  # ... and of at most this much Arrow data (a few huge records: written)
WRITE_AHEAD = 3  # batches parsed but not yet written (the writer catches up in bursts)


@dataclass
class StagedDay:
    """One UTC day of a file's events, staged: the file, its rows, and the sorted
    fingerprints of its ids (:func:`loaders.store.uidindex.fingerprints`, taken while writing)."""

    path: Path
    rows: int
    fingerprints: np.ndarray | None  # sorted
    # a small file's day, held in memory instead of written to ``path`` (HOLD_ROWS): the
    # commit writes it, with ``options``, only what it keeps of it
    table: pa.Table | None = None
    options: dict[str, Any] | None = None

    def write(self) -> None:
        """Write a held day to ``path`` (for a commit that reads it from a file)."""
        if self.table is not None:
            pq.write_table(self.table, self.path, **(self.options or {}))
            self.table = None


def _event_file_options(used: frozenset[str] | None, rows: int) -> dict[str, Any]:
    """Parquet options for a staged day whose first batch has ``rows`` rows.

    zstd with dictionaries for the columns the loader fills; none for the other loaders'
    extras, always null in its files (the schema has ~180 columns: compressing every empty
    one doubled the cost of writing a small file). A small day (a small file, or a day with
    few events) uses LZ4 without dictionaries: zstd's set-up per column cost 5.3 ms against
    3.3 ms for a dozen rows, at the same size; bigger days compress much better with zstd.
    """
    if used is None:
        return {"compression": COMPRESSION}
    names = event_schema().names
    codec = COMPRESSION if rows >= SMALL_DAY_ROWS else "lz4"
    return {"compression": {n: codec if n in used else "none" for n in names},
            "use_dictionary": [n for n in names if n in used] if codec == COMPRESSION else False}


_WRITER: list[ThreadPoolExecutor] = []


def _writer_pool() -> ThreadPoolExecutor:
    """The one background thread that writes staged files (started once per process)."""
    if not _WRITER:
        _WRITER.append(ThreadPoolExecutor(1, thread_name_prefix="auditlens-write"))
    return _WRITER[0]


def write_staged(tables: Iterator[tuple[StoredTable, pa.Table]], directory: Path, stem: str,
                 used: frozenset[str] | None = None
                 ) -> tuple[dict[str, StagedDay], Path | None]:
    """Write a file run's events, split by UTC day, and its rejects to staging Parquet.

    The event files are written as the store keeps them (zstd, full schema), so a day with
    nothing to de-duplicate is committed by a rename. ``used`` names the columns the
    loader can fill (see :func:`_event_file_options`); by default all are compressed.
    Writing (compression, mostly) runs in one background thread while the next batch is
    parsed: Arrow releases the GIL there, so the two overlap on two cores (the write was
    ~20% of a container-log ingest).

    A file of at most :data:`HOLD_ROWS` events and :data:`HOLD_BYTES` is not written here:
    its days are held in memory (:attr:`StagedDay.table`) and the commit writes what it
    keeps (the byte cap keeps a few huge records from being held). Opening a Parquet
    writer of the ~180-column schema costs ~4 ms a day, which dominated a triage collection
    of many small EVTX files; and a day whose events are all stored already (the same log
    collected twice) is then never written at all, nor read back to be de-duplicated.
    """
    directory.mkdir(parents=True, exist_ok=True)
    rj_path = directory / f"{stem}.rejects.parquet"
    writers: dict[str, pq.ParquetWriter] = {}
    paths: dict[str, Path] = {}
    rows: dict[str, int] = {}
    fps: dict[str, list[np.ndarray | None]] = {}
    rj_writer: list[pq.ParquetWriter] = []
    pending: deque[Future[None]] = deque()
    held: dict[str, list[pa.Table]] = {}  # while the file is small: its days, in memory
    holding = [True]
    held_bytes = [0]

    def rejects(table: pa.Table) -> None:
        if not rj_writer:
            rj_writer.append(pq.ParquetWriter(rj_path, REJECT_SCHEMA, compression=COMPRESSION))
        rj_writer[0].write_table(table)

    def write(day: str, part: pa.Table, first_rows: int) -> None:
        writer = writers.get(day)
        if writer is None:
            writer = writers[day] = pq.ParquetWriter(
                paths[day], event_schema(), **_event_file_options(used, first_rows))
        writer.write_table(part)

    def events(table: pa.Table) -> None:
        if holding[0]:
            held_bytes[0] += table.nbytes
        if holding[0] and (sum(rows.values()) + table.num_rows > HOLD_ROWS
                           or held_bytes[0] > HOLD_BYTES):
            holding[0] = False  # no longer small: what was held is written, in order
            for day, parts in held.items():
                for part in parts:
                    write(day, part, parts[0].num_rows)
            held.clear()
        for day, part in _by_day(table):
            if day not in paths:
                paths[day] = directory / f"{stem}.events.{day}.parquet"
            if holding[0]:
                held.setdefault(day, []).append(part)
            else:
                write(day, part, part.num_rows)
            rows[day] = rows.get(day, 0) + part.num_rows
            found = fingerprints(part.column("event_uid"))
            fps.setdefault(day, []).append(None if found is None else np.sort(found))

    pool = _writer_pool()
    try:
        for kind, table in tables:
            pending.append(pool.submit(events if kind == "events" else rejects, table))
            while len(pending) > WRITE_AHEAD:  # memory stays bounded
                pending.popleft().result()
        while pending:
            pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        wait(pending)
        for writer in [*writers.values(), *rj_writer]:
            writer.close()
    staged = {day: StagedDay(path, rows[day], _joined(fps[day])) for day, path in paths.items()}
    for day, parts in held.items():
        staged[day].table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        staged[day].options = _event_file_options(used, parts[0].num_rows)
    return staged, (rj_path if rj_writer else None)


def _by_day(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """A table's rows by UTC day (``YYYY-MM-DD``, or ``unknown`` without a timestamp).

    Days are computed from the epoch microseconds (strftime on every row cost ~0.7 s per
    million events); a batch is nearly always of one day, and then not copied.
    """
    ts = table.column("timestamp")
    valid = pc.is_valid(ts).to_numpy(zero_copy_only=False)
    days = np.floor_divide(pc.fill_null(ts.cast(pa.int64()), 0).to_numpy(), _DAY_MICROS)
    days[~valid] = _NO_DAY
    first, last = int(days.min()), int(days.max())
    for day in ([first] if first == last else np.unique(days).tolist()):
        name = UNKNOWN_DATE if day == _NO_DAY else (_EPOCH + timedelta(days=day)).isoformat()
        yield name, table if first == last else table.filter(pa.array(days == day))


_DAY_MICROS = 86_400_000_000
_NO_DAY = np.iinfo(np.int64).min
_EPOCH = date(1970, 1, 1)


def _joined(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    """Sorted runs of fingerprints as one sorted array (timsort merges the runs)."""
    found = [a for a in arrays if a is not None]
    if len(found) != len(arrays):
        return None
    return found[0] if len(found) == 1 else np.sort(np.concatenate(found), kind="stable")
