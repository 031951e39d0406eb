"""The runner: one loader over one file, as schema-valid Arrow batches and reject rows.

:class:`FileRun` drives a loader (:mod:`loaders.base`) over one file: it fills ``source``,
``event_uid``, ``source_file``, ``source_line``, ``ingest_id`` and ``raw``, validates
bounded batches against the schema, collects rejects with an excerpt, and enforces the
bad-record limits. A value Arrow cannot store rejects its record, not the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaders.base import (
    FormatError,
    Loader,
    LoadOptions,
    Parsed,
    ParsedTable,
    Reject,
    Source,
    make_uid,
)
from loaders.parsing.damage import looks_binary, nul_rejects
from loaders.parsing.inputs import InputFile, open_binary
from loaders.parsing.timeutil import enter_clock, leave_clock
from loaders.parsing.values import conform
from loaders.schema import SchemaError, event_schema, validate
from loaders.store.layout import REJECT_SCHEMA, RejectRow, StoredTable

EXCERPT_CHARS = 200
_FRAGMENT_CHARS = 64  # a rejected line this short between binary lines joins their region


@dataclass
class _Region:
    """Consecutive rejected lines of binary damage, kept as one reject."""

    first: Reject
    last: int
    lines: int = 1

RunStatus = Literal["ok", "stopped", "failed"]
"""How a :class:`FileRun` ended: read to the end, stopped early (bad-record limit, damaged
stream; what was read is kept), or failed (not this format, unreadable, a loader error)."""
RunItem = tuple[StoredTable, pa.Table]
"""What a :class:`FileRun` yields: ``("events", table)`` in the event schema, or
``("rejects", table)`` in :data:`loaders.store.layout.REJECT_SCHEMA`."""


def table_uids(source: str, raw: pa.ChunkedArray, native_id: pa.ChunkedArray | None
               ) -> pa.Array:
    """:func:`make_uid` of every row of a table, with the keys built by Arrow: only the
    hashing is per row (3x less Python work than calling make_uid per row)."""
    n = len(raw)
    if raw.null_count or raw.type != pa.string() or (
            native_id is not None and native_id.type != pa.string()):
        ids = native_id.to_pylist() if native_id is not None else [None] * n
        return pa.array([make_uid(source, i, r) for i, r in
                         zip(ids, raw.to_pylist(), strict=True)], pa.string())
    empty = pa.scalar(b"", pa.binary())

    def joined(kind: str, values: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.binary_join_element_wise(
            pa.scalar(f"{source}\x1f{kind}\x1f".encode(), pa.binary()),
            values.cast(pa.binary()), empty)

    if native_id is None:
        keys = joined("raw", raw)
    else:
        keys = joined("id", native_id)
        has_id = pc.fill_null(pc.greater(pc.binary_length(native_id), 0), False)
        if not pc.all(has_id).as_py():  # the raw text of every row is joined only if needed
            keys = pc.if_else(has_id, keys, joined("raw", raw))
    sha = hashlib.sha256
    digest = b"".join([sha(k).digest()[:16] for k in keys.to_pylist()])
    offsets = np.arange(0, 32 * n + 1, 32, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(digest.hex().encode())])


NO_ZONE_WARNING = ("time without a zone, taken as UTC (give its zone with --tz, or --tz-for "
                   "for some files)")


def storable(text: str) -> str:
    """Text Arrow can store: lone surrogates (from ``\\ud800``-style escapes) become ``?``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of a record, for reject listings."""
    return text if len(text) <= limit else text[:limit] + "…"


# what converting a value to its column's Arrow type can raise
_UNSTORABLE = (pa.ArrowException, SchemaError, UnicodeError, OverflowError, TypeError, ValueError)


@dataclass
class FileCounts:
    """Per-file record counts: ``read == loaded + rejected + duplicate`` always holds."""

    read: int = 0
    loaded: int = 0
    rejected: int = 0
    duplicate: int = 0


class _Columns:
    """Events accumulated column by column (converting columns to Arrow is about twice as
    fast as converting row dicts); a column missing from some rows is padded with None."""

    def __init__(self) -> None:
        self.n = 0
        self.cols: dict[str, list[Any]] = {}

    def add(self, row: dict[str, Any]) -> None:
        n = self.n
        for key, value in row.items():
            col = self.cols.get(key)
            if col is None:
                col = self.cols[key] = [None] * n
            elif len(col) < n:
                col.extend([None] * (n - len(col)))
            col.append(value)
        self.n = n + 1

    def column(self, name: str) -> list[Any] | None:
        col = self.cols.get(name)
        if col is not None and len(col) < self.n:
            col.extend([None] * (self.n - len(col)))
        return col


class FileRun:
    """Run one loader over one file, yielding schema-valid event tables and reject tables.

    After iteration: ``counts`` (``loaded`` here counts events before store-level
    de-duplication), ``status`` (``ok``, ``stopped`` or ``failed``), ``error``,
    ``first_ts``/``last_ts`` and ``warnings``.
    """

    def __init__(
        self, loader: Loader, file: InputFile, head: bytes, options: LoadOptions,
        ingest_id: str, progress: Callable[[int], None] | None = None,
        damaged_lines: int = 0,
    ) -> None:
        self.loader = loader
        self.damaged_lines = damaged_lines
        self.file = file
        self.options = options
        self.ingest_id = ingest_id
        self.src = Source(file, head, options, progress, damaged_lines)
        # how this file's times without a zone are read, and how many there were
        self.clock = options.clock_for(file)
        self.counts = FileCounts()
        self.status: RunStatus = "ok"
        self.error: str | None = None
        self.first_ts: datetime | None = None
        self.last_ts: datetime | None = None
        self._schema = event_schema()

    @property
    def warnings(self) -> list[str]:
        return self.src.warnings

    def __iter__(self) -> Iterator[RunItem]:
        rows = _Columns()
        self._rejects: list[RejectRow] = []
        self._consecutive = 0
        self._accepted = 0  # src.accepted at the last reject
        self._region: _Region | None = None
        self._region_spans: list[tuple[int, int]] = []
        self._parsed = 0
        name = self.loader.name
        items = self.loader.parse(self.src)
        clock = self.clock
        while True:
            naive = clock.naive
            token = enter_clock(clock)  # naive times of this record go through its clock
            try:
                item = next(items)
            except StopIteration:
                break
            except FormatError as exc:
                self._end(str(exc))
                break
            except Exception as exc:  # a loader bug: keep what we have, say where it stopped
                self._end(f"{name} loader error after {self.counts.read} records: "
                          f"{type(exc).__name__}: {exc}")
                break
            finally:
                leave_clock(token)
            if isinstance(item, Reject):
                self._reject(item)
                if len(self._rejects) >= self.options.batch_size:
                    yield "rejects", pa.Table.from_pylist(self._rejects, schema=REJECT_SCHEMA)
                    self._rejects = []
                continue
            self._close_region()
            if isinstance(item, ParsedTable):
                if rows.n:  # keep input order
                    yield from self._flush(rows, self._rejects)
                    rows = _Columns()
                self._consecutive = 0
                table = self._from_table(item.table)
                self.counts.read += table.num_rows
                self._parsed += table.num_rows
                yield "events", table
                continue
            self.counts.read += 1
            if isinstance(item, Parsed):
                self._consecutive = 0
                self._parsed += 1
                row = item.fields
                row["source"] = name
                row["event_uid"] = make_uid(name, item.native_id, item.raw)
                row["source_file"] = self.file.display
                row["source_line"] = item.line
                row["ingest_id"] = self.ingest_id
                row["raw"] = item.raw
                if clock.naive != naive and clock.assumed:
                    item.warnings = [*(item.warnings or []), NO_ZONE_WARNING]
                if item.warnings:
                    row["parse_warning"] = "; ".join(item.warnings)
                rows.add(row)
                if rows.n >= self.options.batch_size:
                    yield from self._flush(rows, self._rejects)
                    rows = _Columns()
            else:
                self.counts.duplicate += 1
        self._close_region()
        if self.src.read_error and self.status == "ok":
            self._end(self.src.read_error)
        self._nul_rejects()
        if rows.n:
            yield from self._flush(rows, self._rejects)
        if self._rejects:
            yield "rejects", pa.Table.from_pylist(self._rejects, schema=REJECT_SCHEMA)

    def _end(self, error: str) -> None:
        """The file ends early: ``stopped`` when records were read (they are kept),
        ``failed`` when none was (the file's rejects and its manifest row are kept)."""
        self.status = "stopped" if self._parsed else "failed"
        self.error = error

    def _reject(self, item: Reject) -> None:
        """Count and keep one rejected record. Consecutive rejects of binary damage (and
        short fragments between them) are kept as one damaged region, however long."""
        region = self._region
        binary = looks_binary(item.raw)
        if region is not None and (binary or (
                item.line <= region.last + 3 and len(item.raw) < _FRAGMENT_CHARS)):
            region.last = max(region.last, item.line)
            region.lines += 1
            return
        self._close_region()
        if binary:
            self._region = _Region(item, item.line)
            return
        self._keep(item)

    def _close_region(self) -> None:
        region, self._region = self._region, None
        if region is None:
            return
        first = region.first
        self._region_spans.append((first.line, region.last))
        if region.lines > 1:
            first = Reject(first.line, f"damaged region: binary data on lines {first.line}–"
                           f"{region.last} ({region.lines:,} lines, kept as one reject; "
                           f"first line: {first.reason}); reading resumed after it",
                           first.raw)
        self._keep(first)

    def _keep(self, item: Reject) -> None:
        self.counts.read += 1
        self.counts.rejected += 1
        self._rejects.append(self._reject_row(item))
        if self.src.accepted != self._accepted:  # good records came in between
            self._accepted = self.src.accepted
            self._consecutive = 0
        if item.line > self.damaged_lines:  # a damaged head is no sign of the wrong format
            self._consecutive += 1
        if not self.src.stopped and self._too_many_rejects(self._consecutive, item):
            self.src.stop()

    def _nul_rejects(self) -> None:
        """The NUL runs removed from the starts of lines, as rejects with their line."""
        runs = self.src.nul_runs
        if not runs:
            return
        try:
            found = list(nul_rejects(runs, lambda: open_binary(self.file.path)))
        except OSError as exc:  # the file went away meanwhile: keep the offsets
            found = [(0, f"damaged region: {r.length:,} NUL bytes at byte {r.offset:,} "
                         f"(line unknown: {exc})") for r in runs]
        spans = self._region_spans
        for line, reason in found:
            if any(first <= line <= last for first, last in spans):
                continue  # within a damaged region already kept
            self.counts.read += 1
            self.counts.rejected += 1
            self._rejects.append(self._reject_row(Reject(line, reason, "")))

    def _from_table(self, table: pa.Table) -> pa.Table:
        name = self.loader.name
        n = table.num_rows
        nid = table.column("native_id") if "native_id" in table.column_names else None
        uids = table_uids(name, table.column("raw"), nid)
        if nid is not None:
            table = table.drop_columns(["native_id"])

        def same(value: str) -> pa.Array:
            return pa.repeat(pa.scalar(value, pa.string()), n)

        table = (table.append_column("source", same(name))
                 .append_column("event_uid", uids)
                 .append_column("source_file", same(self.file.display))
                 .append_column("ingest_id", same(self.ingest_id)))
        return self._finish(validate(table, self._schema))

    def _too_many_rejects(self, consecutive: int, item: Reject) -> bool:
        opts = self.options
        if self._parsed == 0 and self.src.accepted == 0 \
                and consecutive >= opts.max_initial_rejects:
            self.status = "failed"
            self.error = (
                f"the first {consecutive} records were all rejected, so this is probably not "
                f"{self.loader.name} input (last reason at line {item.line}: {item.reason}); "
                "run `auditlens sources` and pass the right one with --format NAME"
            )
            return True
        if opts.max_consecutive_rejects and consecutive >= opts.max_consecutive_rejects:
            self.status = "stopped"
            self.error = (f"stopped at line {item.line}: {consecutive} bad records in a row; "
                          "the rest of the file was not read")
            return True
        return False

    def _reject_row(self, item: Reject) -> RejectRow:
        return {"ingest_id": self.ingest_id, "source": self.loader.name,
                "source_file": self.file.display, "source_line": item.line,
                "reason": storable(item.reason), "excerpt": storable(excerpt(item.raw))}

    def _flush(self, rows: _Columns, rejects: list[RejectRow]) -> Iterator[RunItem]:
        """The accumulated events as a table; a value Arrow cannot store (a lone surrogate
        from a ``\\ud800`` escape, an integer beyond 64 bits…) rejects its record only."""
        unknown = set(rows.cols) - set(self._schema.names)
        if unknown:
            raise ValueError(f"{self.loader.name} produced unregistered columns {sorted(unknown)}")
        cols = {name: rows.column(name) or [] for name in rows.cols}
        try:
            yield "events", self._finish(self._table(cols))
            return
        except _UNSTORABLE:
            pass
        good: list[int] = []
        for i in range(rows.n):
            try:
                self._table({name: col[i:i + 1] for name, col in cols.items()})
                good.append(i)
            except _UNSTORABLE as exc:
                self.counts.rejected += 1
                rejects.append(self._reject_row(Reject(
                    cols["source_line"][i], f"cannot store record: {type(exc).__name__}: {exc}",
                    cols["raw"][i])))
        if good:
            yield "events", self._finish(self._table(
                {name: [col[i] for i in good] for name, col in cols.items()}))

    def _table(self, cols: dict[str, list[Any]]) -> pa.Table:
        arrays, fields = [], []
        for f in self._schema:
            col = cols.get(f.name)
            if col is not None:
                arrays.append(pa.array(col, type=f.type))
                fields.append(f)
        return validate(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), self._schema)

    def _finish(self, table: pa.Table) -> pa.Table:
        table = conform(table)  # one spelling of names and addresses, whatever the path
        self.counts.loaded += table.num_rows
        ts = pc.min_max(table.column("timestamp"))
        lo, hi = ts["min"].as_py(), ts["max"].as_py()
        if lo is not None:
            self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
            self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        return table
